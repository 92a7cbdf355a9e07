// write_events METRICS.jsonl DIR: the TensorBoard event file a run with run.tensorboard would
// write for these metrics lines (TensorBoardWriter::AddMetrics at each line's "step", the first
// line's step the writer's first), for the pytest test that reads it back with Python's own
// tools (test_tensorboard_events.py).
// Prints the event file's path.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainer/tensorboard.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: write_events METRICS.jsonl DIR\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "write_events: cannot open %s\n", argv[1]);
    return 1;
  }
  std::vector<nlohmann::ordered_json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::ordered_json::parse(line));
  rl::trainer::TensorBoardWriter writer(argv[2], lines.empty() ? 0 : lines[0].at("step").get<int64_t>());
  for (const nlohmann::ordered_json& metrics : lines) writer.AddMetrics(metrics, metrics.at("step").get<int64_t>());
  writer.Flush();
  std::printf("%s\n", writer.path().c_str());
  return 0;
}
