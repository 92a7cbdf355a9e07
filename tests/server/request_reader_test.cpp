// HandleRawRequest: raw request bytes in, the bytes the server would answer out, no socket.
#include <catch2/catch.hpp>

#include "rewards/server/request_reader.h"
#include "tests/server/server_test_util.h"

namespace rl::rewards::server {
namespace {

using namespace rl::rewards::server::testing;

// The answer parsed back as a client would read it.
http::response<http::string_body> ParseAnswer(const std::string& answer) {
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  beast::error_code ec;
  parser.put(net::buffer(answer), ec);
  INFO(answer);
  REQUIRE_FALSE(ec);
  REQUIRE(parser.is_done());
  return parser.release();
}

TEST_CASE("raw request: /health and /get_reward answered as over a socket", "[server][raw]") {
  HandlerFixture f;
  const auto health = ParseAnswer(f.Raw("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(health.result() == http::status::ok);
  CHECK(json::parse(health.body())["status"] == "ok");
  CHECK(health.keep_alive());

  const std::string prompt = ChatPrompt("What is 2+2?");
  const json body = {{"query", {prompt + R1Completion("4"), prompt + R1Completion("5")}},
                     {"prompts", {prompt, prompt}},
                     {"labels", {"4", "4"}}};
  const auto scored = ParseAnswer(f.Raw(RawPost("/get_reward", body.dump())));
  REQUIRE(scored.result() == http::status::ok);
  CHECK(json::parse(scored.body())["rewards"] == json({2.0, 1.0}));
  CHECK(json::parse(scored.body())["scores"] == json({1.0, 0.0}));
}

TEST_CASE("raw request: a chunked trailer too large for Beast is 431", "[server][raw][errors]") {
  HandlerFixture f;
  // 65,534 bytes: where Beast 1.74 throws std::length_error instead of reporting an error.
  const auto res = ParseAnswer(f.Raw(
      "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Pad: " +
      std::string(65534, 'a') + "\r\n\r\n"));
  CHECK(res.result() == http::status::request_header_fields_too_large);
  CHECK_THAT(json::parse(res.body())["error"].get<std::string>(), Catch::Contains("trailer"));
  CHECK_FALSE(res.keep_alive());
  // A chunked body with a small trailer is read as usual.
  const auto small = ParseAnswer(f.Raw(
      "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Pad: a\r\n\r\n"));
  CHECK(small.result() == http::status::ok);
}

TEST_CASE("raw request: limits and malformed requests", "[server][raw][errors]") {
  HandlerFixture f;
  f.config.max_body_bytes = 1000;
  auto status_of = [&](const std::string& bytes) { return ParseAnswer(f.Raw(bytes)).result(); };
  CHECK(status_of("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(40000, 'a') + "\r\n\r\n") ==
        http::status::request_header_fields_too_large);
  CHECK(status_of(RawPost("/v1/score", std::string(1001, ' '))) == http::status::payload_too_large);
  CHECK(status_of("POST /v1/score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n" +
                  std::string(1001, ' ') + "\r\n0\r\n\r\n") == http::status::payload_too_large);
  CHECK(status_of("THIS IS NOT HTTP\r\n\r\n") == http::status::bad_request);
  CHECK(status_of(RawPost("/get_reward", R"({"query": ["a"], "labels": [1e400]})")) ==
        http::status::bad_request);
}

TEST_CASE("raw request: nothing is answered to an incomplete request", "[server][raw]") {
  HandlerFixture f;
  CHECK(f.Raw("").empty());
  CHECK(f.Raw("GET /health HTTP/1.1\r\nHost: x\r\n").empty());
  CHECK(f.Raw(RawPost("/v1/score", R"({"items": []})").substr(0, 80)).empty());
}

TEST_CASE("raw request: only the first of pipelined requests is answered", "[server][raw]") {
  HandlerFixture f;
  const std::string answer = f.Raw("GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
  CHECK(ParseAnswer(answer).result() == http::status::ok);
  CHECK(answer.find("HTTP/1.1", 1) == std::string::npos);
}

}  // namespace
}  // namespace rl::rewards::server
