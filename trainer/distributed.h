// trainer/distributed.h: the processes (ranks) that train one policy together, and the few
// collectives data-parallel training needs, on LibTorch's c10d (a TCPStore for the rendezvous,
// ProcessGroupGloo for the collectives).
//
//   std::optional<WorldSpec> spec = WorldFromEnvironment();   // torchrun's RANK, WORLD_SIZE, ...
//   World world = spec ? World::Join(*spec, std::chrono::seconds(300)) : World();
//   auto [begin, end] = world.Shard(batch_size);           // this rank's rows of a global batch
//   GradientSum gradient_sum(world, parameters);           // once: hooks on the parameters
//   ... backward on this rank's rows, the loss divided by the global normaliser ...
//   gradient_sum.Finish();                                   // every rank now holds the same sum
//   const double tokens = world.Sum(local_tokens);
//
// A default-constructed World is one process: its collectives return their input and cost
// nothing, so single-process code paths need no branches.
//
// Errors: Join throws std::runtime_error naming the master address and port when the
// rendezvous does not complete within the timeout; a collective throws when another rank has
// died (at once: its connection closes) or has not joined the collective within the timeout
// (a hung rank), so no rank waits forever.
// Thread safety: a World is used by one thread at a time (collectives are ordered per rank).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace rl::trainer {

// Where this process stands among the ranks, as the torchrun convention states it.
struct WorldSpec {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        // among the ranks on this machine
  int local_world_size = 1;  // ranks on this machine
  std::string master_addr = "127.0.0.1";  // where the rendezvous store listens
  int master_port = 29500;
  // Whether the launcher serves the rendezvous store (torchrun's TORCHELASTIC_USE_AGENT_STORE,
  // `rl train --nproc`); else rank 0 serves it.
  bool launcher_store = false;
};

// The spec from RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT and
// TORCHELASTIC_USE_AGENT_STORE (exactly "True", as PyTorch reads it); nullopt when WORLD_SIZE
// is unset. Throws std::invalid_argument naming the variable when one
// is malformed, out of range or missing while WORLD_SIZE is set (LOCAL_RANK and
// LOCAL_WORLD_SIZE default to RANK and WORLD_SIZE: one machine).
std::optional<WorldSpec> WorldFromEnvironment();

class World {
 public:
  World();  // one process
  ~World();
  World(World&&) noexcept;
  World& operator=(World&&) noexcept;

  // Joins the group of spec.world_size ranks (rank 0 serves the rendezvous store unless the
  // launcher does). Every collective, and the rendezvous itself, fails after `timeout`.
  static World Join(const WorldSpec& spec, std::chrono::milliseconds timeout);

  int rank() const { return spec_.rank; }
  int size() const { return spec_.world_size; }
  bool is_main() const { return spec_.rank == 0; }
  const WorldSpec& spec() const { return spec_; }

  // This rank's rows [first, second) of `total` rows cut into size() contiguous shares that
  // differ by at most one row, in rank order.
  std::pair<int64_t, int64_t> Shard(int64_t total) const;

  // The sum over ranks of `value` (every rank passes its own, every rank gets the sum).
  double Sum(double value) const;
  // The same for a contiguous CPU tensor, in place (every rank passes one of the same shape).
  void SumTensor(const at::Tensor& tensor) const;
  // Returns when every rank has called it.
  void Barrier() const;

 private:
  friend class GradientSum;
  struct Group;
  WorldSpec spec_;
  std::unique_ptr<Group> group_;  // null for one process
};

// LibTorch threads for this rank: `configured` when positive, else the machine's cores shared by
// the ranks on it (0, meaning all cores, for a single local rank).
int64_t ThreadsPerRank(int64_t configured, const World& world);

// Replaces the gradients of the parameters by their sums over the ranks, in buckets of about
// `bucket_bytes` (float32), each bucket's all-reduce started while backward still computes the
// gradients of earlier layers, as PyTorch's DistributedDataParallel does, so that the
// communication runs on Gloo's threads behind the compute:
//
//   GradientSum sum(world, parameters);
//   ... backward of every micro-batch of the update but the last: gradients accumulate ...
//   sum.Arm();           // the next backward completes the gradients of this update
//   loss.backward();     // a bucket's all-reduce starts as soon as its gradients are final
//   sum.Finish();        // waits; .grad now holds the sums, the same on every rank
//
// Finish also sums what it finds in .grad for the buckets an armed backward did not fill (no
// Arm, a backward that never ran, a parameter the loss did not reach; no gradient counts as
// zeros), so every rank calls Finish exactly once per update, whatever its share of the batch
// held, and between the same other collectives as the other ranks (the buckets are
// collectives, issued in the same order on every rank).
//
// Only parameters that require grad take part. The world must outlive this object; for a
// one-process world it registers nothing and Arm and Finish cost nothing.
// Thread safety: as World; the hooks run on the thread that runs backward.
class GradientSum {
 public:
  static constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;  // DistributedDataParallel's default

  GradientSum(const World& world, const std::vector<at::Tensor>& parameters,
              int64_t bucket_bytes = kDefaultBucketBytes);
  ~GradientSum();  // removes the hooks
  GradientSum(const GradientSum&) = delete;
  GradientSum& operator=(const GradientSum&) = delete;

  void Arm();
  void Finish();
  int64_t buckets() const;

 private:
  struct State;
  std::unique_ptr<State> state_;  // null for one process
};

}  // namespace rl::trainer
