#include "health/window_store.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "health/ring.hpp"

namespace gatewayz::health {

namespace {

using detail::bucket_of;
using detail::single_writer_add;
using namespace std::chrono_literals;

constexpr double first_bin_seconds = 0.001;
// Slots beyond the buckets a window spans: the window's partial first bucket,
// plus slack so a writer a little ahead of a reader does not recycle a slot
// the reader still needs.
constexpr std::size_t ring_slack = 3;
constexpr std::size_t count_buckets_per_window = 30;
constexpr std::size_t latency_buckets_per_window = 10;
constexpr std::size_t model_buckets_per_window = 10;
// Model rings are the bulk of the memory: one slot of slack only (11 buckets
// per window + 1 = 12 slots of 16 bytes, three cache lines).
constexpr std::size_t model_ring_slots = model_buckets_per_window + 2;
constexpr auto hour = std::chrono::nanoseconds(3600s);
constexpr auto hour_bucket = std::chrono::nanoseconds(60s);
constexpr std::size_t hour_buckets = 60;

std::uint32_t first_bucket(steady_time now, std::chrono::nanoseconds span, std::chrono::nanoseconds width) {
  const auto start = now.time_since_epoch() > span ? now - span : steady_time{};
  return bucket_of(start, width);
}

struct count_values {
  std::uint64_t successes = 0;
  std::uint64_t failures = 0;
  std::uint64_t client_errors = 0;
  std::uint64_t latency_us = 0;
  count_values& operator+=(const count_values& o) {
    successes += o.successes;
    failures += o.failures;
    client_errors += o.client_errors;
    latency_us += o.latency_us;
    return *this;
  }
};

struct count_cells {
  std::atomic<std::uint32_t> successes{0};
  std::atomic<std::uint32_t> failures{0};
  std::atomic<std::uint32_t> client_errors{0};
  std::atomic<std::uint64_t> latency_us{0};  // successes only
  void clear() {
    successes.store(0, std::memory_order_relaxed);
    failures.store(0, std::memory_order_relaxed);
    client_errors.store(0, std::memory_order_relaxed);
    latency_us.store(0, std::memory_order_relaxed);
  }
  void read_into(count_values& v) const {
    v.successes += successes.load(std::memory_order_relaxed);
    v.failures += failures.load(std::memory_order_relaxed);
    v.client_errors += client_errors.load(std::memory_order_relaxed);
    v.latency_us += latency_us.load(std::memory_order_relaxed);
  }
};

struct histogram_values {
  latency_histogram h;
  histogram_values& operator+=(const histogram_values& o) {
    for (std::size_t i = 0; i < latency_histogram::bin_count; ++i) h.bins[i] += o.h.bins[i];
    return *this;
  }
};

struct histogram_cells {
  std::atomic<std::uint32_t> bins[latency_histogram::bin_count]{};
  void clear() {
    for (auto& b : bins) b.store(0, std::memory_order_relaxed);
  }
  void read_into(histogram_values& v) const {
    for (std::size_t i = 0; i < latency_histogram::bin_count; ++i) {
      v.h.bins[i] += bins[i].load(std::memory_order_relaxed);
    }
  }
};

struct hour_cells {
  std::atomic<std::uint32_t> requests{0};
  std::atomic<std::uint32_t> failures{0};
  void clear() {
    requests.store(0, std::memory_order_relaxed);
    failures.store(0, std::memory_order_relaxed);
  }
  void read_into(count_values& v) const {
    v.successes += requests.load(std::memory_order_relaxed);  // successes + failures
    v.failures += failures.load(std::memory_order_relaxed);
  }
};

struct model_cells {
  std::atomic<std::uint32_t> successes{0};
  std::atomic<std::uint32_t> failures{0};
  std::atomic<std::uint32_t> latency_ms{0};  // successes only
  void clear() {
    successes.store(0, std::memory_order_relaxed);
    failures.store(0, std::memory_order_relaxed);
    latency_ms.store(0, std::memory_order_relaxed);
  }
  void read_into(count_values& v) const {
    v.successes += successes.load(std::memory_order_relaxed);
    v.failures += failures.load(std::memory_order_relaxed);
    v.latency_us += std::uint64_t{latency_ms.load(std::memory_order_relaxed)} * 1000;
  }
};

using model_ring = detail::bucket_ring<model_cells>;

}  // namespace

// ---- latency_histogram ---------------------------------------------------------

std::size_t latency_histogram::bin_of(double seconds) {
  if (!(seconds >= first_bin_seconds)) return 0;  // also NaN
  const double position = std::log2(seconds / first_bin_seconds) * bins_per_doubling;
  if (position >= static_cast<double>(bin_count - 2)) return bin_count - 1;
  return 1 + static_cast<std::size_t>(position);
}

double latency_histogram::bin_lower_seconds(std::size_t bin) {
  if (bin == 0) return 0.0;
  return first_bin_seconds * std::exp2(static_cast<double>(bin - 1) / bins_per_doubling);
}

std::uint64_t latency_histogram::count() const {
  std::uint64_t n = 0;
  for (auto b : bins) n += b;
  return n;
}

double latency_histogram::quantile(double q) const {
  const std::uint64_t n = count();
  if (n == 0) return 0.0;
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bin_count; ++i) {
    seen += bins[i];
    if (seen < rank) continue;
    if (i == 0) return first_bin_seconds / 2;
    if (i == bin_count - 1) return bin_lower_seconds(i);
    return std::sqrt(bin_lower_seconds(i) * bin_lower_seconds(i + 1));
  }
  return bin_lower_seconds(bin_count - 1);
}

// ---- memory_window_store -------------------------------------------------------

namespace {

struct provider_cells {
  explicit provider_cells(std::size_t model_count)
      : counts(count_buckets_per_window + ring_slack),
        latency(latency_buckets_per_window + ring_slack),
        hour(hour_buckets + ring_slack),
        models(std::make_unique<std::atomic<model_ring*>[]>(model_count)),
        models_size(model_count) {
    for (std::size_t i = 0; i < model_count; ++i) models[i].store(nullptr, std::memory_order_relaxed);
  }
  ~provider_cells() {
    for (std::size_t i = 0; i < models_size; ++i) delete models[i].load(std::memory_order_relaxed);
  }
  provider_cells(const provider_cells&) = delete;
  provider_cells& operator=(const provider_cells&) = delete;

  detail::bucket_ring<count_cells> counts;
  detail::bucket_ring<histogram_cells> latency;
  detail::bucket_ring<hour_cells> hour;
  // Allocated by the owning shard on its first attempt for the model and
  // published with a release store; readers load with acquire.
  std::unique_ptr<std::atomic<model_ring*>[]> models;
  std::size_t models_size;
};

}  // namespace

struct memory_window_store::shard_cells {
  std::vector<std::unique_ptr<provider_cells>> providers;
  std::atomic<std::size_t> model_bytes{0};  // written by the owning shard only
};

memory_window_store::memory_window_store(std::size_t shards, std::chrono::nanoseconds window,
                                         const std::vector<std::size_t>& models_per_provider)
    : shards_(shards), window_(window), models_per_provider_(models_per_provider) {
  if (shards == 0) throw std::invalid_argument("memory_window_store: shards must be at least 1");
  if (window < std::chrono::nanoseconds(count_buckets_per_window)) {
    throw std::invalid_argument("memory_window_store: window too short");
  }
  cells_.reserve(shards);
  for (std::size_t s = 0; s < shards; ++s) {
    auto sc = std::make_unique<shard_cells>();
    sc->providers.reserve(models_per_provider.size());
    for (std::size_t models : models_per_provider) sc->providers.push_back(std::make_unique<provider_cells>(models));
    cells_.push_back(std::move(sc));
  }
}

memory_window_store::~memory_window_store() = default;

void memory_window_store::record(std::size_t shard, std::size_t provider, const attempt_result& a) {
  if (a.result == outcome::cancelled) return;
  shard_cells& sc = *cells_[shard];
  provider_cells& pc = *sc.providers[provider];
  const bool success = a.result == outcome::success;
  const bool failure = a.result == outcome::failure;
  const auto latency_us = static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(a.duration).count()));

  if (count_cells* c = pc.counts.writable(bucket_of(a.finished, window_ / count_buckets_per_window))) {
    if (success) {
      single_writer_add(c->successes, 1u);
      single_writer_add(c->latency_us, latency_us);
    } else if (failure) {
      single_writer_add(c->failures, 1u);
    } else {
      single_writer_add(c->client_errors, 1u);
    }
  }
  if (!success && !failure) return;  // client errors are not the provider's requests

  if (success) {
    const double seconds = std::chrono::duration<double>(a.duration).count();
    if (histogram_cells* h = pc.latency.writable(bucket_of(a.finished, window_ / latency_buckets_per_window))) {
      single_writer_add(h->bins[latency_histogram::bin_of(seconds)], 1u);
    }
  }
  if (hour_cells* h = pc.hour.writable(bucket_of(a.finished, hour_bucket))) {
    single_writer_add(h->requests, 1u);
    if (failure) single_writer_add(h->failures, 1u);
  }
  if (a.model >= pc.models_size) return;
  model_ring* ring = pc.models[a.model].load(std::memory_order_relaxed);
  if (ring == nullptr) {
    ring = new model_ring(model_ring_slots);
    pc.models[a.model].store(ring, std::memory_order_release);
    single_writer_add(sc.model_bytes, sizeof(model_ring) + ring->bytes());
  }
  if (model_cells* m = ring->writable(bucket_of(a.finished, window_ / model_buckets_per_window))) {
    if (success) {
      single_writer_add(m->successes, 1u);
      single_writer_add(m->latency_ms, static_cast<std::uint32_t>(latency_us / 1000));
    } else {
      single_writer_add(m->failures, 1u);
    }
  }
}

window_totals memory_window_store::provider_window(std::size_t provider, steady_time now) const {
  return provider_window_after(provider, now, steady_time{});
}

window_totals memory_window_store::provider_window_after(std::size_t provider, steady_time now,
                                                         steady_time after) const {
  const auto count_width = window_ / count_buckets_per_window;
  const auto latency_width = window_ / latency_buckets_per_window;
  // The first bucket to sum: the window's, or the one after the bucket of `after`.
  const auto first = [&](std::chrono::nanoseconds width) {
    const std::uint32_t window_first = first_bucket(now, window_, width);
    if (after == steady_time{}) return window_first;
    return std::max(window_first, bucket_of(after, width) + 1);
  };
  count_values counts;
  histogram_values latency;
  for (const auto& sc : cells_) {
    const provider_cells& pc = *sc->providers[provider];
    pc.counts.sum(first(count_width), bucket_of(now, count_width), counts);
    pc.latency.sum(first(latency_width), bucket_of(now, latency_width), latency);
  }
  window_totals t;
  t.successes = counts.successes;
  t.failures = counts.failures;
  t.client_errors = counts.client_errors;
  t.success_latency_sum_s = static_cast<double>(counts.latency_us) / 1e6;
  t.success_latency = latency.h;
  return t;
}

window_totals memory_window_store::model_window(std::size_t provider, std::size_t model, steady_time now) const {
  const auto width = window_ / model_buckets_per_window;
  count_values counts;
  for (const auto& sc : cells_) {
    const provider_cells& pc = *sc->providers[provider];
    if (model >= pc.models_size) break;
    const model_ring* ring = pc.models[model].load(std::memory_order_acquire);
    if (ring != nullptr) ring->sum(first_bucket(now, window_, width), bucket_of(now, width), counts);
  }
  window_totals t;
  t.successes = counts.successes;
  t.failures = counts.failures;
  t.success_latency_sum_s = static_cast<double>(counts.latency_us) / 1e6;
  return t;
}

hour_totals memory_window_store::last_hour(std::size_t provider, steady_time now) const {
  count_values total;
  for (const auto& sc : cells_) {
    sc->providers[provider]->hour.sum(first_bucket(now, hour, hour_bucket), bucket_of(now, hour_bucket), total);
  }
  return hour_totals{total.successes, total.failures};
}

std::size_t memory_window_store::memory_bytes() const {
  std::size_t bytes = sizeof(*this) + cells_.capacity() * sizeof(cells_[0]);
  for (const auto& sc : cells_) {
    bytes += sizeof(shard_cells) + sc->providers.capacity() * sizeof(sc->providers[0]);
    for (const auto& pc : sc->providers) {
      bytes += sizeof(provider_cells) + pc->counts.bytes() + pc->latency.bytes() + pc->hour.bytes() +
               pc->models_size * sizeof(std::atomic<model_ring*>);
    }
    bytes += sc->model_bytes.load(std::memory_order_relaxed);
  }
  return bytes;
}

}  // namespace gatewayz::health
