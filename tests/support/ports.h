// tests/support/ports.h: a loopback TCP port for a server a test starts whose address others
// must be told before it listens (`rl serve` processes, ranks joined as threads).
//
//   const int port = rl::testing::FreeLoopbackPort();   // free now: bind it soon
//
// The port is drawn below the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range,
// from 32768 by default), so that no outgoing connection of this machine, and no server bound
// to port 0, is given it between this check and the bind; a port from the ephemeral range (what
// binding port 0 returns) can be. Throws std::runtime_error when no free port is found.
// Thread safety: safe to call from any thread.
#pragma once

#include <algorithm>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace rl::testing {
namespace detail {

inline int EphemeralRangeStart() {
  int low = 32768, high = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low >> high;
  return std::clamp(low, 2048, 65535);
}

inline bool Free(int port) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor(ioc);
  boost::system::error_code ec;
  const boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  return !ec;
}

}  // namespace detail

inline int FreeLoopbackPort() {
  const int end = detail::EphemeralRangeStart();
  const int begin = std::max(1024, end - 16384);
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(begin, end - 1);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = pick(rng);
    if (detail::Free(port)) return port;
  }
  throw std::runtime_error("no free loopback port found below the ephemeral range (from " + std::to_string(end) + ")");
}

}  // namespace rl::testing
