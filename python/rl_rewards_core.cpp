// rl_rewards._core: the pybind11 binding of rewards/reward.h, rewards/any_gold.h and
// rewards/math/verify.h. The Python package (python/rl_rewards/) wraps it; its docstrings are
// the user's manual. Here: converting Python values into Samples (errors name the argument and
// the item), scoring without the GIL, and results as light objects that read the C++ result
// only when asked.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <deque>
#include <limits>
#include <memory>
#include <stdexcept>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rewards/any_gold.h"
#include "rewards/math/verify.h"
#include "rewards/reward.h"
#include "rewards/server/handlers.h"

namespace py = pybind11;

namespace rl::rewards::python {
namespace {

// --- Python values into samples ---------------------------------------------------------------

std::string TypeName(const py::handle& value) { return py::str(py::type::of(value).attr("__name__")); }

[[noreturn]] void ThrowExpected(const std::string& field, std::string_view expected,
                                const py::handle& value) {
  throw py::type_error(field + ": expected " + std::string(expected) + ", got " + TypeName(value));
}

// A list argument: None (absent) or a list/tuple of `n` items (n == -1: any length).
std::optional<py::sequence> OptionalList(const py::object& value, const char* field, int64_t n,
                                         std::string_view items) {
  if (value.is_none()) return std::nullopt;
  if (!py::isinstance<py::list>(value) && !py::isinstance<py::tuple>(value)) {
    ThrowExpected(field, "a list of " + std::string(items), value);
  }
  py::sequence list = value.cast<py::sequence>();
  if (n >= 0 && static_cast<int64_t>(py::len(list)) != n) {
    throw py::value_error(std::string(field) + ": expected " + std::to_string(n) +
                          " items (as many as completions), got " + std::to_string(py::len(list)));
  }
  return list;
}

bool IsNumber(const py::handle& value) {
  // bool is an int in Python, but True as a gold answer is a mistake, not the number 1.
  return (py::isinstance<py::int_>(value) || py::isinstance<py::float_>(value)) &&
         !py::isinstance<py::bool_>(value);
}

// A gold given as a number is read as its shortest text (42, 0.5), as the server reads JSON.
std::string NumberText(const py::handle& value) {
  return py::isinstance<py::float_>(value) ? std::string(py::repr(value)) : std::string(py::str(value));
}

// Everything a batch's samples view, owned while they are scored (deque: stable addresses).
struct Batch {
  std::deque<std::string> text;
  std::vector<Sample> samples;
  std::vector<std::vector<std::string_view>> golds;

  std::string_view Keep(std::string s) { return text.emplace_back(std::move(s)); }
};

// One answer: None or "" (no gold), a string, a number, or a list of them (any is right).
void ReadGolds(const py::handle& answer, const std::string& field, Batch& batch,
               std::vector<std::string_view>& golds) {
  auto one = [&](const py::handle& value, const std::string& name) {
    if (py::isinstance<py::str>(value)) {
      std::string s = value.cast<std::string>();
      if (!s.empty()) golds.push_back(batch.Keep(std::move(s)));
    } else if (IsNumber(value)) {
      golds.push_back(batch.Keep(NumberText(value)));
    } else if (!value.is_none()) {
      ThrowExpected(name, "a string, a number or None", value);
    }
  };
  if (py::isinstance<py::list>(answer) || py::isinstance<py::tuple>(answer)) {
    size_t k = 0;
    for (const py::handle& value : answer) one(value, field + "[" + std::to_string(k++) + "]");
    return;
  }
  if (!py::isinstance<py::str>(answer) && !IsNumber(answer) && !answer.is_none()) {
    ThrowExpected(field, "a string, a number, a list of them or None", answer);
  }
  one(answer, field);
}

Batch ReadBatch(const py::object& completions, const py::object& answers, const py::object& prompts,
                const py::object& completion_tokens) {
  if (completions.is_none()) ThrowExpected("completions", "a list of strings", completions);
  const py::sequence texts = *OptionalList(completions, "completions", -1, "strings");
  const int64_t n = static_cast<int64_t>(py::len(texts));
  const auto golds = OptionalList(answers, "answers", n, "answers");
  const auto prompt_list = OptionalList(prompts, "prompts", n, "strings");
  const auto tokens = OptionalList(completion_tokens, "completion_tokens", n, "integers");
  Batch batch;
  batch.samples.resize(n);
  batch.golds.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const std::string index = "[" + std::to_string(i) + "]";
    Sample& sample = batch.samples[i];
    const py::handle completion = texts[i];
    if (!py::isinstance<py::str>(completion)) ThrowExpected("completions" + index, "a string", completion);
    sample.completion = batch.Keep(completion.cast<std::string>());
    if (golds) ReadGolds((*golds)[i], "answers" + index, batch, batch.golds[i]);
    if (prompt_list) {
      const py::handle prompt = (*prompt_list)[i];
      if (py::isinstance<py::str>(prompt)) {
        sample.prompt = batch.Keep(prompt.cast<std::string>());
      } else if (!prompt.is_none()) {
        ThrowExpected("prompts" + index, "a string or None", prompt);
      }
    }
    if (tokens) {
      const py::handle count = (*tokens)[i];
      if (count.is_none()) continue;
      if (!py::isinstance<py::int_>(count) || py::isinstance<py::bool_>(count)) {
        ThrowExpected("completion_tokens" + index, "a non-negative integer or None", count);
      }
      const auto value = count.cast<py::int_>();
      if (value < py::int_(0) || value > py::int_(std::numeric_limits<int64_t>::max())) {
        throw py::value_error("completion_tokens" + index +
                              ": expected a non-negative integer below 2^63, got " +
                              std::string(py::str(count)));
      }
      sample.completion_tokens = value.cast<int64_t>();
    }
  }
  return batch;
}

// --- results -----------------------------------------------------------------------------------

py::object JsonToPython(const nlohmann::ordered_json& j) {
  // The wire form through Python's own json module: exactly what the server sends.
  return py::module_::import("json").attr("loads")(
      j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// What Reward.score returns per completion; reads the C++ result only when asked.
class Result {
 public:
  explicit Result(RewardResult result) : result_(std::move(result)) {}

  std::optional<double> reward() const { return result_.total; }
  std::string status() const { return std::string(ToString(result_.status)); }
  py::object verdict() const {
    if (!result_.answer_check) return py::none();
    return py::str(std::string(math::ToString(result_.answer_check->verdict)));
  }
  py::object extracted() const {
    if (!result_.answer_check) return py::none();
    return py::str(result_.answer_check->extracted);
  }
  py::dict components() const {
    py::dict out;
    for (const RuleScore& c : result_.components) {
      out[py::str(c.rule)] = c.status == ScoreStatus::kOk ? py::object(py::float_(c.value)) : py::none();
    }
    return out;
  }
  py::object detail() const {
    const nlohmann::ordered_json wire = ToJson(result_);
    const auto it = wire.find("detail");
    return it == wire.end() ? py::object(py::none()) : py::object(py::str(it->get<std::string>()));
  }
  py::object to_dict() const { return JsonToPython(ToJson(result_)); }

 private:
  RewardResult result_;
};

// --- Reward ------------------------------------------------------------------------------------

// A spec that does not compile; Python sees rl_rewards.SpecError (a ValueError) with the C++
// message: file, line, key and what was expected.
class SpecError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PyReward {
 public:
  static PyReward FromYaml(const std::string& path) {
    std::string error;
    std::unique_ptr<Reward> reward = Reward::FromYamlFile(path, &error);
    if (!reward) throw SpecError(error);
    return PyReward(std::move(reward));
  }

  static PyReward FromDict(const py::object& spec, const std::string& origin) {
    if (!py::isinstance<py::dict>(spec)) ThrowExpected(origin, "a dict", spec);
    std::string text;
    try {
      text = py::module_::import("json").attr("dumps")(spec, py::arg("allow_nan") = false).cast<std::string>();
    } catch (py::error_already_set& e) {
      // A value json cannot write (a set, an object, NaN): the spec is not plain data.
      throw py::type_error(origin + ": expected plain data (dicts, lists, strings, numbers, "
                                    "booleans, None): " + std::string(py::str(e.value())));
    }
    std::string error;
    std::unique_ptr<Reward> reward = Reward::FromJson(nlohmann::json::parse(text), &error, origin);
    if (!reward) throw SpecError(error);
    return PyReward(std::move(reward));
  }

  std::vector<Result> Score(const py::object& completions, const py::object& answers,
                            const py::object& prompts, const py::object& completion_tokens,
                            int threads) const {
    const Batch batch = ReadBatch(completions, answers, prompts, completion_tokens);
    std::vector<RewardResult> scored;
    {
      // The samples view `batch`, which Python cannot touch: other Python threads run meanwhile.
      py::gil_scoped_release release;
      scored = ScoreBatchAnyGold(*reward_, batch.samples, batch.golds, threads);
    }
    std::vector<Result> results;
    results.reserve(scored.size());
    for (RewardResult& r : scored) results.emplace_back(std::move(r));
    return results;
  }

  const std::vector<std::string>& rule_names() const { return reward_->rule_names(); }
  py::object spec() const { return JsonToPython(nlohmann::ordered_json::parse(reward_->spec().dump())); }

 private:
  explicit PyReward(std::unique_ptr<Reward> reward) : reward_(std::move(reward)) {}
  // Immutable and safe to share: copies of the Python object share one compiled Reward.
  std::shared_ptr<const Reward> reward_;
};

// --- math --------------------------------------------------------------------------------------

const math::Verifier& DefaultVerifier() {
  static const math::Verifier verifier;  // immutable: Check is safe from any thread
  return verifier;
}

math::CheckResult Check(const std::string& gold, const std::string& prediction) {
  py::gil_scoped_release release;
  return DefaultVerifier().Check(prediction, gold);
}

// OpenRLHF's query split as /get_reward does it, with the server's default markers.
std::optional<std::pair<std::string, std::string>> SplitOpenRlhfQuery(const std::string& query,
                                                                      const std::string& prompt) {
  Sample sample;
  if (!server::LocateCompletion(query, prompt, server::GetRewardOptions{}, &sample)) return std::nullopt;
  return std::pair{std::string(sample.prompt), std::string(sample.completion)};
}

}  // namespace
}  // namespace rl::rewards::python

PYBIND11_MODULE(_core, m) {
  using namespace rl::rewards::python;
  namespace rw = rl::rewards;
  m.doc() = "C++ core of rl_rewards (see the rl_rewards package for the documented API).";

  py::register_exception<SpecError>(m, "SpecError", PyExc_ValueError);

  py::class_<Result>(m, "Result")
      .def_property_readonly("reward", &Result::reward)
      .def_property_readonly("status", &Result::status)
      .def_property_readonly("verdict", &Result::verdict)
      .def_property_readonly("extracted", &Result::extracted)
      .def_property_readonly("components", &Result::components)
      .def_property_readonly("detail", &Result::detail)
      .def("to_dict", &Result::to_dict)
      .def("__repr__", [](const Result& r) { return "Result(" + std::string(py::repr(r.to_dict())) + ")"; });

  py::class_<PyReward>(m, "Reward")
      .def_static("from_yaml", &PyReward::FromYaml, py::arg("path"))
      .def_static("from_dict", &PyReward::FromDict, py::arg("spec"), py::arg("origin") = "reward spec")
      .def("score", &PyReward::Score, py::arg("completions"), py::arg("answers") = py::none(),
           py::arg("prompts") = py::none(), py::arg("completion_tokens") = py::none(),
           py::arg("threads") = 0)
      .def_property_readonly("rule_names", &PyReward::rule_names)
      .def_property_readonly("spec", &PyReward::spec);

  m.def("split_openrlhf_query", &SplitOpenRlhfQuery, py::arg("query"), py::arg("prompt"));

  py::module_ math = m.def_submodule("math", "The answer checker (rewards/math/verify.h).");
  py::class_<rw::math::CheckResult>(math, "CheckResult")
      .def_property_readonly("verdict", [](const rw::math::CheckResult& r) {
        return std::string(rw::math::ToString(r.verdict));
      })
      .def_readonly("extracted", &rw::math::CheckResult::extracted)
      .def_readonly("pred_canonical", &rw::math::CheckResult::pred_canonical)
      .def_readonly("gold_canonical", &rw::math::CheckResult::gold_canonical)
      .def_readonly("detail", &rw::math::CheckResult::detail)
      .def_readonly("nodes", &rw::math::CheckResult::nodes)
      .def("__repr__", [](const rw::math::CheckResult& r) {
        return "CheckResult(verdict='" + std::string(rw::math::ToString(r.verdict)) + "', extracted=" +
               std::string(py::repr(py::str(r.extracted))) + ")";
      });
  math.def("check", &Check, py::arg("gold"), py::arg("prediction"));
  math.def("verify", [](const std::string& gold, const std::string& prediction) {
    return Check(gold, prediction).verdict == rw::math::Verdict::kCorrect;
  }, py::arg("gold"), py::arg("prediction"));
}
