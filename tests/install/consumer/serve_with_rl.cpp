// Answers one /v1/score request with the installed server library's handlers (no socket).
#include <cstdio>
#include <memory>
#include <string>

#include <rewards/server/handlers.h>

int main() {
  namespace server = rl::rewards::server;
  std::string error;
  std::shared_ptr<const rl::rewards::Reward> reward =
      rl::rewards::Reward::FromYamlText("rules:\n  - {name: accuracy.math}\n", &error);
  auto registry = reward ? server::RewardRegistry::FromRewards({{"r", "(in process)", reward}}, "", &error)
                         : nullptr;
  if (!registry) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  server::ServerConfig config;
  server::ServerMetrics metrics;
  server::Request request{boost::beast::http::verb::post, "/v1/score", 11};
  request.set(boost::beast::http::field::content_type, "application/json");
  request.body() = R"({"items": [{"completion": "\\boxed{7}", "answer": ["6", "7"]}]})";
  request.prepare_payload();
  const server::Response response = server::Handle(request, {config, *registry, metrics});
  const bool ok = response.result_int() == 200 &&
                  response.body().find("\"reward\":1.0") != std::string::npos;
  std::printf("serve_with_rl: %s\n", ok ? "ok" : response.body().c_str());
  return ok ? 0 : 1;
}
