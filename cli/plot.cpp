// `rl plot RUN_DIR [-o FILE.png]`: a picture of a training run, drawn by gnuplot.
//
//   rl plot runs/quickstart              # runs/quickstart/run.png (and run.gp beside it)
//
// Panels against the GRPO step, from RUN_DIR/metrics.jsonl: reward and each rule's mean;
// accuracy (the accuracy rule in training; held out: before GRPO at step 0, during GRPO every
// eval.every steps, after GRPO at the last step); KL; entropy; clip ratios; completion length;
// the shares of clipped completions and of groups without signal; the gradient norm; and the
// held-out format rate and accuracy before and after GRPO as bars. The evaluations come from
// RUN_DIR/eval.json (or eval_before_grpo.json while a run is going). A panel whose metric the
// run did not log (kl with beta 0) says so.
//
// Our code draws nothing: it writes a gnuplot script with the data inline (FILE with the
// extension .gp, kept so that the picture can be restyled with `gnuplot FILE.gp`) and runs
// gnuplot (pngcairo) on it. Errors name the file and line: a metrics line that is not a JSON
// object with a numeric "step", a run directory without metrics.jsonl, no gnuplot on PATH.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"

extern char** environ;

namespace rl::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

struct PlotFlags {
  std::string run_dir;
  std::string output;  // empty: RUN_DIR/run.png
};

struct Series {
  std::string key;    // a metrics.jsonl key
  std::string title;  // the legend's
  bool sparse = false;  // logged at some steps only (evaluations): points joined across the gaps
};

struct Panel {
  std::string title;
  std::vector<Series> series;
  // The y range: empty for gnuplot's autoscale; "[0:0.01<*]" (from 0 to the maximum, at least
  // 0.01) draws shares that are all zero; "[0:1.05]" shows points at 1 above the frame.
  std::string yrange = "";
  std::string key = "top left";
};

// The held-out evaluation before and after GRPO (either may be missing).
struct BeforeAfter {
  std::optional<Json> before, after;
};

// Every line of metrics.jsonl; throws "FILE:LINE: what" for a line that is not a JSON object
// with a numeric "step".
std::vector<Json> ReadMetrics(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open (is it a run directory?)");
  std::vector<Json> rows;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j = Json::parse(line, nullptr, false);
    const std::string where = fmt::format("{}:{}: ", path.string(), number);
    if (j.is_discarded() || !j.is_object()) throw std::runtime_error(where + "not a JSON object");
    if (!j.contains("step") || !j["step"].is_number()) throw std::runtime_error(where + "no numeric \"step\"");
    rows.push_back(std::move(j));
  }
  if (rows.empty()) throw std::runtime_error(path.string() + ": no steps yet");
  return rows;
}

// What the run's directory says of the held-out evaluation: eval.json when the run finished,
// eval_before_grpo.json while it runs. Unreadable files are left out (the metrics are the
// picture; the evaluation a panel of it).
BeforeAfter ReadEvaluations(const fs::path& run_dir) {
  BeforeAfter e;
  auto read = [](const fs::path& path) -> Json {
    std::ifstream in(path, std::ios::binary);
    return in ? Json::parse(in, nullptr, false) : Json();
  };
  const Json summary = read(run_dir / "eval.json");
  if (summary.is_object() && summary.contains("before_grpo")) e.before = summary["before_grpo"];
  if (summary.is_object() && summary.contains("after_grpo")) e.after = summary["after_grpo"];
  if (!e.before) {
    Json before = read(run_dir / "eval_before_grpo.json");
    if (before.is_object()) e.before = std::move(before);
  }
  return e;
}

// The panels, with the rules the run's reward has ("rewards/<rule>/mean", in first-seen order).
std::vector<Panel> Panels(const std::vector<Json>& rows) {
  Panel reward{"reward (mean over completions)", {{"reward", "reward"}}};
  std::set<std::string> seen;
  std::string accuracy_rule;
  for (const Json& row : rows) {
    for (const auto& [key, value] : row.items()) {
      if (key.rfind("rewards/", 0) != 0 || key.size() < 14 || key.substr(key.size() - 5) != "/mean") continue;
      if (!seen.insert(key).second) continue;
      const std::string rule = key.substr(8, key.size() - 13);
      reward.series.push_back({key, rule});
      if (accuracy_rule.empty() && rule.rfind("accuracy.", 0) == 0) accuracy_rule = key;
    }
  }
  Panel accuracy{"accuracy",
                 {{"eval/accuracy", "held-out accuracy", true}, {"eval/format_rate", "held-out format rate", true}},
                 "[0:1.05]",
                 "bottom right"};
  if (!accuracy_rule.empty()) {
    const std::string rule = accuracy_rule.substr(8, accuracy_rule.size() - 13);
    accuracy.series.insert(accuracy.series.begin(), {accuracy_rule, "training (" + rule + ")"});
  }
  return {reward,
          accuracy,
          {"KL to the reference", {{"kl", "kl"}}},
          {"entropy (nats/token)", {{"entropy", "entropy"}}},
          {"clip ratios",
           {{"clip_ratio/low_mean", "low"}, {"clip_ratio/high_mean", "high"}, {"clip_ratio/region_mean", "region"}},
           "[0:0.01<*]"},
          {"completion length (tokens)",
           {{"completions/mean_length", "mean"}, {"completions/min_length", "min"}, {"completions/max_length", "max"}}},
          {"shares",
           {{"completions/clipped_ratio", "clipped at max length"}, {"frac_reward_zero_std", "groups with zero std"}},
           "[0:0.01<*]"},
          {"gradient norm", {{"grad_norm", "grad norm"}}}};
}

// A gnuplot single-quoted string ('' is a quote inside one).
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string Number(const Json& row, const std::string& key) {
  const auto it = row.find(key);
  return it != row.end() && it->is_number() ? fmt::format("{}", it->get<double>()) : "NaN";
}

// $metrics: one row per step; column 1 the step, column k + 2 the k-th of `keys`.
std::string MetricsBlock(const std::vector<Json>& rows, const std::vector<std::string>& keys) {
  std::string block = "$metrics << EOD\n";
  for (const Json& row : rows) {
    block += Number(row, "step");
    for (const std::string& key : keys) block += fmt::format(" {}", Number(row, key));
    block += "\n";
  }
  return block + "EOD\n";
}

bool HasValues(const std::vector<Json>& rows, const std::string& key) {
  for (const Json& row : rows) {
    if (row.contains(key) && row[key].is_number() && std::isfinite(row[key].get<double>())) return true;
  }
  return false;
}

// An empty panel with a sentence in its middle (gnuplot refuses to plot no points).
std::string EmptyPanel(const std::string& title, const std::string& why) {
  return fmt::format("set title {}\nset label 1 {} at graph 0.5, graph 0.5 center\n"
                     "plot [0:1] [0:1] -1 notitle\nunset label 1\n",
                     Quote(title), Quote(why));
}

// $sparse<column>: the steps at which a sparse series was logged, so that its points are joined.
std::string SparseBlock(const std::vector<Json>& rows, const std::string& key, size_t column) {
  std::string block = fmt::format("$sparse{} << EOD\n", column);
  for (const Json& row : rows) {
    if (HasValues({row}, key)) block += fmt::format("{} {}\n", Number(row, "step"), Number(row, key));
  }
  return block + "EOD\n";
}

std::string PlotPanel(const Panel& panel, const std::vector<Json>& rows, const std::vector<std::string>& keys) {
  std::string blocks;
  std::vector<std::string> parts;
  for (const Series& s : panel.series) {
    if (!HasValues(rows, s.key)) continue;
    const size_t column = static_cast<size_t>(std::find(keys.begin(), keys.end(), s.key) - keys.begin()) + 2;
    if (s.sparse) {
      blocks += SparseBlock(rows, s.key, column);
      parts.push_back(fmt::format("$sparse{} using 1:2 with linespoints pointtype 7 title {}", column, Quote(s.title)));
    } else {
      parts.push_back(fmt::format("$metrics using 1:{} with lines linewidth 1.5 title {}", column, Quote(s.title)));
    }
  }
  if (parts.empty()) return EmptyPanel(panel.title, "not logged by this run");
  std::string plot = blocks + fmt::format("set title {}\nset key {}\n", Quote(panel.title), panel.key);
  if (!panel.yrange.empty()) plot += fmt::format("set yrange {}\n", panel.yrange);
  plot += "plot ";
  for (size_t i = 0; i < parts.size(); ++i) plot += (i ? ", " : "") + parts[i];
  return plot + "\nset autoscale y\n";
}

// Format rate and accuracy, before and after GRPO, as clustered bars.
std::string EvaluationPanel(const BeforeAfter& e) {
  if (!e.before && !e.after) return EmptyPanel("held-out evaluation", "no eval.json or eval_before_grpo.json");
  auto value = [](const std::optional<Json>& j, const char* key) {
    return j && j->contains(key) && (*j)[key].is_number() ? fmt::format("{:.3f}", (*j)[key].get<double>()) : "NaN";
  };
  const std::string title = e.before && e.after ? fmt::format("held-out accuracy {} -> {}", value(e.before, "accuracy"),
                                                               value(e.after, "accuracy"))
                                                 : "held-out evaluation";
  std::string s = "$eval << EOD\n";
  s += fmt::format("\"format rate\" {} {}\n", value(e.before, "format_rate"), value(e.after, "format_rate"));
  s += fmt::format("accuracy {} {}\nEOD\n", value(e.before, "accuracy"), value(e.after, "accuracy"));
  s += fmt::format("set title {}\n", Quote(title));
  s += "set style data histogram\nset style histogram clustered gap 1\n"
       "set style fill solid 0.8 border -1\nset xrange [-0.6:1.6]\nset yrange [0:1.15]\nunset xlabel\n"
       "set key top center horizontal\n"
       "plot $eval using 2:xtic(1) title 'before GRPO', '' using 3 title 'after GRPO'\n";
  return s;
}

// The metrics with the held-out evaluation before GRPO as a row at step 0 and the one after it
// on the last step, so that the held-out accuracy is one series from start to end.
std::vector<Json> WithEvaluations(std::vector<Json> rows, const BeforeAfter& e) {
  auto row = [](const Json& step, const Json& eval) {
    return Json{{"step", step}, {"eval/format_rate", eval.value("format_rate", Json())},
                {"eval/accuracy", eval.value("accuracy", Json())}};
  };
  const Json last = rows.back()["step"];
  if (e.before && e.before->is_object()) rows.insert(rows.begin(), row(0, *e.before));
  if (e.after && e.after->is_object()) rows.push_back(row(last, *e.after));
  return rows;
}

std::string GnuplotScript(const std::vector<Json>& metrics, const BeforeAfter& evals, const std::string& png,
                          const std::string& run_name) {
  const std::vector<Json> rows = WithEvaluations(metrics, evals);
  const std::vector<Panel> panels = Panels(rows);
  std::vector<std::string> keys;
  for (const Panel& p : panels) {
    for (const Series& s : p.series) keys.push_back(s.key);
  }
  std::string script = fmt::format("# Written by `rl plot` (the data inline): `gnuplot {}` draws it again.\n",
                                   fs::path(png).replace_extension(".gp").filename().string());
  script += fmt::format("set terminal pngcairo size 1600,1200 font ',10' noenhanced\nset output {}\n", Quote(png));
  script += MetricsBlock(rows, keys);
  const std::string title = fmt::format("{}: {} GRPO steps", run_name, metrics.size());
  script += fmt::format("set multiplot layout 3,3 title {}\n", Quote(title));
  script += "set grid\nset key top left font ',8'\nset xlabel 'GRPO step'\nset style data lines\n";
  for (const Panel& p : panels) script += PlotPanel(p, rows, keys);
  script += EvaluationPanel(evals);
  return script + "unset multiplot\nset output\n";
}

// The executable `name` in one of PATH's directories; empty when there is none.
fs::path FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
  }
  return {};
}

// Runs `gnuplot script` (no shell); throws when it cannot start or fails.
void RunGnuplot(const fs::path& gnuplot, const fs::path& script) {
  std::string arg0 = gnuplot.string(), arg1 = script.string();
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = 0;
  if (int error = ::posix_spawn(&pid, arg0.c_str(), nullptr, nullptr, argv, environ); error != 0) {
    throw std::runtime_error("cannot start " + arg0 + ": " + std::strerror(error));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("gnuplot failed on " + arg1 + " (status " + std::to_string(status) + ")");
  }
}

void RunPlot(const PlotFlags& flags) {
  const fs::path run_dir(flags.run_dir);
  const fs::path metrics = run_dir / "metrics.jsonl";
  if (!fs::exists(metrics)) {
    throw std::runtime_error(metrics.string() + ": no such file (a run directory has one after its first GRPO step)");
  }
  const std::vector<Json> rows = ReadMetrics(metrics);
  const fs::path gnuplot = FindOnPath("gnuplot");
  if (gnuplot.empty()) throw std::runtime_error("gnuplot not found on PATH: install gnuplot-nox (scripts/setup)");
  const fs::path png = flags.output.empty() ? run_dir / "run.png" : fs::path(flags.output);
  const fs::path script = fs::path(png).replace_extension(".gp");
  const std::string name = fs::weakly_canonical(run_dir).filename().string();
  std::ofstream(script, std::ios::binary) << GnuplotScript(rows, ReadEvaluations(run_dir), fs::absolute(png).string(), name);
  if (!fs::exists(script)) throw std::runtime_error("cannot write " + script.string());
  RunGnuplot(gnuplot, script);
  std::printf("%s\n", png.string().c_str());
}

}  // namespace

void AddPlotCommand(CLI::App& app) {
  auto flags = std::make_shared<PlotFlags>();
  CLI::App* cmd = app.add_subcommand("plot", "Draw a run's metrics and evaluations as a PNG (with gnuplot)");
  cmd->add_option("RUN_DIR", flags->run_dir, "A run's output_dir (metrics.jsonl, eval.json)")->required();
  cmd->add_option("-o,--output", flags->output,
                  "The PNG to write (default RUN_DIR/run.png; its gnuplot script beside it, .gp)");
  cmd->callback([flags] {
    try {
      RunPlot(*flags);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rl plot: %s\n", e.what());
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace rl::cli
