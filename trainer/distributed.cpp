#include "trainer/distributed.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>

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

}  // namespace

struct World::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;

  // Waits for `work`, naming what failed and on which rank when it does.
  void Wait(const c10::intrusive_ptr<c10d::Work>& work, int rank, const char* what) const {
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("rank {}: {} across ranks failed (another rank died, hung or "
                                           "diverged): {}", rank, what, e.what()));
    }
  }
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
    options.isServer = spec.rank == 0;
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
  group_->Wait(group_->gloo->allreduce(tensors), rank(), "a sum");
}

void World::SumGradients(const std::vector<at::Tensor>& parameters) const {
  if (!group_) return;
  std::vector<at::Tensor> flat;
  flat.reserve(parameters.size());
  for (const at::Tensor& p : parameters) {
    flat.push_back(p.grad().defined() ? p.grad().detach().reshape({-1}).to(torch::kFloat32)
                                      : torch::zeros({p.numel()}, torch::kFloat32));
  }
  std::vector<at::Tensor> buffer = {torch::cat(flat)};
  group_->Wait(group_->gloo->allreduce(buffer), rank(), "the gradient all-reduce");
  int64_t offset = 0;
  for (const at::Tensor& p : parameters) {
    at::Tensor summed = buffer[0].narrow(0, offset, p.numel()).view(p.sizes());
    offset += p.numel();
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    p.grad().copy_(summed);
  }
}

void World::Barrier() const {
  if (!group_) return;
  group_->Wait(group_->gloo->barrier(), rank(), "a barrier");
}

}  // namespace rl::trainer
