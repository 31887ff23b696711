#pragma once
// Metrics registry and Prometheus / OpenMetrics exposition.
//
// The server runs one thread per core, so every metric keeps one cell per
// shard (one shard per server thread). Request code resolves a label set once
// to a handle and then updates only its own shard's cell: no lock and no
// locked read-modify-write on the request path, and no cache line shared
// between shards. The scraper sums the shards with relaxed loads; a scrape
// may see an update a little late, never a torn or lost one.
//
// Rule for callers: shard k's cells are written only by shard k's thread (the
// index is the server thread's own shard number). Series creation and
// rendering may happen on any thread at any time.

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct libdeflate_compressor;

namespace gatewayz::telemetry {

inline constexpr std::string_view content_type_text = "text/plain; version=0.0.4; charset=utf-8";
inline constexpr std::string_view content_type_openmetrics =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

// Picks the exposition format for a scrape from its Accept header and returns
// the exact Content-Type to answer with (one of the two constants above):
// OpenMetrics 1.0 when application/openmetrics-text (version 1.0.0 or
// unversioned) is acceptable with q>0, else Prometheus text 0.0.4.
std::string_view negotiate(std::string_view accept_header);

// Whether a scrape's Accept-Encoding header accepts gzip: a "gzip" or
// "x-gzip" entry with q>0, or else a "*" entry with q>0 (RFC 9110 12.5.3;
// an explicit gzip;q=0 refuses it whatever "*" says). Empty: no.
bool accepts_gzip(std::string_view accept_encoding);

// gzip (RFC 1952) of whole buffers at the fastest level, by libdeflate; a
// scrape's text compresses about tenfold at it, a batch of log lines about
// thirteenfold. One compressor keeps its state and output buffer across
// calls, so a sink that compresses every batch allocates nothing once warm.
// Not thread-safe: one owner thread. Throws std::bad_alloc when libdeflate
// cannot allocate its state.
class gzip_compressor {
 public:
  gzip_compressor();
  ~gzip_compressor();
  gzip_compressor(const gzip_compressor&) = delete;
  gzip_compressor& operator=(const gzip_compressor&) = delete;

  // The gzip stream of `data`, valid until the next call.
  std::string_view compress(std::string_view data);

 private:
  libdeflate_compressor* compressor_;
  std::string out_;
};

// One-shot gzip_compressor::compress (a /metrics scrape).
std::string gzip(std::string_view data);

namespace detail {

inline constexpr std::size_t cache_line = 64;

// One shard's value on its own cache line, so two shards never write the same line.
struct alignas(cache_line) double_cell {
  std::atomic<double> v{0.0};
};

// A histogram shard's running sum. The flag rides on the line the shard
// already writes on every observation, and lets a scrape skip the exemplar
// cells (two lines per bucket per shard) of shards that never recorded one.
struct alignas(cache_line) sum_cell {
  std::atomic<double> v{0.0};
  std::atomic<bool> has_exemplars{false};
};

struct alignas(cache_line) count_line {
  std::atomic<std::uint64_t> v[cache_line / sizeof(std::uint64_t)]{};
};

// Only the owning shard writes a cell, so load + store is exact and avoids
// the cost of a locked read-modify-write (a CAS loop for doubles).
inline void single_writer_add(std::atomic<double>& cell, double delta) {
  cell.store(cell.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}
inline void single_writer_add(std::atomic<std::uint64_t>& cell, std::uint64_t delta) {
  cell.store(cell.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

struct counter_series {
  explicit counter_series(std::size_t shard_count);
  double value() const;

  std::size_t shards;
  std::unique_ptr<double_cell[]> cells;
  // Set by collectors that mirror a monotonic total kept elsewhere (kernel CPU time).
  std::atomic<double> mirrored{0.0};
};

struct gauge_series {
  explicit gauge_series(std::size_t shard_count);
  double value() const;

  std::size_t shards;
  std::unique_ptr<double_cell[]> deltas;
  std::atomic<double> set_value{0.0};
};

// The latest exemplar of one bucket on one shard. The owning shard writes
// it under a sequence lock (odd = write in progress) and the scraper retries
// a read that overlapped a write; every field is a relaxed atomic so the
// overlap is not a data race.
struct alignas(cache_line) exemplar_cell {
  static constexpr std::size_t max_trace_id = 64;
  std::atomic<std::uint32_t> seq{0};
  std::atomic<std::uint32_t> trace_id_size{0};
  std::atomic<double> value{0.0};
  std::atomic<double> timestamp{0.0};  // epoch seconds
  std::atomic<std::uint64_t> trace_id_words[max_trace_id / sizeof(std::uint64_t)]{};
};

struct exemplar {
  std::string trace_id;
  double value = 0.0;
  double timestamp = 0.0;  // epoch seconds
};

// One consistent read of an exemplar_cell, without allocating.
struct exemplar_read {
  char trace_id[exemplar_cell::max_trace_id];
  std::size_t trace_id_size = 0;
  double value = 0.0;
  double timestamp = 0.0;
};
// False when the cell was never written.
bool read_exemplar(const exemplar_cell& cell, exemplar_read& out);

struct histogram_series {
  histogram_series(const std::vector<double>& upper_bounds, std::size_t shard_count, bool with_exemplars);

  std::atomic<std::uint64_t>& bucket(std::size_t shard, std::size_t index) const {
    constexpr std::size_t per_line = cache_line / sizeof(std::uint64_t);
    return counts[shard * lines_per_shard + index / per_line].v[index % per_line];
  }
  std::size_t bucket_index(double value) const;
  void observe(std::size_t shard, double value) const;
  void observe(std::size_t shard, double value, std::string_view trace_id, double timestamp) const;
  // The most recent exemplar of a bucket over all shards, if any was recorded.
  std::optional<exemplar> latest_exemplar(std::size_t index) const;
  // Non-cumulative bucket counts summed over shards; the last one is +Inf.
  std::vector<std::uint64_t> bucket_totals() const;
  void bucket_totals(std::vector<std::uint64_t>& totals) const;  // reusing the caller's buffer
  double sum() const;

  const std::vector<double>* bounds;  // finite, strictly increasing; +Inf is implicit
  std::size_t shards;
  std::size_t lines_per_shard;
  std::unique_ptr<count_line[]> counts;
  std::unique_ptr<sum_cell[]> sums;
  std::unique_ptr<exemplar_cell[]> exemplars;  // shard-major, one per bucket; null when disabled
};

enum class metric_type { counter, gauge, histogram };

// Appends to a std::string through a raw pointer: callers reserve() the most
// a run of writes can take, then write without per-append size checks.
// Defined in telemetry/text_writer.hpp, private to the library.
class text_writer;

// A family's series in exposition order (sorted by label values), with each
// series' label block (`a="x",b="y"`, escaped, without braces) stored back to
// back in render order. Immutable once published: a scrape renders from it
// without holding the family's mutex, so resolving a new label set never waits
// for a scrape; series created since are merged into the next snapshot.
struct series_snapshot {
  std::vector<const void*> series;                    // counter_series*, gauge_series* or histogram_series*
  std::vector<const std::vector<std::string>*> keys;  // label values, owned by the family's map (stable)
  std::vector<std::size_t> label_end;                 // series i's block is labels[label_end[i-1], label_end[i])
  std::string labels;

  std::string_view labels_of(std::size_t i) const {
    const std::size_t begin = i == 0 ? 0 : label_end[i - 1];
    return std::string_view(labels).substr(begin, label_end[i] - begin);
  }
};

class family_base {
 public:
  family_base(metric_type type, std::string name, std::string help, std::vector<std::string> label_names,
              std::size_t shards);
  family_base(const family_base&) = delete;
  family_base& operator=(const family_base&) = delete;
  virtual ~family_base() = default;

  metric_type type() const { return type_; }
  // The family name of OpenMetrics: a counter's name without `_total`.
  const std::string& family_name() const { return family_name_; }
  // The name in text 0.0.4: a counter's `x_total`, otherwise the family name.
  const std::string& sample_name() const { return sample_name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // HELP and TYPE lines, then the samples of every series.
  void render_header(text_writer& out, bool openmetrics) const;
  virtual void render(text_writer& out, bool openmetrics) const = 0;

 protected:
  std::vector<std::string> make_key(std::initializer_list<std::string_view> label_values) const;
  // Under mu_: records a series just added to the family's map.
  void added(const std::vector<std::string>* key, const void* series);
  // The current render order, first merging in the series added since the last one.
  std::shared_ptr<const series_snapshot> snapshot() const;

  metric_type type_;
  std::string name_;
  std::string family_name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::size_t shards_;
  std::string sample_name_;         // a counter's `x_total`, else the name
  std::string header_text_;         // HELP and TYPE lines, text 0.0.4
  std::string header_openmetrics_;  // and OpenMetrics
  // Guards the series map, pending_ and snapshot_: taken when a new label set
  // is resolved and briefly at the start of a scrape, never by handle updates
  // (series addresses are stable).
  mutable std::mutex mu_;
  mutable std::vector<std::pair<const std::vector<std::string>*, const void*>> pending_;
  mutable std::shared_ptr<const series_snapshot> snapshot_;
};

}  // namespace detail

class counter_handle {
 public:
  counter_handle() = default;
  void inc(std::size_t shard, double amount = 1.0) const {
    assert(series_ != nullptr && shard < series_->shards && amount >= 0.0);
    detail::single_writer_add(series_->cells[shard].v, amount);
  }
  // For a counter that mirrors a monotonic total owned by someone else (the
  // kernel's CPU time): the exposed value is this total plus any inc()s.
  void set_mirrored_total(double total) const { series_->mirrored.store(total, std::memory_order_relaxed); }
  double value() const { return series_->value(); }

 private:
  friend class counter_family;
  explicit counter_handle(detail::counter_series* s) : series_(s) {}
  detail::counter_series* series_ = nullptr;
};

class gauge_handle {
 public:
  gauge_handle() = default;
  // Process-wide: one relaxed store, for values measured rather than accumulated.
  void set(double value) const { series_->set_value.store(value, std::memory_order_relaxed); }
  // Per shard, for up/down counts such as in-flight requests; the exposed
  // value is the last set() plus the sum of all shards' deltas.
  void inc(std::size_t shard, double amount = 1.0) const {
    assert(series_ != nullptr && shard < series_->shards);
    detail::single_writer_add(series_->deltas[shard].v, amount);
  }
  void dec(std::size_t shard, double amount = 1.0) const { inc(shard, -amount); }
  double value() const { return series_->value(); }

 private:
  friend class gauge_family;
  explicit gauge_handle(detail::gauge_series* s) : series_(s) {}
  detail::gauge_series* series_ = nullptr;
};

class histogram_handle {
 public:
  histogram_handle() = default;
  void observe(std::size_t shard, double value) const {
    assert(series_ != nullptr && shard < series_->shards);
    series_->observe(shard, value);
  }
  // Also records `trace_id` as the bucket's exemplar (shown in OpenMetrics
  // only) when the family was declared with exemplars; a trace id longer than
  // 64 bytes is not recorded. The timestamp is the wall clock, in seconds.
  void observe(std::size_t shard, double value, std::string_view trace_id) const;
  void observe(std::size_t shard, double value, std::string_view trace_id, double timestamp_seconds) const;
  std::uint64_t count() const;
  double sum() const { return series_->sum(); }

 private:
  friend class histogram_family;
  explicit histogram_handle(detail::histogram_series* s) : series_(s) {}
  detail::histogram_series* series_ = nullptr;
};

// series() resolves a label set (values in the order of the declared label
// names) to a handle, creating the series on first use; keep the handle.
// Throws std::invalid_argument when the number of values is wrong.
class counter_family final : public detail::family_base {
 public:
  counter_family(std::string name, std::string help, std::vector<std::string> label_names, std::size_t shards);
  counter_handle series(std::initializer_list<std::string_view> label_values = {});
  void render(detail::text_writer& out, bool openmetrics) const override;

 private:
  std::map<std::vector<std::string>, std::unique_ptr<detail::counter_series>> series_;
};

class gauge_family final : public detail::family_base {
 public:
  gauge_family(std::string name, std::string help, std::vector<std::string> label_names, std::size_t shards);
  gauge_handle series(std::initializer_list<std::string_view> label_values = {});
  void render(detail::text_writer& out, bool openmetrics) const override;

 private:
  std::map<std::vector<std::string>, std::unique_ptr<detail::gauge_series>> series_;
};

class histogram_family final : public detail::family_base {
 public:
  histogram_family(std::string name, std::string help, std::vector<double> upper_bounds,
                   std::vector<std::string> label_names, std::size_t shards, bool with_exemplars);
  histogram_handle series(std::initializer_list<std::string_view> label_values = {});
  void render(detail::text_writer& out, bool openmetrics) const override;

 private:
  // The most that `buckets` bucket lines of one series and its _sum and
  // _count lines can take, exemplars aside, with `labels` bytes of labels.
  std::size_t series_room(std::size_t buckets, std::size_t labels) const;
  // One series: its bucket lines from `totals` (non-cumulative, per bucket),
  // then _sum and _count.
  void render_series(detail::text_writer& out, const detail::histogram_series& series, std::string_view labels,
                     const std::vector<std::uint64_t>& totals, double sum, bool exemplars) const;
  // Bucket `b`'s newest exemplar, if any shard recorded one (OpenMetrics only).
  void render_exemplar(detail::text_writer& out, const detail::histogram_series& series, std::size_t b,
                       std::size_t labels) const;

  std::vector<double> bounds_;
  bool with_exemplars_;
  // Fixed per family, built once: `<name>_bucket{`, `le="<bound>"} ` per bucket.
  std::string bucket_open_;
  std::vector<std::string> le_close_;
  std::size_t max_le_close_ = 0;
  std::map<std::vector<std::string>, std::unique_ptr<detail::histogram_series>> series_;
};

// Owns all families. Declare families at start (declaration is thread-safe
// but not meant for the request path); names and label names are validated
// against the legacy Prometheus charset and duplicates are rejected
// (std::invalid_argument). Families are rendered in declaration order and
// series sorted by label values, so output is deterministic.
// What a family declares, for the generated metrics reference (docs/metrics.md).
struct family_description {
  std::string name;       // as in text 0.0.4: a counter's `x_total`, a histogram's base name
  std::string_view type;  // "counter", "gauge" or "histogram", as on # TYPE lines
  std::string help;
  std::vector<std::string> label_names;  // declared order; a histogram's `le` is implicit
};

class registry {
 public:
  explicit registry(std::size_t shards);
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  std::size_t shards() const { return shards_; }

  // A counter declared as `x` or `x_total` is exposed as samples `x_total`.
  counter_family& counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  gauge_family& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  // upper_bounds: finite and strictly increasing; the +Inf bucket is implicit
  // (a trailing +Inf is accepted and dropped). Exemplar storage costs about
  // 128 bytes per bucket per shard per series, hence opt-in.
  histogram_family& histogram(std::string name, std::string help, std::vector<double> upper_bounds,
                              std::vector<std::string> label_names = {}, bool with_exemplars = false);

  std::string render_text() const;         // Prometheus text format 0.0.4
  std::string render_openmetrics() const;  // OpenMetrics 1.0, ends with "# EOF\n"
  // Renders in the format named by a Content-Type from negotiate().
  std::string render(std::string_view content_type) const;

  // Every family in declaration (and exposition) order, series or not.
  std::vector<family_description> describe() const;

 private:
  void add_family(std::unique_ptr<detail::family_base> family);
  std::string render_all(bool openmetrics) const;

  std::size_t shards_;
  mutable std::mutex mu_;
  mutable std::atomic<std::size_t> last_render_size_{0};
  std::vector<std::unique_ptr<detail::family_base>> families_;
};

// Standard process_* metrics, read from /proc/self at scrape time (as the
// Prometheus client libraries do): resident and virtual memory, CPU seconds,
// start time, open and max file descriptors.
class process_collector {
 public:
  explicit process_collector(registry& reg);
  // Call right before rendering a scrape. Values that cannot be read keep
  // their previous value.
  void collect() const;

 private:
  gauge_handle resident_memory_;
  gauge_handle virtual_memory_;
  counter_handle cpu_seconds_;
  gauge_handle start_time_;
  gauge_handle open_fds_;
  gauge_handle max_fds_;
};

}  // namespace gatewayz::telemetry
