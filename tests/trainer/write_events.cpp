// write_events METRICS.jsonl DIR: the TensorBoard event file a run with run.tensorboard would
// write for these metrics lines (TensorBoardWriter::AddMetrics at each line's "step"), for the
// pytest test that reads it back with Python's own tools (test_tensorboard_events.py).
// Prints the event file's path.
#include <cstdio>
#include <fstream>
#include <string>

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
  rl::trainer::TensorBoardWriter writer(argv[2]);
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::ordered_json metrics = nlohmann::ordered_json::parse(line);
    writer.AddMetrics(metrics, metrics.at("step").get<int64_t>());
  }
  writer.Flush();
  std::printf("%s\n", writer.path().c_str());
  return 0;
}
