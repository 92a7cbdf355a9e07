#include "rewards/server/request_reader.h"

#include <sstream>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/system/system_error.hpp>
#include <fmt/format.h>

namespace rl::rewards::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

std::string BodyTooLargeMessage(const ServerConfig& config) {
  return fmt::format("body: larger than max_body_bytes ({} bytes)", config.max_body_bytes);
}

// Bytes in memory as a SyncReadStream that ends where they end, so that HandleRawRequest
// reads with Beast's own read loop, as a session does from its socket.
class BytesStream {
 public:
  explicit BytesStream(std::string_view bytes) : rest_(bytes) {}

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, beast::error_code& ec) {
    const size_t n = net::buffer_copy(buffers, net::buffer(rest_.data(), rest_.size()));
    rest_.remove_prefix(n);
    ec = n == 0 ? beast::error_code(net::error::eof) : beast::error_code();
    return n;
  }

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    beast::error_code ec;
    const size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  std::string_view rest_;
};

// The session's path in one thread: read the header, check it, read the body, answer.
// Empty when the server would close without answering.
std::optional<Response> ReadAndAnswer(BytesStream& stream, const HandlerContext& context) {
  beast::flat_buffer buffer(kReadBufferLimitBytes);
  RequestParser parser;
  LimitParser(context.config, parser);
  beast::error_code ec;
  http::read_header(stream, buffer, parser, ec);
  if (!ec) {
    if (const auto rejection = RejectHeader(context.config, parser)) {
      return RejectionResponse(*rejection);
    }
    http::read(stream, buffer, parser, ec);
  }
  if (ec) {
    const auto rejection = RejectReadError(context.config, ec);
    if (!rejection) return std::nullopt;
    return RejectionResponse(*rejection);
  }
  return Handle(parser.release(), context);
}

}  // namespace

void LimitParser(const ServerConfig& config, RequestParser& parser) {
  parser.header_limit(kHeaderLimitBytes);
  parser.body_limit(static_cast<uint64_t>(config.max_body_bytes));
}

std::optional<Rejection> RejectHeader(const ServerConfig& config, const RequestParser& parser) {
  const auto length = parser.content_length();
  if (length && *length > static_cast<uint64_t>(config.max_body_bytes)) {
    return Rejection{http::status::payload_too_large, BodyTooLargeMessage(config)};
  }
  return std::nullopt;
}

std::optional<Rejection> RejectReadError(const ServerConfig& config, beast::error_code ec) {
  if (ec == http::error::body_limit) {
    return Rejection{http::status::payload_too_large, BodyTooLargeMessage(config)};
  }
  if (ec == http::error::header_limit) {
    return Rejection{http::status::request_header_fields_too_large,
                     fmt::format("header: larger than {} bytes", kHeaderLimitBytes)};
  }
  // The header limit is below the buffer's, so only what follows the header overflows it.
  if (ec == http::error::buffer_overflow) {
    return Rejection{http::status::request_header_fields_too_large,
                     fmt::format("chunked body: a chunk line or the trailer is larger than {} "
                                 "bytes", kReadBufferLimitBytes)};
  }
  const bool malformed = ec.category() == http::make_error_code(http::error::body_limit).category() &&
                         ec != http::error::end_of_stream && ec != http::error::partial_message;
  if (malformed) {
    return Rejection{http::status::bad_request, "malformed HTTP request: " + ec.message()};
  }
  return std::nullopt;
}

Response RejectionResponse(const Rejection& rejection) {
  return ErrorResponse(rejection.status, rejection.message, 11, /*keep_alive=*/false);
}

std::string HandleRawRequest(std::string_view bytes, const HandlerContext& context) {
  BytesStream stream(bytes);
  const std::optional<Response> response = ReadAndAnswer(stream, context);
  if (!response) return "";
  std::ostringstream out;
  out << *response;
  return out.str();
}

}  // namespace rl::rewards::server
