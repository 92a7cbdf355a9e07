// common/ports.h: a loopback TCP port for a server whose address others must be told before it
// listens (the rendezvous of data-parallel ranks; the servers of tests).
//
//   const int port = rl::common::FreeLoopbackPort();   // free now: bind it soon
//
// The port is drawn below the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range,
// from 32768 by default), so that no outgoing connection of this machine, and no server bound
// to port 0, is given it between this check and the bind; a port from the ephemeral range (what
// binding port 0 returns) can be. Throws std::runtime_error when no free port is found.
// Thread safety: safe to call from any thread.
#pragma once

namespace rl::common {

int FreeLoopbackPort();

}  // namespace rl::common
