#include "rewards/server/handlers.h"

#include <algorithm>
#include <limits>
#include <string_view>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <fmt/format.h>

#include "rewards/any_gold.h"

#ifndef RL_VERSION
#define RL_VERSION "unknown"
#endif

namespace rl::rewards::server {
namespace {

namespace http = boost::beast::http;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr std::string_view kServerName = "rl-reward-server";

std::string Dump(const ordered_json& j) {
  // Replace, never throw, on invalid UTF-8 (an extracted answer cut mid-character).
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Response MakeResponse(http::status status, std::string body, std::string_view content_type,
                      unsigned version, bool keep_alive) {
  Response res{status, version};
  res.set(http::field::server, kServerName);
  res.set(http::field::content_type, content_type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response JsonResponse(const ordered_json& body, unsigned version, bool keep_alive,
                      http::status status = http::status::ok) {
  return MakeResponse(status, Dump(body), "application/json", version, keep_alive);
}

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

// The value of `key` in the target's query string ("" when absent). Reward names are plain
// identifiers, so no percent-decoding is needed.
std::string_view QueryParam(std::string_view target, std::string_view key) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const std::string_view pair = query.substr(0, query.find('&'));
    if (pair.size() > key.size() && pair.substr(0, key.size()) == key && pair[key.size()] == '=') {
      return pair.substr(key.size() + 1);
    }
    if (pair.size() == query.size()) break;
    query.remove_prefix(pair.size() + 1);
  }
  return {};
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Compares in time independent of where the strings differ (tokens are secrets).
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % std::max<size_t>(b.size(), 1)];
  return diff == 0 && !b.empty();
}

bool Authorized(const Request& req, const std::string& token) {
  if (token.empty()) return true;
  const std::string_view header = req[http::field::authorization];
  constexpr std::string_view kScheme = "Bearer ";
  if (header.size() <= kScheme.size() || !EqualsIgnoreCase(header.substr(0, kScheme.size()), kScheme)) {
    return false;
  }
  return ConstantTimeEquals(header.substr(kScheme.size()), token);
}

bool IsJsonContentType(std::string_view content_type) {
  constexpr std::string_view kJson = "application/json";
  if (content_type.size() < kJson.size() ||
      !EqualsIgnoreCase(content_type.substr(0, kJson.size()), kJson)) {
    return false;
  }
  const std::string_view rest = content_type.substr(kJson.size());
  return rest.empty() || rest.front() == ';' || rest.front() == ' ';
}

// --- field validation: each returns an error naming the field, or "" ---------------------

std::string ExpectedGot(std::string_view field, std::string_view expected, const json& value) {
  return fmt::format("{}: expected {}, got {}", field, expected, value.type_name());
}

std::string CheckStringArray(const json& body, std::string_view field, bool required, size_t n,
                             bool allow_null_items) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) {
    return required ? fmt::format("{}: missing (expected an array of strings)", field) : "";
  }
  if (!it->is_array()) return ExpectedGot(field, "an array of strings", *it);
  if (n != SIZE_MAX && it->size() != n) {
    return fmt::format("{}: expected {} items (as many as query), got {}", field, n, it->size());
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& item = (*it)[i];
    if (item.is_string() || (allow_null_items && item.is_null())) continue;
    return ExpectedGot(fmt::format("{}[{}]", field, i), "a string", item);
  }
  return "";
}

// A gold answer: a string, a number, null, or an array of strings and numbers (several
// acceptable answers). "" if `value` is one, else what is wrong, naming `field`.
std::string CheckGold(const json& value, const std::string& field) {
  constexpr std::string_view kExpected = "a string, a number, null or an array of strings and numbers";
  if (value.is_string() || value.is_number() || value.is_null()) return "";
  if (!value.is_array()) return ExpectedGot(field, kExpected, value);
  for (size_t k = 0; k < value.size(); ++k) {
    if (!value[k].is_string() && !value[k].is_number()) {
      return ExpectedGot(fmt::format("{}[{}]", field, k), "a string or a number", value[k]);
    }
  }
  return "";
}

std::string CheckLabels(const json& body, size_t n) {
  const auto it = body.find("labels");
  if (it == body.end() || it->is_null()) return "";
  if (!it->is_array()) return ExpectedGot("labels", "an array of gold answers", *it);
  if (it->size() != n) {
    return fmt::format("labels: expected {} items (as many as query), got {}", n, it->size());
  }
  for (size_t i = 0; i < it->size(); ++i) {
    std::string error = CheckGold((*it)[i], fmt::format("labels[{}]", i));
    if (!error.empty()) return error;
  }
  return "";
}

// The gold answers a checked JSON value gives: text, a number (its JSON text), each item of an
// array, none for null or "".
std::vector<std::string_view> GoldsOf(const json& value, std::deque<std::string>& owned) {
  std::vector<std::string_view> golds;
  auto add = [&](const json& one) {
    if (one.is_string() && !one.get_ref<const std::string&>().empty()) {
      golds.push_back(one.get_ref<const std::string&>());
    } else if (one.is_number()) {
      golds.push_back(owned.emplace_back(one.dump()));
    }
  };
  if (value.is_array()) {
    for (const json& one : value) add(one);
  } else {
    add(value);
  }
  return golds;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

}  // namespace

bool LocateCompletion(std::string_view query, std::string_view prompt,
                      const GetRewardOptions& options, rewards::Sample* sample) {
  if (!prompt.empty()) {
    size_t start = 0;
    for (bool skipped = true; skipped;) {
      skipped = false;
      for (const std::string& pad : options.pad_tokens) {
        if (!pad.empty() && StartsWith(query.substr(start), pad) &&
            !StartsWith(query.substr(start), prompt)) {
          start += pad.size();
          skipped = true;
        }
      }
    }
    if (StartsWith(query.substr(start), prompt)) {
      sample->prompt = query.substr(start, prompt.size());
      sample->completion = query.substr(start + prompt.size());
      return true;
    }
  }
  const size_t marker = query.rfind(options.assistant_marker);
  if (marker != std::string_view::npos) {
    const size_t end = marker + options.assistant_marker.size();
    sample->prompt = query.substr(0, end);
    sample->completion = query.substr(end);
    return true;
  }
  if (!prompt.empty()) return false;
  sample->prompt = {};
  sample->completion = query;
  return true;
}

namespace {

// --- endpoints ------------------------------------------------------------------------------

// Where in a JSON text parsing stopped, as a field path ("labels[0]", "items[2].answer"):
// a SAX pass that keeps only the path, run again over a body that failed to parse.
class JsonErrorPath final : public json::json_sax_t {
 public:
  static std::string Of(std::string_view text) {
    JsonErrorPath path;
    json::sax_parse(text, &path);
    return path.ToString();
  }

  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(json::number_integer_t) override { return Value(); }
  bool number_unsigned(json::number_unsigned_t) override { return Value(); }
  bool number_float(json::number_float_t, const json::string_t&) override { return Value(); }
  bool string(json::string_t&) override { return Value(); }
  bool binary(json::binary_t&) override { return Value(); }
  bool start_object(size_t) override { return Open(false); }
  bool key(json::string_t& key) override {
    frames_.back().key = key;
    return true;
  }
  bool end_object() override { return Close(); }
  bool start_array(size_t) override { return Open(true); }
  bool end_array() override { return Close(); }
  bool parse_error(size_t, const std::string&, const json::exception&) override { return false; }

 private:
  struct Frame {
    bool array = false;
    size_t index = 0;  // of the array's element being read
    std::string key;   // of the object's member being read
  };

  bool Value() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }
  bool Open(bool array) {
    frames_.push_back(Frame{array, 0, {}});
    return true;
  }
  bool Close() {
    frames_.pop_back();
    return Value();
  }
  std::string ToString() const {
    std::string out;
    for (const Frame& f : frames_) {
      if (f.array) {
        out += fmt::format("[{}]", f.index);
      } else {
        out += (out.empty() ? "" : ".") + f.key;
      }
    }
    return out.empty() ? "body" : out;
  }

  std::vector<Frame> frames_;
};

// The error message as an HTTP reason phrase: clients that report only the status line
// (OpenRLHF's aiohttp: "422, message='...'") then show why. A reason phrase may not hold
// control characters (RFC 9112: HTAB, SP, VCHAR, obs-text), clients decode other bytes each
// their own way, and a status line must stay well under parsers' line limits (aiohttp: 8190
// bytes): control characters become spaces, bytes outside ASCII '?', and the phrase is cut
// at kMaxReasonBytes. The body keeps the whole message.
std::string ReasonPhrase(std::string_view message) {
  constexpr size_t kMaxReasonBytes = 1024;
  std::string phrase(message.substr(0, kMaxReasonBytes));
  for (char& c : phrase) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80) {
      c = '?';
    } else if (byte < 0x20 || byte == 0x7f) {
      c = ' ';
    }
  }
  return phrase;
}

// nlohmann's message without its "[json.exception.<kind>.<id>] " prefix.
std::string_view WithoutExceptionId(const json::exception& e) {
  const std::string_view what = e.what();
  const size_t end = what.find("] ");
  return end == std::string_view::npos ? what : what.substr(end + 2);
}

struct Parsed {
  json body;
  std::optional<Response> error;
};

Parsed ParseJsonBody(const Request& req) {
  Parsed parsed;
  auto fail = [&](std::string_view message) {
    parsed.error = ErrorResponse(http::status::bad_request, message, req.version(), req.keep_alive());
    return std::move(parsed);
  };
  try {
    parsed.body = json::parse(req.body());
  } catch (const json::parse_error& e) {
    return fail(fmt::format("body: not valid JSON ({})", e.what()));
  } catch (const json::out_of_range& e) {
    // A number beyond a double's range (1e400): valid JSON that nlohmann cannot hold.
    return fail(fmt::format("{}: number out of range ({}; JSON numbers must fit in a double)",
                            JsonErrorPath::Of(req.body()), WithoutExceptionId(e)));
  }
  if (!parsed.body.is_object()) return fail(ExpectedGot("body", "a JSON object", parsed.body));
  return parsed;
}

const NamedReward* FindReward(std::string_view name, const HandlerContext& context,
                              std::string* error) {
  const NamedReward* reward = context.rewards.Find(name);
  if (!reward) {
    *error = fmt::format("reward: unknown reward '{}' (configured: {})", name,
                         context.rewards.Names());
  }
  return reward;
}

std::unique_ptr<ScoringJob> NewJob(Endpoint endpoint, const Request& req, json body,
                                   const NamedReward* reward, size_t n) {
  auto job = std::make_unique<ScoringJob>();
  job->endpoint = endpoint;
  job->reward = reward;
  job->http_version = req.version();
  job->keep_alive = req.keep_alive();
  job->body = std::move(body);
  job->samples.resize(n);
  job->golds.resize(n);
  job->unlocated.assign(n, false);
  job->results.resize(n);
  return job;
}

Routed RouteGetReward(const Request& req, const HandlerContext& context) {
  auto bad = [&](http::status status, std::string_view message) {
    return Routed{ErrorResponse(status, message, req.version(), req.keep_alive()), nullptr};
  };
  Parsed parsed = ParseJsonBody(req);
  if (parsed.error) return Routed{std::move(parsed.error), nullptr};
  const json& body = parsed.body;
  std::string error = CheckStringArray(body, "query", /*required=*/true, SIZE_MAX, false);
  if (!error.empty()) return bad(http::status::bad_request, error);
  const size_t n = body["query"].size();
  error = CheckStringArray(body, "prompts", /*required=*/false, n, /*allow_null_items=*/true);
  if (error.empty()) error = CheckLabels(body, n);
  if (!error.empty()) return bad(http::status::bad_request, error);
  if (static_cast<int64_t>(n) > context.config.max_inflight_items) {
    return bad(http::status::payload_too_large,
               fmt::format("query: {} items is more than max_inflight_items ({}); split the batch",
                           n, context.config.max_inflight_items));
  }
  const NamedReward* reward = FindReward(QueryParam(req.target(), "reward"), context, &error);
  if (!reward) return bad(http::status::bad_request, error);

  auto job = NewJob(Endpoint::kGetReward, req, std::move(parsed.body), reward, n);
  const json& queries = job->body["query"];
  const json* prompts = job->body.contains("prompts") && job->body["prompts"].is_array()
                            ? &job->body["prompts"] : nullptr;
  const json* labels = job->body.contains("labels") && job->body["labels"].is_array()
                           ? &job->body["labels"] : nullptr;
  for (size_t i = 0; i < n; ++i) {
    std::string_view prompt;
    if (prompts && (*prompts)[i].is_string()) prompt = (*prompts)[i].get_ref<const std::string&>();
    rewards::Sample& sample = job->samples[i];
    job->unlocated[i] = !LocateCompletion(queries[i].get_ref<const std::string&>(), prompt,
                                          context.config.get_reward, &sample);
    if (labels) job->golds[i] = GoldsOf((*labels)[i], job->owned);
  }
  return Routed{std::nullopt, std::move(job)};
}

std::string CheckScoreItem(const json& item, size_t i) {
  const std::string field = fmt::format("items[{}]", i);
  if (!item.is_object()) return ExpectedGot(field, "an object", item);
  const auto completion = item.find("completion");
  if (completion == item.end()) return field + ".completion: missing (expected a string)";
  if (!completion->is_string()) return ExpectedGot(field + ".completion", "a string", *completion);
  const auto answer = item.find("answer");
  if (answer != item.end()) {
    std::string error = CheckGold(*answer, field + ".answer");
    if (!error.empty()) return error;
  }
  const auto prompt = item.find("prompt");
  if (prompt != item.end() && !prompt->is_string() && !prompt->is_null()) {
    return ExpectedGot(field + ".prompt", "a string or null", *prompt);
  }
  const auto tokens = item.find("completion_tokens");
  if (tokens != item.end() && !tokens->is_null()) {
    if (!tokens->is_number_integer()) {
      return ExpectedGot(field + ".completion_tokens", "a non-negative integer", *tokens);
    }
    if (!tokens->is_number_unsigned() && tokens->get<int64_t>() < 0) {
      return field + ".completion_tokens: expected a non-negative integer, got a negative one";
    }
    // Read as int64_t below: 2^63 and more would wrap negative.
    if (tokens->is_number_unsigned() &&
        tokens->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return fmt::format("{}.completion_tokens: expected a non-negative integer below 2^63, got {}",
                         field, tokens->get<uint64_t>());
    }
  }
  return "";
}

Routed RouteScore(const Request& req, const HandlerContext& context) {
  auto bad = [&](http::status status, std::string_view message) {
    return Routed{ErrorResponse(status, message, req.version(), req.keep_alive()), nullptr};
  };
  Parsed parsed = ParseJsonBody(req);
  if (parsed.error) return Routed{std::move(parsed.error), nullptr};
  const json& body = parsed.body;
  const auto items = body.find("items");
  if (items == body.end()) return bad(http::status::bad_request, "items: missing (expected an array of objects)");
  if (!items->is_array()) return bad(http::status::bad_request, ExpectedGot("items", "an array of objects", *items));
  for (size_t i = 0; i < items->size(); ++i) {
    const std::string error = CheckScoreItem((*items)[i], i);
    if (!error.empty()) return bad(http::status::bad_request, error);
  }
  std::string_view reward_name = QueryParam(req.target(), "reward");
  const auto reward_field = body.find("reward");
  if (reward_field != body.end() && !reward_field->is_null()) {
    if (!reward_field->is_string()) {
      return bad(http::status::bad_request, ExpectedGot("reward", "a reward name (string)", *reward_field));
    }
    reward_name = reward_field->get_ref<const std::string&>();
  }
  std::string error;
  const NamedReward* reward = FindReward(reward_name, context, &error);
  if (!reward) return bad(http::status::bad_request, error);
  const size_t n = items->size();
  if (static_cast<int64_t>(n) > context.config.max_inflight_items) {
    return bad(http::status::payload_too_large,
               fmt::format("items: {} items is more than max_inflight_items ({}); split the batch",
                           n, context.config.max_inflight_items));
  }

  auto job = NewJob(Endpoint::kScore, req, std::move(parsed.body), reward, n);
  const json& stored = job->body["items"];
  for (size_t i = 0; i < n; ++i) {
    const json& item = stored[i];
    rewards::Sample& sample = job->samples[i];
    sample.completion = item["completion"].get_ref<const std::string&>();
    if (const auto p = item.find("prompt"); p != item.end() && p->is_string()) {
      sample.prompt = p->get_ref<const std::string&>();
    }
    if (const auto a = item.find("answer"); a != item.end()) job->golds[i] = GoldsOf(*a, job->owned);
    if (const auto t = item.find("completion_tokens"); t != item.end() && !t->is_null()) {
      sample.completion_tokens = t->get<int64_t>();
    }
  }
  return Routed{std::nullopt, std::move(job)};
}

Response HealthResponse(const Request& req, const HandlerContext& context) {
  ordered_json rewards = ordered_json::array();
  for (const NamedReward& r : context.rewards.rewards()) {
    rewards.push_back({{"name", r.name},
                       {"default", &r == &context.rewards.default_reward()},
                       {"source", r.source},
                       {"rules", r.reward->rule_names()},
                       {"spec", ordered_json::parse(r.reward->spec().dump())}});
  }
  ordered_json body = {{"status", "ok"},
                       {"version", RL_VERSION},
                       {"default_reward", context.rewards.default_reward().name},
                       {"rewards", std::move(rewards)},
                       {"items_in_flight", context.metrics.items_in_flight.load()}};
  return JsonResponse(body, req.version(), req.keep_alive());
}

// Why sample i of a /get_reward job could not be scored; empty when it was.
std::pair<std::string, std::string> UnscorableReason(const ScoringJob& job, size_t i) {
  if (job.unlocated[i]) {
    return {"prompt_not_found",
            "query does not start with prompts[i] and contains no assistant marker"};
  }
  const rewards::RewardResult& r = job.results[i];
  if (r.total) return {};
  std::string detail;
  for (const rewards::RuleScore& c : r.components) {
    if (c.status != rewards::ScoreStatus::kOk) {
      detail = fmt::format("{}: {}", c.rule, c.detail);
      break;
    }
  }
  return {std::string(rewards::ToString(r.status)), detail};
}

double AccuracyScore(const rewards::RewardResult& r) {
  if (r.answer_check) return r.answer_check->verdict == math::Verdict::kCorrect ? 1.0 : 0.0;
  return std::clamp(r.total.value_or(0.0), 0.0, 1.0);
}

Response FinishGetReward(const ScoringJob& job, const HandlerContext& context) {
  const std::vector<std::string>& rules = job.reward->reward->rule_names();
  const bool zero = context.config.get_reward.on_unscorable ==
                    GetRewardOptions::OnUnscorable::kZero;
  ordered_json rewards = ordered_json::array();
  ordered_json scores = ordered_json::array();
  std::vector<ordered_json> logs(rules.size(), ordered_json::array());
  ordered_json unscorable = ordered_json::array();
  for (size_t i = 0; i < job.size(); ++i) {
    auto [status, detail] = UnscorableReason(job, i);
    if (!status.empty()) {
      unscorable.push_back({{"index", i}, {"status", status}, {"detail", detail}});
      if (!zero) continue;
      rewards.push_back(0.0);
      scores.push_back(0.0);
    } else {
      rewards.push_back(*job.results[i].total);
      scores.push_back(AccuracyScore(job.results[i]));
    }
    const auto& components = job.results[i].components;
    for (size_t k = 0; k < rules.size(); ++k) {
      const bool ok = k < components.size() && components[k].status == rewards::ScoreStatus::kOk;
      logs[k].push_back(ok ? components[k].value : 0.0);
    }
  }
  if (!unscorable.empty() && !zero) {
    const ordered_json& first = unscorable.front();
    const std::string message = fmt::format(
        "{} of {} samples could not be scored; first: sample {}: {} ({}). OpenRLHF cannot take a "
        "null reward: fix the data, or start the server with get_reward.on_unscorable: zero",
        unscorable.size(), job.size(), first["index"].get<size_t>(),
        first["status"].get<std::string>(), first["detail"].get<std::string>());
    ordered_json body = {{"error", message}, {"unscorable", std::move(unscorable)}};
    Response res = JsonResponse(body, job.http_version, job.keep_alive, http::status::unprocessable_entity);
    res.reason(ReasonPhrase(message));
    return res;
  }
  ordered_json extra_logs = ordered_json::object();
  for (size_t k = 0; k < rules.size(); ++k) extra_logs[rules[k]] = std::move(logs[k]);
  ordered_json body = {{"rewards", std::move(rewards)},
                       {"scores", std::move(scores)},
                       {"extra_logs", std::move(extra_logs)}};
  return JsonResponse(body, job.http_version, job.keep_alive);
}

Response FinishScore(const ScoringJob& job) {
  ordered_json results = ordered_json::array();
  for (const rewards::RewardResult& r : job.results) results.push_back(rewards::ToJson(r));
  ordered_json body = {{"reward", job.reward->name}, {"results", std::move(results)}};
  return JsonResponse(body, job.http_version, job.keep_alive);
}

}  // namespace

Endpoint EndpointOf(std::string_view target) {
  const std::string_view path = PathOf(target);
  if (path == "/get_reward") return Endpoint::kGetReward;
  if (path == "/v1/score") return Endpoint::kScore;
  if (path == "/health") return Endpoint::kHealth;
  if (path == "/metrics") return Endpoint::kMetrics;
  return Endpoint::kOther;
}

Response ErrorResponse(http::status status, std::string_view message, unsigned http_version,
                       bool keep_alive) {
  Response res = JsonResponse(ordered_json{{"error", message}}, http_version, keep_alive, status);
  res.reason(ReasonPhrase(message));
  return res;
}

Response OverloadedResponse(const ServerConfig& config, int64_t items, unsigned http_version,
                            bool keep_alive) {
  Response res = ErrorResponse(
      http::status::service_unavailable,
      fmt::format("overloaded: {} more items would exceed max_inflight_items ({}); retry after "
                  "{} s", items, config.max_inflight_items, config.retry_after_s),
      http_version, keep_alive);
  res.set(http::field::retry_after, std::to_string(config.retry_after_s));
  return res;
}

static Routed RouteUnchecked(const Request& req, const HandlerContext& context) {
  const Endpoint endpoint = EndpointOf(req.target());
  auto answer = [&](Response res) { return Routed{std::move(res), nullptr}; };
  auto error = [&](http::status status, std::string_view message) {
    return answer(ErrorResponse(status, message, req.version(), req.keep_alive()));
  };
  if (endpoint != Endpoint::kHealth && !Authorized(req, context.config.auth_token)) {
    Response res = ErrorResponse(http::status::unauthorized,
                                 "missing or wrong bearer token (Authorization: Bearer <token>)",
                                 req.version(), req.keep_alive());
    res.set(http::field::www_authenticate, "Bearer");
    return answer(std::move(res));
  }
  if (endpoint == Endpoint::kOther) {
    return error(http::status::not_found,
                 fmt::format("unknown path '{}' (expected /get_reward, /v1/score, /health, "
                             "/metrics)", PathOf(req.target())));
  }
  const bool is_post = endpoint == Endpoint::kGetReward || endpoint == Endpoint::kScore;
  const http::verb expected = is_post ? http::verb::post : http::verb::get;
  if (req.method() != expected) {
    Response res = ErrorResponse(http::status::method_not_allowed,
                                 fmt::format("{} takes {}, not {}", PathOf(req.target()),
                                             http::to_string(expected), req.method_string()),
                                 req.version(), req.keep_alive());
    res.set(http::field::allow, http::to_string(expected));
    return answer(std::move(res));
  }
  if (endpoint == Endpoint::kHealth) return answer(HealthResponse(req, context));
  if (endpoint == Endpoint::kMetrics) {
    return answer(MakeResponse(http::status::ok, context.metrics.RenderPrometheus(),
                               "text/plain; version=0.0.4", req.version(), req.keep_alive()));
  }
  if (!IsJsonContentType(req[http::field::content_type])) {
    return error(http::status::unsupported_media_type,
                 fmt::format("Content-Type: expected application/json, got '{}'",
                             req[http::field::content_type]));
  }
  return endpoint == Endpoint::kGetReward ? RouteGetReward(req, context) : RouteScore(req, context);
}

Routed Route(const Request& req, const HandlerContext& context) {
  // Validation leaves nothing that should throw; an exception (out of memory) still gets an
  // answer instead of ending the server.
  try {
    return RouteUnchecked(req, context);
  } catch (const std::exception& e) {
    return Routed{ErrorResponse(http::status::internal_server_error,
                                fmt::format("internal error: {}", e.what()), req.version(), false),
                  nullptr};
  }
}

Response FinishJob(const ScoringJob& job, const HandlerContext& context) {
  try {
    return job.endpoint == Endpoint::kGetReward ? FinishGetReward(job, context) : FinishScore(job);
  } catch (const std::exception& e) {
    return ErrorResponse(http::status::internal_server_error,
                         fmt::format("internal error: {}", e.what()), job.http_version, false);
  }
}

void ScoreItems(ScoringJob& job, size_t begin, size_t end) {
  const rewards::Reward& reward = *job.reward->reward;
  for (size_t i = begin; i < end; ++i) {
    if (!job.unlocated[i]) job.results[i] = ScoreAnyGold(reward, job.samples[i], job.golds[i]);
  }
}

Response Handle(const Request& request, const HandlerContext& context) {
  Routed routed = Route(request, context);
  if (routed.response) return std::move(*routed.response);
  ScoreItems(*routed.job, 0, routed.job->size());
  return FinishJob(*routed.job, context);
}

}  // namespace rl::rewards::server
