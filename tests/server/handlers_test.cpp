// The reward server's handlers as plain functions: no sockets, every answer checked.
#include <algorithm>

#include <catch2/catch.hpp>

#include "rewards/server/handlers.h"
#include "tests/server/server_test_util.h"

namespace rl::rewards::server {
namespace {

using namespace rl::rewards::server::testing;

json Body(const Response& res) { return json::parse(res.body()); }

std::string ErrorOf(const Response& res) {
  const json body = Body(res);
  REQUIRE(body.contains("error"));
  return body["error"].get<std::string>();
}

TEST_CASE("get_reward: prompt prefix, rewards, scores and extra_logs", "[server][get_reward]") {
  HandlerFixture f;
  const std::string prompt = ChatPrompt("What is 2+2?");
  const json body = {{"query", {prompt + R1Completion("4"), prompt + R1Completion("5"),
                                prompt + "no tags, I think it is 5<|im_end|>"}},
                     {"prompts", {prompt, prompt, prompt}},
                     {"labels", {"4", "4", "4"}}};
  const Response res = f.Post("/get_reward", body);
  REQUIRE(res.result() == http::status::ok);
  CHECK(res[http::field::content_type] == "application/json");
  const json out = Body(res);
  CHECK(out["rewards"] == json({2.0, 1.0, 0.0}));
  CHECK(out["scores"] == json({1.0, 0.0, 0.0}));
  CHECK(out["extra_logs"]["format.think_answer"] == json({1.0, 1.0, 0.0}));
  CHECK(out["extra_logs"]["accuracy.math"] == json({1.0, 0.0, 0.0}));
}

TEST_CASE("get_reward: rewards equal in-process scoring", "[server][get_reward]") {
  HandlerFixture f;
  const auto reward = f.registry->Find("r1")->reward;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R1Completion("\\frac{1}{2}"), "0.5"}, {R1Completion("3"), "4"},
      {"<think>x</think><answer>\\boxed{12}</answer>", "12"}, {"just 7", "7"}};
  json queries = json::array(), prompts = json::array(), labels = json::array();
  const std::string prompt = ChatPrompt("q");
  for (const auto& [completion, gold] : cases) {
    queries.push_back(prompt + completion);
    prompts.push_back(prompt);
    labels.push_back(gold);
  }
  const json out = Body(f.Post("/get_reward", {{"query", queries}, {"prompts", prompts}, {"labels", labels}}));
  for (size_t i = 0; i < cases.size(); ++i) {
    rewards::Sample s;
    s.prompt = prompt;
    s.completion = cases[i].first;
    s.gold = cases[i].second;
    const rewards::RewardResult expected = reward->Score(s);
    REQUIRE(expected.total);
    CHECK(out["rewards"][i].get<double>() == *expected.total);
  }
}

TEST_CASE("get_reward: locating the completion", "[server][get_reward]") {
  HandlerFixture f;
  const std::string prompt = ChatPrompt("What is 1+1?");
  SECTION("left padding before the prompt is skipped") {
    const json out = Body(f.Post("/get_reward", {{"query", {"<|endoftext|><|endoftext|>" + prompt + R1Completion("2")}},
                                                 {"prompts", {prompt}}, {"labels", {"2"}}}));
    CHECK(out["rewards"] == json({2.0}));
  }
  SECTION("a prompt that is not a prefix falls back to the last assistant marker") {
    const json out = Body(f.Post("/get_reward", {{"query", {prompt + R1Completion("2")}},
                                                 {"prompts", {"a different rendering"}},
                                                 {"labels", {"2"}}}));
    CHECK(out["rewards"] == json({2.0}));
  }
  SECTION("without prompts the marker is used") {
    const json out = Body(f.Post("/get_reward", {{"query", {prompt + R1Completion("2")}}, {"labels", {"2"}}}));
    CHECK(out["rewards"] == json({2.0}));
  }
  SECTION("without prompts and marker the whole query is the completion") {
    const json out = Body(f.Post("/get_reward", {{"query", {R1Completion("2")}}, {"labels", {2}}}));
    CHECK(out["rewards"] == json({2.0}));
  }
  SECTION("a configured marker") {
    f.config.get_reward.assistant_marker = "<|start_header_id|>assistant<|end_header_id|>\n\n";
    const std::string llama = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|>"
                              "<|start_header_id|>assistant<|end_header_id|>\n\n";
    const json out = Body(f.Post("/get_reward", {{"query", {llama + R1Completion("2")}}, {"labels", {"2"}}}));
    CHECK(out["rewards"] == json({2.0}));
  }
}

TEST_CASE("get_reward: unscorable samples fail the request or score zero", "[server][get_reward]") {
  HandlerFixture f;
  const std::string prompt = ChatPrompt("q");
  const json body = {{"query", {prompt + R1Completion("4"), prompt + R1Completion("4"), "no marker here"}},
                     {"prompts", {prompt, prompt, "a prompt that is not there"}},
                     {"labels", {"4", nullptr, "4"}}};
  SECTION("default: 422 naming the samples and their status") {
    const Response res = f.Post("/get_reward", body);
    CHECK(res.result() == http::status::unprocessable_entity);
    const json out = Body(res);
    CHECK_THAT(out["error"].get<std::string>(), Catch::Contains("2 of 3 samples could not be scored") &&
                                                     Catch::Contains("sample 1: missing_gold"));
    REQUIRE(out["unscorable"].size() == 2);
    CHECK(out["unscorable"][0]["index"] == 1);
    CHECK(out["unscorable"][0]["status"] == "missing_gold");
    CHECK(out["unscorable"][1]["index"] == 2);
    CHECK(out["unscorable"][1]["status"] == "prompt_not_found");
    CHECK_FALSE(out.contains("rewards"));
  }
  SECTION("on_unscorable: zero") {
    f.config.get_reward.on_unscorable = GetRewardOptions::OnUnscorable::kZero;
    const Response res = f.Post("/get_reward", body);
    REQUIRE(res.result() == http::status::ok);
    const json out = Body(res);
    CHECK(out["rewards"] == json({2.0, 0.0, 0.0}));
    CHECK(out["scores"] == json({1.0, 0.0, 0.0}));
    CHECK(out["extra_logs"]["format.think_answer"] == json({1.0, 1.0, 0.0}));
  }
}

TEST_CASE("get_reward and v1/score: a list of acceptable answers, the best result counts", "[server][get_reward]") {
  HandlerFixture f;
  const std::string prompt = ChatPrompt("Solve x^2 = 4 for the negative root.");
  const json out = Body(f.Post("/get_reward", {{"query", {prompt + R1Completion("-2"), prompt + R1Completion("-2"),
                                                          prompt + R1Completion("3"), prompt + R1Completion("-2")}},
                                               {"prompts", {prompt, prompt, prompt, prompt}},
                                               {"labels", {{"2", "-2"}, {"\\frac{", -2}, {2, "-2"}, json::array()}}}));
  // The last has no label at all: 422, naming it.
  REQUIRE(out.contains("unscorable"));
  CHECK(out["unscorable"].size() == 1);
  CHECK(out["unscorable"][0]["index"] == 3);
  CHECK(out["unscorable"][0]["status"] == "missing_gold");
  const json scored = Body(f.Post("/get_reward", {{"query", {prompt + R1Completion("-2"), prompt + R1Completion("-2"),
                                                             prompt + R1Completion("3")}},
                                                  {"prompts", {prompt, prompt, prompt}},
                                                  {"labels", {{"2", "-2"}, {"\\frac{", -2}, {2, "-2"}}}}));
  // An unreadable gold among readable ones does not make the sample unscorable.
  CHECK(scored["rewards"] == json({2.0, 2.0, 1.0}));
  CHECK(scored["scores"] == json({1.0, 1.0, 0.0}));
  const json items = Body(f.Post("/v1/score", {{"items", {{{"completion", R1Completion("0.5")}, {"answer", {"1/3", "1/2"}}},
                                                          {{"completion", R1Completion("0.5")}, {"answer", {"1/3"}}}}}}));
  CHECK(items["results"][0]["reward"] == 2.0);
  CHECK(items["results"][0]["verdict"] == "correct");
  CHECK(items["results"][1]["verdict"] == "incorrect");
}

TEST_CASE("errors: the message is also the status line's reason phrase", "[server][errors]") {
  HandlerFixture f;
  const std::string prompt = ChatPrompt("q");
  const Response unscorable = f.Post("/get_reward", {{"query", {prompt + R1Completion("4")}},
                                                     {"prompts", {prompt}}, {"labels", {nullptr}}});
  REQUIRE(unscorable.result() == http::status::unprocessable_entity);
  // What aiohttp shows OpenRLHF's users: "422, message='1 of 1 samples could not be scored; ...'".
  CHECK(std::string(unscorable.reason()) == ErrorOf(unscorable));
  CHECK_THAT(std::string(unscorable.reason()), Catch::Contains("sample 0: missing_gold"));
  const Response bad = f.Call(http::verb::post, "/get_reward", R"({"query": ["a"], "labels": [{"x": 1}]})");
  CHECK(std::string(bad.reason()) == ErrorOf(bad));
  const Response not_found = f.Call(http::verb::get, "/nope");
  CHECK_THAT(std::string(not_found.reason()), Catch::StartsWith("unknown path '/nope'"));
  // Echoed bytes that are not ASCII, control characters and length are made safe for a status line.
  const Response echoed = f.Call(http::verb::post, "/v1/score?reward=\xc3\xa9\r\n" + std::string(3000, 'x'),
                                 R"({"items": []})");
  const std::string reason(echoed.reason());
  CHECK(reason.size() == 1024);
  CHECK_THAT(reason, Catch::Contains("unknown reward '??  xxx"));
  CHECK(std::all_of(reason.begin(), reason.end(), [](char c) { return c >= 0x20 && c < 0x7f; }));
}

TEST_CASE("get_reward: a reward without an answer check scores the clamped total", "[server][get_reward]") {
  HandlerFixture f;
  const json out = Body(f.Post("/get_reward?reward=format", {{"query", {R1Completion("1"), "nothing"}}}));
  CHECK(out["rewards"] == json({0.5, 0.0}));
  CHECK(out["scores"] == json({0.5, 0.0}));
  CHECK(out["extra_logs"].size() == 1);
}

TEST_CASE("get_reward: fields OpenRLHF may add (metas) are ignored", "[server][get_reward]") {
  HandlerFixture f;
  const std::string prompt = ChatPrompt("q");
  const json out = Body(f.Post("/get_reward", {{"query", {prompt + R1Completion("3")}}, {"prompts", {prompt}},
                                               {"labels", {"3"}}, {"metas", {{{"id", 7}}}}}));
  CHECK(out["rewards"] == json({2.0}));
}

TEST_CASE("get_reward: empty batch", "[server][get_reward]") {
  HandlerFixture f;
  const json out = Body(f.Post("/get_reward", {{"query", json::array()}}));
  CHECK(out["rewards"] == json::array());
  CHECK(out["extra_logs"]["accuracy.math"] == json::array());
}

TEST_CASE("get_reward: 400 names the field", "[server][errors]") {
  HandlerFixture f;
  auto error_for = [&](const std::string& body) {
    const Response res = f.Call(http::verb::post, "/get_reward", body);
    CHECK(res.result() == http::status::bad_request);
    return ErrorOf(res);
  };
  CHECK_THAT(error_for("{\"query\": [\"a\""), Catch::Contains("body: not valid JSON"));
  CHECK_THAT(error_for("[1, 2]"), Catch::Contains("body: expected a JSON object, got array"));
  CHECK_THAT(error_for("{}"), Catch::Contains("query: missing"));
  CHECK_THAT(error_for(R"({"query": "a"})"), Catch::Contains("query: expected an array of strings, got string"));
  CHECK_THAT(error_for(R"({"query": ["a", 3]})"), Catch::Contains("query[1]: expected a string, got number"));
  CHECK_THAT(error_for(R"({"query": ["a", "b"], "prompts": ["a"]})"),
             Catch::Contains("prompts: expected 2 items (as many as query), got 1"));
  CHECK_THAT(error_for(R"({"query": ["a"], "labels": ["1", "2"]})"),
             Catch::Contains("labels: expected 1 items (as many as query), got 2"));
  CHECK_THAT(error_for(R"({"query": ["a"], "labels": [{"x": 1}]})"),
             Catch::Contains("labels[0]: expected a string, a number, null or an array of strings and numbers, got object"));
  CHECK_THAT(error_for(R"({"query": ["a"], "labels": [["1", null]]})"),
             Catch::Contains("labels[0][1]: expected a string or a number, got null"));
  CHECK_THAT(error_for(R"({"query": ["a"], "prompts": {"x": 1}})"), Catch::Contains("prompts: expected an array"));
  const Response unknown = f.Call(http::verb::post, "/get_reward?reward=nope", R"({"query": ["a"]})");
  CHECK(unknown.result() == http::status::bad_request);
  CHECK_THAT(ErrorOf(unknown), Catch::Contains("unknown reward 'nope'") && Catch::Contains("r1, format"));
}

TEST_CASE("get_reward: deeply nested JSON is an error, not a crash", "[server][errors]") {
  HandlerFixture f;
  const std::string nested = std::string(200000, '[') + std::string(200000, ']');
  const Response res = f.Call(http::verb::post, "/get_reward", nested);
  CHECK(res.result() == http::status::bad_request);
}

TEST_CASE("v1/score: results, components, statuses", "[server][score]") {
  HandlerFixture f;
  const json body = {{"items",
                      {{{"completion", R1Completion("\\frac{3}{4}")}, {"answer", "0.75"}},
                       {{"completion", R1Completion("2")}, {"answer", 3}, {"prompt", "p"}},
                       {{"completion", R1Completion("2")}},
                       {{"completion", "no format"}, {"answer", "2"}, {"completion_tokens", 3}}}}};
  const Response res = f.Post("/v1/score", body);
  REQUIRE(res.result() == http::status::ok);
  const json out = Body(res);
  CHECK(out["reward"] == "r1");
  const json& r = out["results"];
  REQUIRE(r.size() == 4);
  CHECK(r[0]["reward"] == 2.0);
  CHECK(r[0]["status"] == "ok");
  CHECK(r[0]["verdict"] == "correct");
  CHECK(r[0]["extracted"] == "\\frac{3}{4}");
  CHECK(r[0]["components"]["format.think_answer"] == 1.0);
  CHECK(r[0]["components"]["accuracy.math"] == 1.0);
  CHECK_FALSE(r[0].contains("detail"));
  CHECK(r[1]["reward"] == 1.0);
  CHECK(r[1]["verdict"] == "incorrect");
  CHECK(r[2]["reward"].is_null());
  CHECK(r[2]["status"] == "missing_gold");
  CHECK(r[2]["components"]["accuracy.math"].is_null());
  CHECK_THAT(r[2]["detail"].get<std::string>(), Catch::StartsWith("accuracy.math"));
  CHECK(r[3]["reward"] == 0.0);
  // Components keep the rules' order (json sorts keys on parsing: check the raw text).
  CHECK(res.body().find("\"format.think_answer\"") < res.body().find("\"accuracy.math\""));
}

TEST_CASE("v1/score: named rewards", "[server][score]") {
  HandlerFixture f;
  const json items = {{{"completion", R1Completion("1")}, {"answer", "1"}}};
  CHECK(Body(f.Post("/v1/score", {{"items", items}, {"reward", "format"}}))["results"][0]["reward"] == 0.5);
  CHECK(Body(f.Post("/v1/score?reward=format", {{"items", items}}))["reward"] == "format");
  CHECK(Body(f.Post("/v1/score?reward=format", {{"items", items}, {"reward", "r1"}}))["reward"] == "r1");
  CHECK(Body(f.Post("/v1/score", {{"items", items}, {"reward", "format"}}))["results"][0]["verdict"].is_null());
  const Response unknown = f.Post("/v1/score", {{"items", items}, {"reward", "x"}});
  CHECK(unknown.result() == http::status::bad_request);
  CHECK_THAT(ErrorOf(unknown), Catch::Contains("reward: unknown reward 'x'"));
}

TEST_CASE("v1/score: 400 names the field", "[server][errors]") {
  HandlerFixture f;
  auto error_for = [&](const json& body) {
    const Response res = f.Post("/v1/score", body);
    CHECK(res.result() == http::status::bad_request);
    return ErrorOf(res);
  };
  CHECK_THAT(error_for(json::object()), Catch::Contains("items: missing"));
  CHECK_THAT(error_for({{"items", 1}}), Catch::Contains("items: expected an array of objects, got number"));
  CHECK_THAT(error_for({{"items", {1}}}), Catch::Contains("items[0]: expected an object, got number"));
  CHECK_THAT(error_for({{"items", {{{"answer", "1"}}}}}), Catch::Contains("items[0].completion: missing"));
  CHECK_THAT(error_for({{"items", {{{"completion", 1}}}}}),
             Catch::Contains("items[0].completion: expected a string, got number"));
  CHECK_THAT(error_for({{"items", {{{"completion", "a"}, {"answer", json::object()}}}}}),
             Catch::Contains("items[0].answer: expected a string, a number, null or an array of strings and numbers, got object"));
  CHECK_THAT(error_for({{"items", {{{"completion", "a"}, {"answer", {"1", json::array()}}}}}}),
             Catch::Contains("items[0].answer[1]: expected a string or a number, got array"));
  CHECK_THAT(error_for({{"items", {{{"completion", "a"}, {"completion_tokens", -1}}}}}),
             Catch::Contains("items[0].completion_tokens: expected a non-negative integer"));
  CHECK_THAT(error_for({{"items", {{{"completion", "a"}, {"completion_tokens", 1.5}}}}}),
             Catch::Contains("items[0].completion_tokens: expected a non-negative integer, got number"));
  CHECK_THAT(error_for({{"items", {{{"completion", "a"}, {"prompt", 3}}}}}),
             Catch::Contains("items[0].prompt: expected a string or null"));
  CHECK_THAT(error_for({{"items", json::array()}, {"reward", 3}}), Catch::Contains("reward: expected a reward name"));
}

TEST_CASE("numbers beyond what a field can hold are 400 naming the field", "[server][errors]") {
  HandlerFixture f;
  auto error_for = [&](const std::string& target, const std::string& body) {
    const Response res = f.Call(http::verb::post, target, body);
    CHECK(res.result() == http::status::bad_request);
    return ErrorOf(res);
  };
  // 2^63 and 2^64 - 1 parse as unsigned integers; read as int64_t they would wrap negative.
  CHECK_THAT(error_for("/v1/score", R"({"items": [{"completion": "a", "completion_tokens": 9223372036854775808}]})"),
             Catch::Contains("items[0].completion_tokens: expected a non-negative integer below 2^63"));
  CHECK_THAT(error_for("/v1/score", R"({"items": [{"completion": "a", "completion_tokens": 18446744073709551615}]})"),
             Catch::Contains("items[0].completion_tokens"));
  CHECK_THAT(error_for("/v1/score", R"({"items": [{"completion": "a", "completion_tokens": 1e30}]})"),
             Catch::Contains("items[0].completion_tokens: expected a non-negative integer"));
  // Beyond a double's range: nlohmann throws out_of_range, not parse_error.
  CHECK_THAT(error_for("/get_reward", R"({"query": ["a"], "labels": [1e400]})"),
             Catch::Contains("labels[0]: number out of range") && Catch::Contains("1e400"));
  CHECK_THAT(error_for("/v1/score", R"({"items": [{"completion": "a"}, {"completion": "b", "answer": -1e999}]})"),
             Catch::Contains("items[1].answer: number out of range"));
  CHECK_THAT(error_for("/get_reward", R"({"query": ["a"], "metas": {"x": [[1], {"y": 2}, 1e400]}})"),
             Catch::Contains("metas.x[2]: number out of range"));
  CHECK_THAT(error_for("/get_reward", "1e400"), Catch::Contains("body: number out of range"));
  // The largest count that fits is accepted.
  const Response ok = f.Post("/v1/score", {{"items", {{{"completion", "a"}, {"completion_tokens", INT64_MAX}}}}});
  CHECK(ok.result() == http::status::ok);
}

TEST_CASE("error messages are valid UTF-8 whatever the request echoed", "[server][errors]") {
  HandlerFixture f;
  const std::string bad = "\xff\xfe\xc3(\xed\xa0\x80";  // invalid, truncated, a surrogate
  // nlohmann accepts strings of well-formed UTF-8 only (no overlongs, no surrogates).
  REQUIRE_FALSE(json::accept("\"" + bad + "\""));
  const std::vector<Response> answers = {
      f.Call(http::verb::get, "/nope" + bad),
      f.Call(http::verb::post, "/v1/score", R"({"items": []})", "text/" + bad),
      f.Call(http::verb::post, "/v1/score?reward=" + bad, R"({"items": []})"),
      f.Call(http::verb::post, "/get_reward", R"({"query": [")" + bad + "\"]}"),
      f.Call(http::verb::post, "/get_reward", R"({")" + bad + "\": 1e400}")};
  for (const Response& res : answers) {
    INFO(res.body());
    CHECK(json::accept(res.body()));
  }
}

TEST_CASE("status codes: 404, 405, 415, 413", "[server][errors]") {
  HandlerFixture f;
  const Response not_found = f.Call(http::verb::get, "/nope");
  CHECK(not_found.result() == http::status::not_found);
  CHECK_THAT(ErrorOf(not_found), Catch::Contains("unknown path '/nope'"));

  const Response wrong_method = f.Call(http::verb::get, "/get_reward");
  CHECK(wrong_method.result() == http::status::method_not_allowed);
  CHECK(wrong_method[http::field::allow] == "POST");
  CHECK(f.Call(http::verb::post, "/health", "{}").result() == http::status::method_not_allowed);

  const Response media = f.Call(http::verb::post, "/v1/score", R"({"items": []})", "text/plain");
  CHECK(media.result() == http::status::unsupported_media_type);
  CHECK_THAT(ErrorOf(media), Catch::Contains("expected application/json, got 'text/plain'"));
  CHECK(f.Call(http::verb::post, "/v1/score", R"({"items": []})", "").result() ==
        http::status::unsupported_media_type);
  CHECK(f.Call(http::verb::post, "/v1/score", R"({"items": []})", "application/json; charset=utf-8").result() ==
        http::status::ok);

  f.config.max_inflight_items = 2;
  const Response too_many = f.Post("/get_reward", {{"query", {"a", "b", "c"}}});
  CHECK(too_many.result() == http::status::payload_too_large);
  CHECK_THAT(ErrorOf(too_many), Catch::Contains("max_inflight_items (2)"));
}

TEST_CASE("auth: bearer token", "[server][auth]") {
  HandlerFixture f;
  f.config.auth_token = "s3cret";
  const json body = {{"items", {{{"completion", "x"}}}}};
  const Response missing = f.Post("/v1/score", body);
  CHECK(missing.result() == http::status::unauthorized);
  CHECK(missing[http::field::www_authenticate] == "Bearer");
  CHECK(Body(missing).contains("error"));
  f.token = "wrong";
  CHECK(f.Post("/v1/score", body).result() == http::status::unauthorized);
  f.token = "s3cre";
  CHECK(f.Post("/v1/score", body).result() == http::status::unauthorized);
  CHECK(f.Call(http::verb::get, "/metrics").result() == http::status::unauthorized);
  CHECK(f.Call(http::verb::get, "/nope").result() == http::status::unauthorized);
  f.token = "s3cret";
  CHECK(f.Post("/v1/score", body).result() == http::status::ok);
  f.token = "";
  CHECK(f.Call(http::verb::get, "/health").result() == http::status::ok);  // health stays open
}

TEST_CASE("health and metrics", "[server]") {
  HandlerFixture f;
  const json health = Body(f.Call(http::verb::get, "/health"));
  CHECK(health["status"] == "ok");
  CHECK(health["default_reward"] == "r1");
  REQUIRE(health["rewards"].size() == 2);
  CHECK(health["rewards"][0]["name"] == "r1");
  CHECK(health["rewards"][0]["default"] == true);
  CHECK(health["rewards"][0]["rules"] == json({"format.think_answer", "accuracy.math"}));
  CHECK(health["rewards"][0]["spec"].is_object());
  CHECK(health.contains("version"));

  rewards::RewardResult result;
  result.answer_check.emplace();
  result.answer_check->verdict = math::Verdict::kCorrect;
  f.metrics.RecordResult(result);
  f.metrics.RecordRequest(Endpoint::kGetReward, 200, 3, 0.0007);
  f.metrics.RecordRequest(Endpoint::kScore, 400, 0, 0.0001);
  const Response res = f.Call(http::verb::get, "/metrics");
  REQUIRE(res.result() == http::status::ok);
  CHECK_THAT(std::string(res[http::field::content_type]), Catch::StartsWith("text/plain"));
  const std::string& text = res.body();
  CHECK_THAT(text, Catch::Contains("rl_server_requests_total{endpoint=\"/get_reward\",code=\"200\"} 1"));
  CHECK_THAT(text, Catch::Contains("rl_server_items_total{endpoint=\"/get_reward\",code=\"200\"} 3"));
  CHECK_THAT(text, Catch::Contains("rl_server_requests_total{endpoint=\"/v1/score\",code=\"400\"} 1"));
  CHECK_THAT(text, Catch::Contains("rl_server_request_duration_seconds_bucket{endpoint=\"/get_reward\",le=\"0.001\"} 1"));
  CHECK_THAT(text, Catch::Contains("rl_server_request_duration_seconds_bucket{endpoint=\"/get_reward\",le=\"0.0005\"} 0"));
  CHECK_THAT(text, Catch::Contains("rl_server_request_duration_seconds_count{endpoint=\"/get_reward\"} 1"));
  CHECK_THAT(text, Catch::Contains("rl_server_verdicts_total{verdict=\"correct\"} 1"));
  CHECK_THAT(text, Catch::Contains("rl_server_score_status_total{status=\"ok\"} 1"));
  CHECK_THAT(text, Catch::Contains("rl_server_items_in_flight 0"));
}

TEST_CASE("overloaded answer carries Retry-After", "[server][errors]") {
  ServerConfig config = TestConfig();
  config.retry_after_s = 3;
  const Response res = OverloadedResponse(config, 10, 11, true);
  CHECK(res.result() == http::status::service_unavailable);
  CHECK(res[http::field::retry_after] == "3");
  CHECK_THAT(json::parse(res.body())["error"].get<std::string>(), Catch::Contains("max_inflight_items"));
}

}  // namespace
}  // namespace rl::rewards::server
