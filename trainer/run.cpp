#include "trainer/run.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "common/blas_kernels.h"
#include "common/json_file.h"
#include "common/random.h"
#include "rl/data/fraction_task.h"
#include "rl/model/decoder.h"
#include "trainer/checkpoint.h"
#include "trainer/distributed.h"
#include "trainer/grpo.h"
#include "trainer/policy.h"
#include "trainer/run_logs.h"
#include "trainer/scoring.h"
#include "trainer/sft.h"

namespace rl::trainer {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Datasets {
  std::vector<data::Example> train, eval;
};

Datasets LoadData(const TrainConfig& config) {
  Datasets d;
  if (config.data.train_file.empty()) {
    data::FractionTaskOptions task;
    task.seed = common::DeriveSeed(static_cast<uint64_t>(config.run.seed), "task");
    task.num_train = config.data.task.num_train;
    task.num_eval = config.data.task.num_eval;
    task.max_numerator = config.data.task.max_numerator;
    task.max_denominator = config.data.task.max_denominator;
    task.teacher_slip_rate = config.data.task.teacher_slip_rate;
    data::FractionTask generated = data::GenerateFractionTask(task);
    d.train = std::move(generated.train);
    d.eval = std::move(generated.eval);
  } else {
    data::JsonlKeys keys{config.data.prompt_key, config.data.answer_key,
                         config.sft.steps > 0 ? config.data.response_key : std::string()};
    d.train = data::ReadJsonlExamples(config.data.train_file, keys);
  }
  if (!config.data.eval_file.empty()) {
    d.eval = data::ReadJsonlExamples(config.data.eval_file, {config.data.prompt_key, config.data.answer_key, ""});
  }
  return d;
}

std::vector<std::string> TokenizerCorpus(const TrainConfig& config, const std::vector<data::Example>& train) {
  std::vector<std::string> corpus;
  for (const data::Example& e : train) corpus.push_back(RenderPrompt(config.tokenizer, e) + e.response);
  return corpus;
}

void WriteJsonFile(const fs::path& path, const nlohmann::json& j) {
  std::string error;
  if (!common::WriteJsonFile(path.string(), j, &error)) throw std::runtime_error(error);
}

nlohmann::json ReadJsonFile(const fs::path& path) {
  std::string error;
  std::optional<nlohmann::json> j = common::ReadJsonFile(path.string(), &error);
  if (!j) throw std::runtime_error(error);
  return std::move(*j);
}

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  return s >= 60 ? fmt::format("{}m{:02d}s", s / 60, s % 60) : fmt::format("{}s", s);
}

std::string ProgressLine(const nlohmann::ordered_json& m, int64_t steps, double elapsed) {
  const int64_t step = m["step"].get<int64_t>();
  std::string rules;
  for (const auto& [key, value] : m.items()) {
    if (key.rfind("rewards/", 0) == 0 && key.size() > 5 && key.substr(key.size() - 5) == "/mean") {
      rules += fmt::format(" {} {:.2f} |", key.substr(8, key.size() - 13), value.get<double>());
    }
  }
  const double per_step = elapsed / static_cast<double>(step);
  return fmt::format("grpo {:>4}/{} | reward {:.3f} ±{:.2f} |{} len {:.0f} | entropy {:.2f} | {:.1f} s/step | eta {}",
                     step, steps, m["reward"].get<double>(), m["reward_std"].get<double>(), rules,
                     m["completions/mean_length"].get<double>(), m["entropy"].get<double>(), per_step,
                     Duration(per_step * static_cast<double>(steps - step)));
}

// Elements of all the tensors: a model's or its adapters' parameter count.
int64_t Numel(const std::vector<torch::Tensor>& tensors) {
  int64_t n = 0;
  for (const torch::Tensor& t : tensors) n += t.numel();
  return n;
}

int64_t ShardBytes(const TrainConfig& config) { return config.checkpoint.max_shard_size_mb * 1'000'000; }

// A stage's weights (initial/, sft/, final/, ...), written atomically, sharded as configured.
void SaveStage(const TrainConfig& config, Policy& policy, const fs::path& dir) {
  SavePolicyAtomically(policy, dir.string(), ShardBytes(config));
}

// A model trained from scratch has its initial weights saved in output_dir/initial, when they
// must be on disk (the reference of the KL term, or the base of a LoRA adapter).
std::string SaveInitialWeights(const TrainConfig& config, Policy& policy, const World& world) {
  const std::string dir = (fs::path(config.run.output_dir) / "initial").string();
  if (world.is_main()) SaveStage(config, policy, dir);
  world.Barrier();  // saved before any rank loads it
  return dir;
}

// Runs the SFT stage, or finds it done (with --resume), and returns the policy it produced.
Policy PolicyAfterSft(const TrainConfig& config, const Datasets& data, bool resume, const World& world) {
  const fs::path out(config.run.output_dir);
  const fs::path sft_dir = out / "sft";
  if (resume && fs::exists(sft_dir / "config.json")) {
    spdlog::info("resume: SFT stage already done, loading {}", sft_dir.string());
    return LoadPolicy(sft_dir.string(), "", config);
  }
  Policy policy = config.model.path.empty() ? MakeTinyPolicy(config, TokenizerCorpus(config, data.train))
                                            : LoadPolicy(config.model.path, config.tokenizer.path, config);
  if (config.model.path.empty()) {
    const auto& c = policy.model->config();
    spdlog::info("model: tiny Qwen2 from scratch, {} layers, hidden {}, vocab {} ({} parameters)", c.num_hidden_layers,
                 c.hidden_size, c.vocab_size, Numel(policy.model->parameters()));
  }
  if (config.sft.steps == 0) return policy;
  if (config.sft.lora.enabled()) {
    const std::string base = config.model.path.empty() ? SaveInitialWeights(config, policy, world) : config.model.path;
    AttachAdapters(policy, config.sft.lora, base, common::DeriveSeed(static_cast<uint64_t>(config.run.seed), "sft lora"));
  }
  spdlog::info("sft: {} steps of {} examples{}", config.sft.steps, config.sft.batch_size,
               config.sft.lora.enabled() ? fmt::format(", LoRA r {}", config.sft.lora.r) : "");
  std::ofstream log;
  if (world.is_main()) log.open(out / "sft_metrics.jsonl", std::ios::binary);
  const auto start = Clock::now();
  SftSummary summary = RunSft(policy, config, data.train, [&](const nlohmann::json& line) {
    log << line.dump() << "\n";
    const int64_t step = line["step"].get<int64_t>();
    if (step % std::max<int64_t>(config.sft.steps / 10, 1) == 0 || step == config.sft.steps) {
      spdlog::info("sft  {:>4}/{} | loss {:.4f} | lr {:.2e} | {}", step, config.sft.steps, line["loss"].get<double>(),
                   line["learning_rate"].get<double>(), Duration(Since(start)));
    }
  }, world);
  if (policy.lora.enabled()) {
    // sft/ holds full weights (what GRPO, a resumed run and transformers load), sft_adapter/
    // the adapter trained on the base.
    if (world.is_main()) SaveStage(config, policy, out / "sft_adapter");
    MergeAdapters(policy);
  }
  if (world.is_main()) SaveStage(config, policy, sft_dir);
  world.Barrier();  // the SFT policy is on disk before any rank loads it as the reference
  spdlog::info("sft: loss {:.4f} -> {:.4f} in {}; saved {}", summary.first_loss, summary.last_loss,
               Duration(summary.seconds), sft_dir.string());
  return policy;
}

// Every rank evaluates its share; rank 0 logs (the others log only warnings).
EvalResult EvaluateAndLog(Policy& policy, const TrainConfig& config, const Datasets& data, const World& world,
                          const char* label) {
  EvalResult r = Evaluate(policy, config, data.eval, world);
  spdlog::info("eval ({}): format {:.3f}, accuracy {:.3f} on {} held-out problems ({} completions, {:.1f} s)", label,
               r.format_rate, r.accuracy, r.problems, r.completions, r.seconds);
  return r;
}

// Creates run.output_dir, clears an earlier run's checkpoints unless resuming, and records the
// effective configuration.
void PrepareOutputDir(const TrainConfig& config, const RunOptions& options) {
  const fs::path out(config.run.output_dir);
  fs::create_directories(out);
  if (!options.resume) {
    if (int64_t removed = RemoveCheckpoints(out.string()); removed > 0) {
      spdlog::info("fresh run: removed {} checkpoints of an earlier run in {} (use --resume to continue it)", removed,
                   out.string());
    }
  }
  std::ofstream(out / "config.yaml", std::ios::binary) << ToYaml(config);
}

// Where GRPO starts: the newest checkpoint (with --resume), else the policy after SFT.
struct StartingPoint {
  Policy policy;
  std::optional<std::string> checkpoint;
  nlohmann::json state;  // the checkpoint's trainer_state.json; null without a checkpoint
};

StartingPoint FindStart(const TrainConfig& config, const Datasets& data, const RunOptions& options,
                        RunSummary& summary) {
  const fs::path out(config.run.output_dir);
  StartingPoint start;
  start.checkpoint = options.resume ? FindLatestCheckpoint(out.string()) : std::nullopt;
  if (options.resume && !options.resume_from.empty()) {
    RequireCompleteCheckpoint(options.resume_from);
    start.checkpoint = options.resume_from;
  }
  if (start.checkpoint) {
    spdlog::info("resume: from {}", *start.checkpoint);
    start.policy = IsAdapterDir(*start.checkpoint) ? LoadAdapterPolicy(*start.checkpoint, config)
                                                   : LoadPolicy(*start.checkpoint, "", config);
    start.state = ReadJsonFile(fs::path(*start.checkpoint) / "trainer_state.json");
    if (start.state.contains("before")) summary.before = EvalResultFromJson(start.state["before"]);
    return start;
  }
  start.policy = PolicyAfterSft(config, data, options.resume, options.world);
  const fs::path before_path = out / "eval_before_grpo.json";
  const World& world = options.world;
  // Rank 0's output directory decides (another machine's may not hold the file).
  const bool evaluated = world.Sum(world.is_main() && options.resume && fs::exists(before_path) ? 1.0 : 0.0) > 0;
  if (evaluated) {
    if (world.is_main()) summary.before = EvalResultFromJson(ReadJsonFile(before_path));
  } else if (!data.eval.empty() && config.eval.num_problems > 0) {
    summary.before = EvaluateAndLog(start.policy, config, data, world, "before GRPO");
    if (world.is_main()) WriteJsonFile(before_path, ToJson(*summary.before));
  }
  return start;
}

// Where the weights GRPO starts from are on disk: the SFT result, the given model, or (tiny, no
// SFT) the initial weights saved for the purpose. They are the KL term's reference and a LoRA
// adapter's base. A resumed run keeps the directory it started with.
std::string StartingWeightsDir(const TrainConfig& config, Policy& policy, const nlohmann::json& state,
                               const World& world) {
  const std::string recorded = state.is_object() ? state.value("reference_dir", std::string()) : std::string();
  if (!recorded.empty()) return recorded;
  if (config.sft.steps > 0) return (fs::path(config.run.output_dir) / "sft").string();
  if (!config.model.path.empty()) return config.model.path;
  return SaveInitialWeights(config, policy, world);
}

// The reference of the KL term as a second model: only with beta > 0 and without LoRA (with
// LoRA it is the policy with its adapters disabled).
std::optional<Policy> LoadReference(const TrainConfig& config, const Policy& policy, const std::string& dir) {
  if (config.grpo.beta <= 0 || policy.lora.enabled()) return std::nullopt;
  return LoadPolicy(dir, dir == config.model.path ? config.tokenizer.path : "", config);
}

// An evaluation as metrics.jsonl and TensorBoard name it.
nlohmann::ordered_json EvalMetrics(const EvalResult& r) {
  return {{"eval/format_rate", r.format_rate}, {"eval/accuracy", r.accuracy}};
}

// What GRPO trains against: the directory of its starting weights (the KL term's reference and
// a LoRA adapter's base; empty when neither is needed) and, with beta > 0 and no LoRA, the
// reference as a second model. Attaches the adapters a fresh LoRA run trains.
struct GrpoReference {
  std::string dir;
  std::optional<Policy> model;
};

GrpoReference PrepareReference(const TrainConfig& config, StartingPoint& start, const World& world) {
  GrpoReference reference;
  if (config.grpo.beta > 0 || config.grpo.lora.enabled()) {
    reference.dir = StartingWeightsDir(config, start.policy, start.state, world);
  }
  if (config.grpo.lora.enabled() && !start.policy.lora.enabled()) {
    AttachAdapters(start.policy, config.grpo.lora, reference.dir,
                   common::DeriveSeed(static_cast<uint64_t>(config.run.seed), "grpo lora"));
    spdlog::info("grpo: LoRA r {} on {} ({} trainable parameters)", config.grpo.lora.r, reference.dir,
                 Numel(TrainableParameters(start.policy)));
  }
  reference.model = LoadReference(config, start.policy, reference.dir);
  return reference;
}

// checkpoint-<step> of the output directory: the policy, AdamW's and the trainer's state, and a
// reference that moves (sync_ref_model), which a resumed run then continues from.
void SaveGrpoCheckpoint(const TrainConfig& config, Policy& policy, GrpoTrainer& trainer, GrpoReference& reference,
                        const RunSummary& summary) {
  const fs::path out(config.run.output_dir);
  const int64_t step = trainer.step();
  Policy* moving = config.grpo.sync_ref_model && reference.model ? &*reference.model : nullptr;
  const std::string saved_reference =
      moving ? (out / ("checkpoint-" + std::to_string(step)) / "reference").string() : reference.dir;
  nlohmann::json saved = {{"grpo", trainer.State()}, {"reference_dir", saved_reference}, {"seed", config.run.seed}};
  if (summary.before) saved["before"] = ToJson(*summary.before);
  SaveCheckpoint(out.string(), step, policy, trainer.optimizer(), saved, config.checkpoint.keep_last, moving,
                 ShardBytes(config));
}

// GRPO steps until grpo.steps: metrics, progress, evaluations and checkpoints as configured.
// Rank 0 opens `logs` (trainer/run_logs.h) at the step GRPO starts from.
void RunGrpo(const TrainConfig& config, const Datasets& data, const Scorer& scorer, StartingPoint& start,
             const World& world, RunSummary& summary, std::optional<RunLogs>& logs) {
  GrpoReference reference = PrepareReference(config, start, world);
  GrpoTrainer trainer(config, start.policy, reference.model ? &*reference.model : nullptr, data.train, scorer.score,
                      world);
  if (start.checkpoint) {
    LoadCheckpointState(*start.checkpoint, trainer.optimizer());
    trainer.Restore(start.state.at("grpo"));
  }
  if (world.is_main()) {
    logs.emplace(config.run, trainer.step());
    if (summary.before && trainer.step() == 0) logs->Evaluation(EvalMetrics(*summary.before), 0);
  }
  const auto grpo_start = Clock::now();
  const int64_t first_step = trainer.step();
  while (trainer.step() < config.grpo.steps) {
    nlohmann::ordered_json m = trainer.Step();
    const int64_t step = trainer.step();
    if (config.eval.every > 0 && step % config.eval.every == 0 && step < config.grpo.steps) {
      const nlohmann::ordered_json eval =
          EvalMetrics(EvaluateAndLog(start.policy, config, data, world, "during GRPO"));
      for (const auto& [key, value] : eval.items()) m[key] = value;
    }
    if (!world.is_main()) continue;  // rank 0 alone writes, reports and checkpoints
    m["world_size"] = world.size();
    logs->Step(m, trainer.completions());
    if (logs->IsLoggingStep(step, config.grpo.steps)) {
      spdlog::info("{}", ProgressLine(m, config.grpo.steps, Since(grpo_start) * static_cast<double>(step) /
                                                               static_cast<double>(step - first_step)));
      logs->PrintCompletions(trainer.completions());
    }
    if (config.checkpoint.every > 0 && step % config.checkpoint.every == 0) {
      SaveGrpoCheckpoint(config, start.policy, trainer, reference, summary);
    }
  }
  summary.grpo_steps = trainer.step();
}

// Saves the final policy (rank 0) and evaluates it (every rank).
void Finish(const TrainConfig& config, const Datasets& data, Policy& policy, const World& world,
            RunSummary& summary) {
  const fs::path out(config.run.output_dir);
  summary.final_dir = (out / "final").string();
  if (world.is_main()) SaveStage(config, policy, summary.final_dir);
  if (!data.eval.empty() && config.eval.num_problems > 0 && config.grpo.steps > 0) {
    summary.after = EvaluateAndLog(policy, config, data, world, "after GRPO");
  }
  // final/ holds the adapter; final/merged/ the full weights transformers and vLLM load alone.
  if (policy.lora.enabled() && world.is_main()) {
    MergeAdapters(policy);
    SaveStage(config, policy, fs::path(summary.final_dir) / "merged");
  }
}

}  // namespace

RunSummary RunTraining(const TrainConfig& input, const RunOptions& options) {
  const auto start = Clock::now();
  TrainConfig config = input;  // what config.yaml records: the tokenizer's defaults made concrete
  config.tokenizer = ResolveTokenizer(input.tokenizer, TokenizerDir(input));
  const World& world = options.world;
  model::ConfigureThreads(static_cast<int>(ThreadsPerRank(config.run.threads, world)));
  if (world.is_main()) {
    PrepareOutputDir(config, options);
    const std::string blas = common::BlasKernels();
    spdlog::info("cpu: {} LibTorch threads per rank, {} vector kernels, OpenBLAS {}", torch::get_num_threads(),
                 model::TorchVectorKernels(), blas.empty() ? "not loaded" : blas + " kernels");
  }
  const Datasets data = LoadData(config);
  const Scorer scorer = MakeScorer(config.rewards);  // fail on a bad reward spec before training
  spdlog::info("data: {} training examples, {} held-out; rewards {}", data.train.size(), data.eval.size(),
               scorer.description);
  RunSummary summary;
  StartingPoint from = FindStart(config, data, options, summary);
  std::optional<RunLogs> logs;  // rank 0's, from GRPO's first step on
  if (config.grpo.steps > 0) RunGrpo(config, data, scorer, from, world, summary, logs);
  Finish(config, data, from.policy, world, summary);
  if (logs && summary.after) logs->Evaluation(EvalMetrics(*summary.after), summary.grpo_steps);
  summary.seconds = Since(start);
  if (!world.is_main()) return summary;
  nlohmann::json eval = {{"seconds", summary.seconds}, {"grpo_steps", summary.grpo_steps}};
  if (summary.before) eval["before_grpo"] = ToJson(*summary.before);
  if (summary.after) eval["after_grpo"] = ToJson(*summary.after);
  WriteJsonFile(fs::path(config.run.output_dir) / "eval.json", eval);
  return summary;
}

std::string FormatEvalTable(const RunSummary& s) {
  std::ostringstream out;
  out << fmt::format("{:<24} {:>12} {:>10} {:>12}\n", "held-out problems", "format rate", "accuracy", "mean tokens");
  auto row = [&](const char* name, const std::optional<EvalResult>& r) {
    if (r) out << fmt::format("{:<24} {:>12.3f} {:>10.3f} {:>12.1f}\n", name, r->format_rate, r->accuracy, r->mean_length);
  };
  row("policy before GRPO", s.before);
  row("policy after GRPO", s.after);
  if (s.before && s.after) {
    out << fmt::format("{:<24} {:>+12.3f} {:>+10.3f}\n", "change", s.after->format_rate - s.before->format_rate,
                       s.after->accuracy - s.before->accuracy);
  }
  out << fmt::format("wall time {} ({} GRPO steps); final policy in {}\n", Duration(s.seconds), s.grpo_steps, s.final_dir);
  return out.str();
}

}  // namespace rl::trainer
