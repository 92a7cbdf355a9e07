// rewards/server/request_reader.h: how the reward server reads one HTTP request off the wire
// (the parser, its limits, the answer to a request that cannot be read), shared by the
// server's sessions and by HandleRawRequest, which runs that same path on bytes in memory:
//
//   rl::rewards::server::HandlerContext context{config, *registry, metrics};
//   std::string answer = rl::rewards::server::HandleRawRequest(
//       "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", context);
//   // answer: "HTTP/1.1 200 OK\r\nServer: rl-reward-server\r\n...\r\n\r\n{\"status\":\"ok\",...}"
//
// Limits, each answered before the request is read whole (then the connection closes):
//   header                          at most kHeaderLimitBytes                 -> 431
//   Content-Length or chunked body  at most config.max_body_bytes             -> 413
//   anything held at once           at most kReadBufferLimitBytes: a chunk    -> 431
//                                   line, a chunked body's trailer
//   anything else malformed         (bad method, bad chunk, ...)              -> 400
// Beast 1.74's parser bounds a header by its header_limit but a trailer by nothing, and throws
// std::length_error for a field name or value of 65,534 bytes or more; a trailer is parsed
// only once it is wholly in the read buffer, so the buffer's limit turns an oversized trailer
// into an error.
//
// Thread safety: every function is reentrant; HandleRawRequest may be called concurrently
// with one shared HandlerContext, like Handle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include "rewards/server/handlers.h"
#include "rewards/server/server_config.h"

namespace rl::rewards::server {

inline constexpr uint32_t kHeaderLimitBytes = 32 * 1024;
// Below the field length at which Beast throws (see above), above the header limit.
inline constexpr size_t kReadBufferLimitBytes = 48 * 1024;

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Sets the header and body limits above on a fresh parser.
void LimitParser(const ServerConfig& config, RequestParser& parser);

// A request answered before it was read whole: the status and the error message.
struct Rejection {
  boost::beast::http::status status;
  std::string message;
};

// Once the header is read: a Content-Length over max_body_bytes, or nothing.
std::optional<Rejection> RejectHeader(const ServerConfig& config, const RequestParser& parser);
// For an error reading a request: the answer it gets, or nothing when the connection should
// just end (the client left or stopped mid-request, or a timeout closed the connection).
std::optional<Rejection> RejectReadError(const ServerConfig& config, boost::beast::error_code ec);
// {"error": message} with the status, HTTP/1.1, "Connection: close".
Response RejectionResponse(const Rejection& rejection);

// The server's answer to the raw bytes of one HTTP/1.x request sent on a fresh connection:
// the same parser with the same limits, the same routing and handlers, the items scored in the
// calling thread. Any bytes are accepted. An exception escaping it is a bug that a live
// server survives only by closing the connection (it catches around its io loop): a fuzz
// target should let it through, as a finding.
//
// Returns the bytes the server writes back: status line, header and body. Empty when the
// server would write nothing and close: the bytes end before a request is complete (a live
// server would time the client out) or are empty.
//
// Unlike a live server: bytes after the first request are ignored (no pipelining); the
// interim "100 Continue" of an Expect: 100-continue request is not included; admission
// control (503 beyond max_inflight_items) does not apply, nothing else being in flight.
std::string HandleRawRequest(std::string_view bytes, const HandlerContext& context);

}  // namespace rl::rewards::server
