#include "trainer/distributed.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/types.h>

namespace rl::trainer {
namespace {

// The value of environment variable `name`; throws naming it when it is unset or empty.
std::string RequiredEnv(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    throw std::invalid_argument(fmt::format("environment variable {} is not set (WORLD_SIZE is: the torchrun "
                                            "convention needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)",
                                            name));
  }
  return text;
}

// The integer in environment variable `name`, in [min, max]; `fallback` when unset.
int EnvInt(const char* name, int min, int max, std::optional<int> fallback) {
  const char* set = std::getenv(name);
  if (fallback && (set == nullptr || *set == '\0')) return *fallback;
  const std::string text = RequiredEnv(name);
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || value < min || value > max) {
    throw std::invalid_argument(
        fmt::format("environment variable {}: expected an integer from {} to {}, got '{}'", name, min, max, text));
  }
  return static_cast<int>(value);
}

bool IsLoopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"; }

// The network interface Gloo binds: GLOO_SOCKET_IFNAME when set (as in PyTorch), loopback when
// the master is on this machine's loopback, else the address this host's name resolves to.
std::shared_ptr<::gloo::transport::Device> GlooDevice(const std::string& master_addr) {
  if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface != '\0') {
    return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  }
  if (IsLoopback(master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// Waits for `work`, naming what failed and on which rank when it does.
void Wait(const c10::intrusive_ptr<c10d::Work>& work, int rank, const char* what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("rank {}: {} across ranks failed (another rank died, hung or "
                                         "diverged): {}", rank, what, e.what()));
  }
}

}  // namespace

struct World::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
};

std::optional<WorldSpec> WorldFromEnvironment() {
  if (std::getenv("WORLD_SIZE") == nullptr) return std::nullopt;
  WorldSpec spec;
  spec.world_size = EnvInt("WORLD_SIZE", 1, 65536, std::nullopt);
  spec.rank = EnvInt("RANK", 0, spec.world_size - 1, std::nullopt);
  spec.local_world_size = EnvInt("LOCAL_WORLD_SIZE", 1, spec.world_size, spec.world_size);
  spec.local_rank = EnvInt("LOCAL_RANK", 0, spec.local_world_size - 1, spec.rank);
  spec.master_addr = RequiredEnv("MASTER_ADDR");
  spec.master_port = EnvInt("MASTER_PORT", 1, 65535, std::nullopt);
  const char* agent_store = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  spec.launcher_store = agent_store != nullptr && std::string(agent_store) == "True";
  return spec;
}

World::World() = default;
World::~World() = default;
World::World(World&&) noexcept = default;
World& World::operator=(World&&) noexcept = default;

World World::Join(const WorldSpec& spec, std::chrono::milliseconds timeout) {
  World world;
  world.spec_ = spec;
  if (spec.world_size == 1) return world;
  auto group = std::make_unique<Group>();
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(spec.master_port);
    options.isServer = spec.rank == 0 && !spec.launcher_store;
    options.numWorkers = static_cast<size_t>(spec.world_size);
    options.timeout = timeout;
    group->store = c10::make_intrusive<c10d::TCPStore>(spec.master_addr, options);
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
    gloo_options->devices.push_back(GlooDevice(spec.master_addr));
    group->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, spec.rank, spec.world_size, gloo_options);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("rank {} of {}: joining the ranks at {}:{} failed within {} s: {}", spec.rank,
                                         spec.world_size, spec.master_addr, spec.master_port,
                                         std::chrono::duration<double>(timeout).count(), e.what()));
  }
  world.group_ = std::move(group);
  return world;
}

int64_t ThreadsPerRank(int64_t configured, const World& world) {
  if (configured > 0) return configured;
  if (world.spec().local_world_size == 1) return 0;  // all cores
  const int64_t cores = std::max<int64_t>(std::thread::hardware_concurrency(), 1);
  return std::max<int64_t>(cores / world.spec().local_world_size, 1);
}

std::pair<int64_t, int64_t> World::Shard(int64_t total) const {
  const int64_t n = size(), r = rank();
  const int64_t base = total / n, extra = total % n;
  const int64_t first = r * base + std::min(r, extra);
  return {first, first + base + (r < extra ? 1 : 0)};
}

double World::Sum(double value) const {
  if (!group_) return value;
  const at::Tensor tensor = torch::tensor({value}, torch::kFloat64);
  SumTensor(tensor);
  return tensor.item<double>();
}

void World::SumTensor(const at::Tensor& tensor) const {
  if (!group_) return;
  std::vector<at::Tensor> tensors = {tensor};
  Wait(group_->gloo->allreduce(tensors), rank(), "a sum");
}

void World::Barrier() const {
  if (!group_) return;
  Wait(group_->gloo->barrier(), rank(), "a barrier");
}

// The buckets and what the armed backward has filled. A bucket's all-reduce starts when all its
// members are filled and every bucket before it has started: the order of the collectives is
// the buckets' order on every rank, whatever order the gradients arrive in.
struct GradientSum::State {
  struct Bucket {
    std::vector<size_t> members;  // indices into `parameters`
    at::Tensor flat;              // float32, the members' gradients one after another
    size_t waiting = 0;           // members not filled yet
    c10::intrusive_ptr<c10d::Work> work;
  };
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  int rank = 0;
  std::vector<at::Tensor> parameters;
  std::vector<std::pair<size_t, int64_t>> place;  // each parameter's bucket and offset in it
  std::vector<unsigned> hooks;
  std::vector<bool> filled;
  std::vector<Bucket> buckets;
  size_t next = 0;  // the first bucket not started
  bool armed = false;
  std::mutex mutex;

  at::Tensor View(size_t i) {
    const auto [bucket, offset] = place[i];
    return buckets[bucket].flat.narrow(0, offset, parameters[i].numel()).view(parameters[i].sizes());
  }

  // Writes parameter i's gradient into its bucket: what .grad holds, plus `incoming` (the
  // gradient backward is about to accumulate) when given.
  void Fill(size_t i, const at::Tensor* incoming) {
    at::Tensor view = View(i);
    const at::Tensor& held = parameters[i].grad();
    if (incoming != nullptr) {
      view.copy_(*incoming);
      if (held.defined()) view.add_(held);
    } else if (held.defined()) {
      view.copy_(held);
    } else {
      view.zero_();
    }
    filled[i] = true;
    --buckets[place[i].first].waiting;
  }

  void StartReady() {
    for (; next < buckets.size() && buckets[next].waiting == 0; ++next) {
      std::vector<at::Tensor> tensors = {buckets[next].flat};
      buckets[next].work = gloo->allreduce(tensors);
    }
  }

  void OnGradient(size_t i, const at::Tensor& incoming) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed || filled[i]) return;
    Fill(i, &incoming);
    StartReady();
  }
};

GradientSum::GradientSum(const World& world, const std::vector<at::Tensor>& parameters, int64_t bucket_bytes) {
  if (!world.group_) return;
  state_ = std::make_unique<State>();
  State& s = *state_;
  s.gloo = world.group_->gloo;
  s.rank = world.rank();
  for (const at::Tensor& p : parameters) {
    if (p.requires_grad()) s.parameters.push_back(p);
  }
  // Backward reaches the last layers first: buckets from the last parameter back.
  std::vector<int64_t> sizes;
  s.place.resize(s.parameters.size());
  for (size_t i = s.parameters.size(); i-- > 0;) {
    if (s.buckets.empty() || sizes.back() * 4 >= bucket_bytes) {
      s.buckets.emplace_back();
      sizes.push_back(0);
    }
    s.buckets.back().members.push_back(i);
    s.place[i] = {s.buckets.size() - 1, sizes.back()};
    sizes.back() += s.parameters[i].numel();
  }
  for (size_t b = 0; b < s.buckets.size(); ++b) {
    s.buckets[b].flat = torch::zeros({sizes[b]}, torch::kFloat32);
    s.buckets[b].waiting = s.buckets[b].members.size();
  }
  s.filled.assign(s.parameters.size(), false);
  for (size_t i = 0; i < s.parameters.size(); ++i) {
    State* state = state_.get();
    s.hooks.push_back(s.parameters[i].register_hook([state, i](const at::Tensor& grad) { state->OnGradient(i, grad); }));
  }
}

GradientSum::~GradientSum() {
  if (!state_) return;
  for (size_t i = 0; i < state_->parameters.size(); ++i) state_->parameters[i].remove_hook(state_->hooks[i]);
}

void GradientSum::Arm() {
  if (!state_) return;
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->armed = true;
}

void GradientSum::Finish() {
  if (!state_) return;
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  for (size_t i = 0; i < s.parameters.size(); ++i) {
    if (!s.filled[i]) s.Fill(i, nullptr);
  }
  s.StartReady();
  for (State::Bucket& bucket : s.buckets) {
    Wait(bucket.work, s.rank, "the gradient all-reduce");
    bucket.work.reset();
    bucket.waiting = bucket.members.size();
  }
  for (size_t i = 0; i < s.parameters.size(); ++i) {
    at::Tensor& grad = s.parameters[i].mutable_grad();
    if (!grad.defined()) grad = torch::zeros_like(s.parameters[i]);
    grad.copy_(s.View(i));
  }
  s.filled.assign(s.parameters.size(), false);
  s.next = 0;
  s.armed = false;
}

int64_t GradientSum::buckets() const { return state_ ? static_cast<int64_t>(state_->buckets.size()) : 0; }

}  // namespace rl::trainer
