#include "common/ports.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace rl::common {
namespace {

int EphemeralRangeStart() {
  int low = 32768, high = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low >> high;
  return std::clamp(low, 2048, 65535);
}

bool Free(int port) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor(ioc);
  boost::system::error_code ec;
  const boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  return !ec;
}

}  // namespace

int FreeLoopbackPort() {
  const int end = EphemeralRangeStart();
  const int begin = std::max(1024, end - 16384);
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(begin, end - 1);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = pick(rng);
    if (Free(port)) return port;
  }
  throw std::runtime_error("no free loopback port found below the ephemeral range (from " + std::to_string(end) + ")");
}

}  // namespace rl::common
