// The configuration schema is written once, in VisitConfig: a Reader visitor binds YAML to
// the structs (checking types, ranges and unknown keys), a Writer visitor prints them. Adding
// a field means adding one line there.
#include "trainer/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

#include <yaml-cpp/yaml.h>

namespace rl::trainer {
namespace {

struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
};
Range AtLeast(double min) { return Range{min, std::numeric_limits<double>::infinity()}; }
Range Between(double min, double max) { return Range{min, max}; }

template <class E>
using Choices = std::vector<std::pair<const char*, E>>;

const Choices<LossType> kLossTypes = {
    {"grpo", LossType::kGrpo}, {"dapo", LossType::kDapo}, {"dr_grpo", LossType::kDrGrpo}};
const Choices<ScaleRewards> kScaleRewards = {{"group", ScaleRewards::kGroup},
                                             {"batch", ScaleRewards::kBatch},
                                             {"none", ScaleRewards::kNone}};
const Choices<LrSchedule> kLrSchedules = {{"constant", LrSchedule::kConstant},
                                          {"cosine", LrSchedule::kCosine},
                                          {"linear", LrSchedule::kLinear}};
const Choices<PromptFormat> kPromptFormats = {{"plain", PromptFormat::kPlain},
                                              {"chatml", PromptFormat::kChatMl}};
const Choices<RolloutDtype> kRolloutDtypes = {{"float32", RolloutDtype::kFloat32},
                                              {"bfloat16", RolloutDtype::kBFloat16}};

// Marker type: a field holding a YAML mapping, kept as YAML text (an inline reward spec).
struct YamlMapping {
  std::string* text;
};

template <class V>
void VisitOptimizer(V& v, OptimizerSection& o) {
  v.Field("learning_rate", o.learning_rate, AtLeast(0));
  v.Choice("lr_scheduler_type", o.lr_scheduler_type, kLrSchedules);
  v.Field("warmup_ratio", o.warmup_ratio, Between(0, 1));
  v.Field("weight_decay", o.weight_decay, AtLeast(0));
  v.Field("adam_beta1", o.adam_beta1, Between(0, 0.999999));
  v.Field("adam_beta2", o.adam_beta2, Between(0, 0.999999));
  v.Field("adam_epsilon", o.adam_epsilon, AtLeast(0));
  v.Field("max_grad_norm", o.max_grad_norm, AtLeast(0));
}

template <class V>
void VisitConfig(V& v, TrainConfig& c) {
  v.Section("run", [&] {
    v.Field("name", c.run.name);
    v.Field("output_dir", c.run.output_dir);
    v.Field("seed", c.run.seed, AtLeast(0));
    v.Field("threads", c.run.threads, AtLeast(0));
  });
  v.Section("model", [&] {
    v.Field("path", c.model.path);
    v.Section("tiny", [&] {
      TinyModelSection& t = c.model.tiny;
      v.Field("hidden_size", t.hidden_size, AtLeast(1));
      v.Field("intermediate_size", t.intermediate_size, AtLeast(1));
      v.Field("num_hidden_layers", t.num_hidden_layers, AtLeast(1));
      v.Field("num_attention_heads", t.num_attention_heads, AtLeast(1));
      v.Field("num_key_value_heads", t.num_key_value_heads, AtLeast(1));
      v.Field("max_position_embeddings", t.max_position_embeddings, AtLeast(8));
      v.Field("rope_theta", t.rope_theta, AtLeast(1));
      v.Field("rms_norm_eps", t.rms_norm_eps, AtLeast(0));
      v.Field("tie_word_embeddings", t.tie_word_embeddings);
      v.Field("init_std", t.init_std, AtLeast(0));
    });
  });
  v.Section("tokenizer", [&] {
    v.Field("path", c.tokenizer.path);
    v.Field("train_vocab_size", c.tokenizer.train_vocab_size, Between(260, 1 << 20));
    v.Field("eos_token", c.tokenizer.eos_token);
    v.Choice("prompt_format", c.tokenizer.prompt_format, kPromptFormats);
    v.Field("system_prompt", c.tokenizer.system_prompt);
  });
  v.Section("data", [&] {
    v.Field("train_file", c.data.train_file);
    v.Field("eval_file", c.data.eval_file);
    v.Field("prompt_key", c.data.prompt_key);
    v.Field("answer_key", c.data.answer_key);
    v.Field("response_key", c.data.response_key);
    v.Field("shuffle", c.data.shuffle);
    v.Section("task", [&] {
      TaskSection& t = c.data.task;
      v.Field("name", t.name);
      v.Field("num_train", t.num_train, AtLeast(1));
      v.Field("num_eval", t.num_eval, AtLeast(0));
      v.Field("max_numerator", t.max_numerator, Between(1, 99));
      v.Field("max_denominator", t.max_denominator, Between(2, 99));
      v.Field("teacher_slip_rate", t.teacher_slip_rate, Between(0, 1));
    });
  });
  v.Section("rewards", [&] {
    v.Field("spec_file", c.rewards.spec_file);
    v.Field("spec", YamlMapping{&c.rewards.spec});
    v.Field("server", c.rewards.server);
    v.Field("reward_name", c.rewards.reward_name);
    v.Field("max_retries", c.rewards.max_retries, AtLeast(0));
    v.Field("retry_backoff_s", c.rewards.retry_backoff_s, AtLeast(0));
    v.Field("timeout_s", c.rewards.timeout_s, AtLeast(0.001));
    v.Field("threads", c.rewards.threads, AtLeast(0));
  });
  v.Section("rollout", [&] {
    RolloutSection& r = c.rollout;
    v.Field("num_generations", r.num_generations, AtLeast(1));
    v.Field("max_new_tokens", r.max_new_tokens, AtLeast(1));
    v.Field("temperature", r.temperature, AtLeast(0));
    v.Field("top_k", r.top_k, AtLeast(0));
    v.Field("top_p", r.top_p, Between(1e-9, 1));
    v.Field("min_p", r.min_p, Between(0, 0.999999));
    v.Field("stop_strings", r.stop_strings);
    v.Field("batch_size", r.batch_size, AtLeast(1));
    v.Field("workers", r.workers, AtLeast(1));
    v.Choice("dtype", r.dtype, kRolloutDtypes);
  });
  v.Section("sft", [&] {
    v.Field("steps", c.sft.steps, AtLeast(0));
    v.Field("batch_size", c.sft.batch_size, AtLeast(1));
    v.Field("max_length", c.sft.max_length, AtLeast(2));
    VisitOptimizer(v, c.sft.optim);
  });
  v.Section("grpo", [&] {
    GrpoSection& g = c.grpo;
    v.Field("steps", g.steps, AtLeast(0));
    v.Field("prompts_per_step", g.prompts_per_step, AtLeast(1));
    v.Field("num_iterations", g.num_iterations, AtLeast(1));
    v.Field("num_mini_batches", g.num_mini_batches, AtLeast(1));
    v.Field("gradient_accumulation_steps", g.gradient_accumulation_steps, AtLeast(1));
    VisitOptimizer(v, g.optim);
    v.Field("beta", g.beta, AtLeast(0));
    v.Field("epsilon", g.epsilon, Between(0, 1));
    v.Field("epsilon_high", g.epsilon_high, AtLeast(0));
    v.Choice("loss_type", g.loss_type, kLossTypes);
    v.Choice("scale_rewards", g.scale_rewards, kScaleRewards);
    v.Field("rloo", g.rloo);
    v.Field("advantage_eps", g.advantage_eps, AtLeast(0));
    v.Field("mask_truncated_completions", g.mask_truncated_completions);
    v.Field("kl_log_ratio_clamp", g.kl_log_ratio_clamp, AtLeast(0.001));
    v.Field("logprob_chunk_size", g.logprob_chunk_size, AtLeast(1));
    v.Field("dynamic_sampling", g.dynamic_sampling);
    v.Field("dynamic_sampling_max_rounds", g.dynamic_sampling_max_rounds, AtLeast(1));
    v.Field("max_nonfinite_steps", g.max_nonfinite_steps, AtLeast(1));
  });
  v.Section("eval", [&] {
    v.Field("num_problems", c.eval.num_problems, AtLeast(0));
    v.Field("num_samples", c.eval.num_samples, AtLeast(1));
    v.Field("temperature", c.eval.temperature, AtLeast(0));
    v.Field("max_new_tokens", c.eval.max_new_tokens, AtLeast(0));
    v.Field("every", c.eval.every, AtLeast(0));
  });
  v.Section("checkpoint", [&] {
    v.Field("every", c.checkpoint.every, AtLeast(0));
    v.Field("keep_last", c.checkpoint.keep_last, AtLeast(1));
  });
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// Binds YAML to the structs. Keeps a stack of (mapping node, dotted path); after a section's
// body it reports any key the body did not ask for.
class Reader {
 public:
  Reader(YAML::Node root, std::string origin) : origin_(std::move(origin)) {
    stack_.push_back({std::move(root), "", {}});
  }

  template <class Body>
  void Section(const char* key, Body&& body) {
    Frame& parent = stack_.back();
    parent.known.push_back(key);
    const YAML::Node& parent_node = parent.node;  // const: lookups must not insert keys
    YAML::Node node;
    if (parent_node && parent_node.IsMap() && parent_node[key]) node = parent_node[key];
    std::string path = parent.path + key;
    if (node && !node.IsNull() && !node.IsMap()) {
      Fail(node, path, "expected a mapping (a section with keys)");
    }
    stack_.push_back({node, path + ".", {}});
    body();
    CheckUnknownKeys();
    stack_.pop_back();
  }

  template <class T>
  void Field(const char* key, T& value, Range range = {}) {
    YAML::Node node = Lookup(key);
    if (!node || node.IsNull()) return;
    value = Convert<T>(node, key);
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) CheckRange(node, key, value, range);
  }

  void Field(const char* key, std::optional<double>& value, Range range = {}) {
    YAML::Node node = Lookup(key);
    if (!node || node.IsNull()) return;
    value = Convert<double>(node, key);
    CheckRange(node, key, *value, range);
  }

  void Field(const char* key, YamlMapping mapping) {
    YAML::Node node = Lookup(key);
    if (!node || node.IsNull()) return;
    if (!node.IsMap()) Fail(node, Path(key), "expected a mapping (an inline reward spec)");
    *mapping.text = YAML::Dump(node);
  }

  template <class E>
  void Choice(const char* key, E& value, const Choices<E>& choices) {
    YAML::Node node = Lookup(key);
    if (!node || node.IsNull()) return;
    std::string text = Convert<std::string>(node, key);
    std::vector<std::string> names;
    for (const auto& [name, choice] : choices) {
      if (text == name) {
        value = choice;
        return;
      }
      names.push_back(std::string("'") + name + "'");
    }
    Fail(node, Path(key), "expected one of " + Join(names) + ", got '" + text + "'");
  }

  void CheckUnknownKeys() {
    const Frame& frame = stack_.back();
    if (!frame.node || !frame.node.IsMap()) return;
    for (const auto& item : frame.node) {
      if (!item.first.IsScalar()) {
        const std::string section =
            frame.path.empty() ? "(top level)" : frame.path.substr(0, frame.path.size() - 1);
        Fail(item.first, section, "keys must be strings, got " + Describe(item.first));
      }
      const std::string& key = item.first.Scalar();
      if (std::find(frame.known.begin(), frame.known.end(), key) != frame.known.end()) continue;
      std::string nearest = *std::min_element(
          frame.known.begin(), frame.known.end(), [&](const std::string& a, const std::string& b) {
            return EditDistance(key, a) < EditDistance(key, b);
          });
      Fail(item.first, frame.path + key,
           "unknown key; did you mean '" + nearest + "'? (valid keys: " + Join(frame.known) + ")");
    }
  }

 private:
  struct Frame {
    YAML::Node node;
    std::string path;
    std::vector<std::string> known;
  };

  YAML::Node Lookup(const char* key) {
    Frame& frame = stack_.back();
    frame.known.push_back(key);
    const YAML::Node& node = frame.node;  // const: lookups must not insert keys
    if (!node || !node.IsMap() || !node[key]) return YAML::Node();
    return node[key];
  }

  std::string Path(const char* key) const { return stack_.back().path + key; }

  [[noreturn]] void Fail(const YAML::Node& node, const std::string& path,
                         const std::string& what) const {
    throw ConfigError(origin_ + ":" + std::to_string(node.Mark().line + 1) + ": " + path + ": " +
                      what);
  }

  std::string Describe(const YAML::Node& node) const {
    if (node.IsScalar()) return "'" + node.Scalar() + "'";
    if (node.IsSequence()) return "a list";
    if (node.IsMap()) return "a mapping";
    return "nothing";
  }

  template <class T>
  T Convert(const YAML::Node& node, const char* key) const {
    if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      if (!node.IsSequence()) Fail(node, Path(key), "expected a list of strings, got " + Describe(node));
      T out;
      for (const YAML::Node& item : node) {
        if (!item.IsScalar()) Fail(item, Path(key), "expected a list of strings, got " + Describe(item) + " in it");
        out.push_back(item.Scalar());
      }
      return out;
    } else {
      const char* expected = std::is_same_v<T, std::string> ? "a string"
                             : std::is_same_v<T, bool>      ? "true or false"
                             : std::is_integral_v<T>        ? "an integer"
                                                            : "a number";
      if (!node.IsScalar()) Fail(node, Path(key), std::string("expected ") + expected + ", got " + Describe(node));
      T out{};
      if (!YAML::convert<T>::decode(node, out)) {
        Fail(node, Path(key), std::string("expected ") + expected + ", got " + Describe(node));
      }
      if constexpr (std::is_floating_point_v<T>) {
        if (!std::isfinite(out)) Fail(node, Path(key), "expected a finite number, got " + Describe(node));
      }
      return out;
    }
  }

  template <class T>
  void CheckRange(const YAML::Node& node, const char* key, T value, Range range) const {
    double v = static_cast<double>(value);
    if (v >= range.min && v <= range.max) return;
    std::ostringstream what;
    what << "value " << value << " out of range: expected ";
    if (std::isinf(range.max)) {
      what << "at least " << range.min;
    } else {
      what << "between " << range.min << " and " << range.max;
    }
    Fail(node, Path(key), what.str());
  }

  std::string origin_;
  std::vector<Frame> stack_;
};

// Prints the structs as YAML, in schema order.
class Writer {
 public:
  Writer() { stack_.push_back(YAML::Node(YAML::NodeType::Map)); }

  template <class Body>
  void Section(const char* key, Body&& body) {
    stack_.push_back(YAML::Node(YAML::NodeType::Map));
    body();
    YAML::Node done = stack_.back();
    stack_.pop_back();
    stack_.back()[key] = done;
  }

  template <class T>
  void Field(const char* key, const T& value, Range = {}) {
    stack_.back()[key] = value;
  }
  void Field(const char* key, const std::optional<double>& value, Range = {}) {
    if (value) stack_.back()[key] = *value;
    else stack_.back()[key] = YAML::Node(YAML::NodeType::Null);
  }
  void Field(const char* key, YamlMapping mapping) {
    if (mapping.text->empty()) stack_.back()[key] = YAML::Node(YAML::NodeType::Null);
    else stack_.back()[key] = YAML::Load(*mapping.text);
  }
  template <class E>
  void Choice(const char* key, const E& value, const Choices<E>& choices) {
    for (const auto& [name, choice] : choices) {
      if (choice == value) stack_.back()[key] = std::string(name);
    }
  }

  std::string Dump() const {
    YAML::Emitter out;
    out.SetDoublePrecision(17);
    out << stack_.front();
    return std::string(out.c_str()) + "\n";
  }

 private:
  std::vector<YAML::Node> stack_;
};

// Cross-field rules that a single field's range cannot express.
void CheckConsistency(const TrainConfig& c) {
  auto fail = [&](const std::string& what) { throw ConfigError(c.origin + ": " + what); };
  if (c.model.tiny.num_attention_heads % c.model.tiny.num_key_value_heads != 0) {
    fail("model.tiny.num_attention_heads must be a multiple of model.tiny.num_key_value_heads");
  }
  if (c.model.tiny.hidden_size % c.model.tiny.num_attention_heads != 0) {
    fail("model.tiny.hidden_size must be a multiple of model.tiny.num_attention_heads");
  }
  if (c.grpo.steps > 0 && c.rollout.num_generations < 2) {
    fail("rollout.num_generations must be at least 2 for GRPO (advantages compare a group)");
  }
  int64_t batch = 0, split = 0;
  if (__builtin_mul_overflow(c.grpo.prompts_per_step, c.rollout.num_generations, &batch) ||
      __builtin_mul_overflow(c.grpo.num_mini_batches, c.grpo.gradient_accumulation_steps, &split)) {
    fail("grpo.prompts_per_step * rollout.num_generations or grpo.num_mini_batches * "
         "grpo.gradient_accumulation_steps is too large");
  }
  if (c.grpo.steps > 0 && batch % split != 0) {
    fail("grpo.prompts_per_step * rollout.num_generations (" + std::to_string(batch) +
         ") must be divisible by grpo.num_mini_batches * grpo.gradient_accumulation_steps");
  }
  if (c.grpo.rloo && c.rollout.num_generations < 2) fail("grpo.rloo needs rollout.num_generations >= 2");
  if (c.data.train_file.empty() && c.data.task.name != "fractions") {
    fail("data.task.name: unknown task '" + c.data.task.name + "' (built-in tasks: fractions)");
  }
}

}  // namespace

int64_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<int64_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diagonal = row[0];
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      int64_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

TrainConfig ParseTrainConfig(std::string_view yaml, std::string_view origin) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string(origin) + ":" + std::to_string(e.mark.line + 1) +
                      ": not valid YAML: " + e.msg);
  }
  if (root && !root.IsNull() && !root.IsMap()) {
    throw ConfigError(std::string(origin) + ":1: expected a mapping of sections at the top level");
  }
  TrainConfig config;
  config.origin = std::string(origin);
  Reader reader(root, config.origin);
  VisitConfig(reader, config);
  reader.CheckUnknownKeys();
  CheckConsistency(config);
  return config;
}

TrainConfig LoadTrainConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open the config file");
  std::stringstream text;
  text << in.rdbuf();
  return ParseTrainConfig(text.str(), path);
}

std::string ToYaml(const TrainConfig& config) {
  Writer writer;
  VisitConfig(writer, const_cast<TrainConfig&>(config));  // the Writer only reads
  return writer.Dump();
}

}  // namespace rl::trainer
