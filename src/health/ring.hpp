#pragma once
// Internal to src/health: a ring of time buckets written by one thread and
// read by any.
//
// Each slot carries the number of the bucket it holds. The writer moving a
// slot to a newer bucket first marks it `no_bucket`, clears the cells, then
// stamps the new number (release); a reader takes the stamp (acquire), reads
// the cells with relaxed loads, and keeps them only if the stamp is unchanged
// afterwards (a sequence lock: a reader never mixes two buckets). Within one
// bucket cells only grow, so a reader may miss the latest increments, never
// see a torn or stale-bucket value.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>

#include "health/attempt.hpp"

namespace gatewayz::health::detail {

inline constexpr std::uint32_t no_bucket = 0xFFFF'FFFF;
inline constexpr std::size_t cache_line = 64;

// The bucket of `t` for buckets `width` wide, counted from the steady clock's epoch.
inline std::uint32_t bucket_of(steady_time t, std::chrono::nanoseconds width) {
  const auto ns = t.time_since_epoch().count();
  return ns <= 0 ? 0 : static_cast<std::uint32_t>(ns / width.count());
}

// Only the owning shard writes, so load + store is exact and avoids a locked
// read-modify-write.
template <class T>
inline void single_writer_add(std::atomic<T>& cell, T amount) {
  cell.store(cell.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
}

// Cells: default-constructible, with clear() (relaxed stores of zero) and
// read_into(Values&) (relaxed loads added into Values, which has operator+=).
template <class Cells>
class bucket_ring {
 public:
  explicit bucket_ring(std::size_t slots) : size_(slots) {
    // Cache-line aligned and padded, so two shards' rings never share a line.
    raw_ = ::operator new (bytes(), std::align_val_t{cache_line});
    slots_ = static_cast<slot*>(raw_);
    for (std::size_t i = 0; i < size_; ++i) new (&slots_[i]) slot();
  }
  ~bucket_ring() {
    for (std::size_t i = 0; i < size_; ++i) slots_[i].~slot();
    ::operator delete (raw_, std::align_val_t{cache_line});
  }
  bucket_ring(const bucket_ring&) = delete;
  bucket_ring& operator=(const bucket_ring&) = delete;

  std::size_t bytes() const { return (size_ * sizeof(slot) + cache_line - 1) / cache_line * cache_line; }

  // Writer only: the cells of `bucket`, cleared first if the slot held an
  // older bucket; nullptr when the slot already moved past `bucket` (an
  // attempt reported a whole ring late).
  Cells* writable(std::uint32_t bucket) {
    slot& s = slots_[bucket % size_];
    const std::uint32_t held = s.bucket.load(std::memory_order_relaxed);
    if (held == bucket) return &s.cells;
    if (held != no_bucket && held > bucket) return nullptr;
    s.bucket.store(no_bucket, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    s.cells.clear();
    s.bucket.store(bucket, std::memory_order_release);
    return &s.cells;
  }

  // Any thread: adds the cells of every bucket in [first, last] to `total`.
  template <class Values>
  void sum(std::uint32_t first, std::uint32_t last, Values& total) const {
    for (std::size_t i = 0; i < size_; ++i) {
      const slot& s = slots_[i];
      const std::uint32_t before = s.bucket.load(std::memory_order_acquire);
      if (before == no_bucket || before < first || before > last) continue;
      Values values{};
      s.cells.read_into(values);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (s.bucket.load(std::memory_order_relaxed) != before) continue;
      total += values;
    }
  }

 private:
  struct slot {
    std::atomic<std::uint32_t> bucket{no_bucket};
    Cells cells;
  };
  std::size_t size_;
  void* raw_ = nullptr;
  slot* slots_ = nullptr;
};

}  // namespace gatewayz::health::detail
