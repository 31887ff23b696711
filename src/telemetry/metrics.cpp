#include "telemetry/metrics.hpp"

#include <iterator>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <stdexcept>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "telemetry/text_writer.hpp"

namespace gatewayz::telemetry {
namespace {

constexpr std::size_t counts_per_line = detail::cache_line / sizeof(std::uint64_t);

bool is_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool is_label_name(std::string_view name) {
  return is_metric_name(name) && name.find(':') == std::string_view::npos && !name.starts_with("__");
}

// Go's float rendering, which both formats expect: shortest round-trip digits,
// and the infinities and NaN spelled as Prometheus parses them.
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

// OpenMetrics' canonical `le` form (1.0, 0.1, 1e-05, +Inf): a whole number keeps
// a ".0" so every exposition names the same bucket identically.
std::string format_bound(double v) {
  std::string s = format_value(v);
  if (std::isfinite(v) && s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

void append_escaped(std::string& out, std::string_view s, bool escape_quote) {
  // Almost every label value needs no escaping: copy it whole.
  if (s.find_first_of(escape_quote ? std::string_view("\\\n\"") : std::string_view("\\\n")) == std::string_view::npos) {
    out += s;
    return;
  }
  for (const char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '"':
        if (escape_quote) {
          out += "\\\"";
        } else {
          out += c;
        }
        break;
      default: out += c;
    }
  }
}

// `a="x",b="y"`: a series' label block as every one of its samples repeats it.
void append_label_block(std::string& out, const std::vector<std::string>& names,
                        const std::vector<std::string>& values) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], true);
    out += '"';
  }
}

bool key_less(const std::vector<std::string>* a, const std::vector<std::string>* b) { return *a < *b; }

// A large scrape is written into freshly mapped memory (the allocator maps
// big blocks anew and unmaps them on free), and faulting it in 4 KiB at a
// time costs more than rendering it. Asking for transparent huge pages on
// the block's 2 MiB-aligned interior, before anything touches it, takes 512
// times fewer faults (docs/decisions/metrics-scrape-huge-pages.md). Advice
// only: where THP is off ("never") nothing changes.
void advise_huge_pages([[maybe_unused]] std::string& out) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t huge_page = std::uintptr_t{2} << 20;
  if (out.capacity() < 4 * huge_page) return;  // small blocks come from the heap, not a fresh mapping
  const auto begin = reinterpret_cast<std::uintptr_t>(out.data());
  const std::uintptr_t first = (begin + huge_page - 1) & ~(huge_page - 1);
  const std::uintptr_t last = (begin + out.capacity()) & ~(huge_page - 1);
  if (last > first) {
    (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);  // NOLINT(performance-no-int-to-ptr)
  }
#endif
}

std::string strip_total(const std::string& name) {
  constexpr std::string_view suffix = "_total";
  if (name.size() > suffix.size() && std::string_view(name).ends_with(suffix)) {
    return name.substr(0, name.size() - suffix.size());
  }
  return name;
}

}  // namespace

namespace detail {

namespace {

// Series are separate heap objects, so a scrape's reads of their cells are
// cache misses in a row; prefetching a few series ahead overlaps them.
inline void prefetch(const void* p) { __builtin_prefetch(p, 0, 3); }

// How far ahead: the object itself two steps out, its cells (whose address
// is read from the object, by then in cache) one step out.
constexpr std::size_t prefetch_distance = 4;

}  // namespace

counter_series::counter_series(std::size_t shard_count)
    : shards(shard_count), cells(std::make_unique<double_cell[]>(shard_count)) {}

double counter_series::value() const {
  double total = mirrored.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < shards; ++i) total += cells[i].v.load(std::memory_order_relaxed);
  return total;
}

gauge_series::gauge_series(std::size_t shard_count)
    : shards(shard_count), deltas(std::make_unique<double_cell[]>(shard_count)) {}

double gauge_series::value() const {
  double total = set_value.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < shards; ++i) total += deltas[i].v.load(std::memory_order_relaxed);
  return total;
}

histogram_series::histogram_series(const std::vector<double>& upper_bounds, std::size_t shard_count,
                                   bool with_exemplars)
    : bounds(&upper_bounds),
      shards(shard_count),
      lines_per_shard((upper_bounds.size() + 1 + counts_per_line - 1) / counts_per_line),
      counts(std::make_unique<count_line[]>(shard_count * lines_per_shard)),
      sums(std::make_unique<sum_cell[]>(shard_count)),
      exemplars(with_exemplars ? std::make_unique<exemplar_cell[]>(shard_count * (upper_bounds.size() + 1)) : nullptr) {
}

std::size_t histogram_series::bucket_index(double value) const {
  // First bound >= value is the bucket whose `le` covers it; NaN and values
  // above every bound land in +Inf.
  if (std::isnan(value)) return bounds->size();
  return static_cast<std::size_t>(std::lower_bound(bounds->begin(), bounds->end(), value) - bounds->begin());
}

void histogram_series::observe(std::size_t shard, double value) const {
  single_writer_add(bucket(shard, bucket_index(value)), 1);
  single_writer_add(sums[shard].v, value);
}

void histogram_series::observe(std::size_t shard, double value, std::string_view trace_id, double timestamp) const {
  const std::size_t index = bucket_index(value);
  single_writer_add(bucket(shard, index), 1);
  single_writer_add(sums[shard].v, value);
  if (!exemplars || trace_id.size() > exemplar_cell::max_trace_id) return;
  if (!sums[shard].has_exemplars.load(std::memory_order_relaxed)) {
    sums[shard].has_exemplars.store(true, std::memory_order_relaxed);
  }

  exemplar_cell& cell = exemplars[shard * (bounds->size() + 1) + index];
  const std::uint32_t seq = cell.seq.load(std::memory_order_relaxed);
  cell.seq.store(seq + 1, std::memory_order_relaxed);
  // Orders the odd sequence number before the field stores (seqlock writer).
  std::atomic_thread_fence(std::memory_order_release);
  cell.trace_id_size.store(static_cast<std::uint32_t>(trace_id.size()), std::memory_order_relaxed);
  cell.value.store(value, std::memory_order_relaxed);
  cell.timestamp.store(timestamp, std::memory_order_relaxed);
  for (std::size_t w = 0; w * sizeof(std::uint64_t) < trace_id.size(); ++w) {
    std::uint64_t word = 0;
    const std::size_t offset = w * sizeof(std::uint64_t);
    std::memcpy(&word, trace_id.data() + offset, std::min(sizeof(word), trace_id.size() - offset));
    cell.trace_id_words[w].store(word, std::memory_order_relaxed);
  }
  cell.seq.store(seq + 2, std::memory_order_release);
}

bool read_exemplar(const exemplar_cell& cell, exemplar_read& out) {
  for (;;) {
    const std::uint32_t before = cell.seq.load(std::memory_order_acquire);
    if (before == 0) return false;
    if (before % 2 != 0) continue;  // a write is in progress
    const std::uint32_t size = cell.trace_id_size.load(std::memory_order_relaxed);
    out.value = cell.value.load(std::memory_order_relaxed);
    out.timestamp = cell.timestamp.load(std::memory_order_relaxed);
    for (std::size_t w = 0; w < std::size(cell.trace_id_words); ++w) {
      const std::uint64_t word = cell.trace_id_words[w].load(std::memory_order_relaxed);
      std::memcpy(out.trace_id + w * sizeof(word), &word, sizeof(word));
    }
    // Orders the field loads before re-reading the sequence (seqlock reader).
    std::atomic_thread_fence(std::memory_order_acquire);
    if (cell.seq.load(std::memory_order_relaxed) == before) {
      out.trace_id_size = std::min<std::size_t>(size, exemplar_cell::max_trace_id);
      return true;
    }
  }
}

std::optional<exemplar> histogram_series::latest_exemplar(std::size_t index) const {
  if (!exemplars) return std::nullopt;
  std::optional<exemplar> latest;
  exemplar_read read;
  for (std::size_t s = 0; s < shards; ++s) {
    if (!sums[s].has_exemplars.load(std::memory_order_relaxed)) continue;
    if (!read_exemplar(exemplars[s * (bounds->size() + 1) + index], read)) continue;
    if (!latest || read.timestamp > latest->timestamp) {
      latest = exemplar{std::string(read.trace_id, read.trace_id_size), read.value, read.timestamp};
    }
  }
  return latest;
}

std::vector<std::uint64_t> histogram_series::bucket_totals() const {
  std::vector<std::uint64_t> totals;
  bucket_totals(totals);
  return totals;
}

void histogram_series::bucket_totals(std::vector<std::uint64_t>& totals) const {
  totals.assign(bounds->size() + 1, 0);
  for (std::size_t s = 0; s < shards; ++s) {
    for (std::size_t b = 0; b < totals.size(); ++b) totals[b] += bucket(s, b).load(std::memory_order_relaxed);
  }
}

double histogram_series::sum() const {
  double total = 0.0;
  for (std::size_t s = 0; s < shards; ++s) total += sums[s].v.load(std::memory_order_relaxed);
  return total;
}

family_base::family_base(metric_type type, std::string name, std::string help, std::vector<std::string> label_names,
                         std::size_t shards)
    : type_(type),
      name_(std::move(name)),
      family_name_(type == metric_type::counter ? strip_total(name_) : name_),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      shards_(shards),
      sample_name_(type == metric_type::counter ? family_name_ + "_total" : name_),
      snapshot_(std::make_shared<series_snapshot>()) {
  if (!is_metric_name(name_)) throw std::invalid_argument(fmt::format("invalid metric name '{}'", name_));
  for (std::size_t i = 0; i < label_names_.size(); ++i) {
    const std::string& label = label_names_[i];
    if (!is_label_name(label)) {
      throw std::invalid_argument(fmt::format("invalid label name '{}' on metric '{}'", label, name_));
    }
    if (std::find(label_names_.begin(), label_names_.begin() + static_cast<std::ptrdiff_t>(i), label) !=
        label_names_.begin() + static_cast<std::ptrdiff_t>(i)) {
      throw std::invalid_argument(fmt::format("duplicate label name '{}' on metric '{}'", label, name_));
    }
    if (type == metric_type::histogram && label == "le") {
      throw std::invalid_argument(fmt::format("histogram '{}' must not declare the label 'le'", name_));
    }
  }
  for (const bool openmetrics : {false, true}) {
    // Text 0.0.4 names a counter by its sample (`x_total`); OpenMetrics by its family (`x`).
    const std::string& shown = openmetrics ? family_name_ : sample_name_;
    std::string& out = openmetrics ? header_openmetrics_ : header_text_;
    out += "# HELP ";
    out += shown;
    out += ' ';
    append_escaped(out, help_, openmetrics);
    out += "\n# TYPE ";
    out += shown;
    switch (type_) {
      case metric_type::counter: out += " counter\n"; break;
      case metric_type::gauge: out += " gauge\n"; break;
      case metric_type::histogram: out += " histogram\n"; break;
    }
  }
}

std::vector<std::string> family_base::make_key(std::initializer_list<std::string_view> label_values) const {
  if (label_values.size() != label_names_.size()) {
    throw std::invalid_argument(
        fmt::format("metric '{}' takes {} label values, got {}", name_, label_names_.size(), label_values.size()));
  }
  return std::vector<std::string>(label_values.begin(), label_values.end());
}

void family_base::render_header(text_writer& out, bool openmetrics) const {
  const std::string& header = openmetrics ? header_openmetrics_ : header_text_;
  out.reserve(header.size());
  out.put(header);
}

void family_base::added(const std::vector<std::string>* key, const void* series) { pending_.emplace_back(key, series); }

std::shared_ptr<const series_snapshot> family_base::snapshot() const {
  const std::lock_guard lock(mu_);
  if (pending_.empty()) return snapshot_;
  // Merge the new series (few, once the gateway has warmed up) into the
  // sorted old ones: a binary search each, and block copies of what lies
  // between, so a new label set costs the next scrape O(series) copying
  // rather than a walk of the map.
  std::sort(pending_.begin(), pending_.end(), [](const auto& a, const auto& b) { return key_less(a.first, b.first); });
  const series_snapshot& old = *snapshot_;
  auto next = std::make_shared<series_snapshot>();
  const std::size_t total = old.series.size() + pending_.size();
  next->series.reserve(total);
  next->keys.reserve(total);
  next->label_end.reserve(total);
  next->labels.reserve(old.labels.size() + pending_.size() * 64);
  std::size_t copied = 0;  // old series copied so far
  const auto copy_old = [&](std::size_t until) {
    if (until == copied) return;
    next->series.insert(next->series.end(), old.series.begin() + static_cast<std::ptrdiff_t>(copied),
                        old.series.begin() + static_cast<std::ptrdiff_t>(until));
    next->keys.insert(next->keys.end(), old.keys.begin() + static_cast<std::ptrdiff_t>(copied),
                      old.keys.begin() + static_cast<std::ptrdiff_t>(until));
    const std::size_t from = copied == 0 ? 0 : old.label_end[copied - 1];
    const std::size_t to = old.label_end[until - 1];
    const std::size_t shift = next->labels.size() - from;  // where the block lands minus where it was
    next->labels.append(old.labels, from, to - from);
    for (std::size_t i = copied; i < until; ++i) next->label_end.push_back(old.label_end[i] + shift);
    copied = until;
  };
  for (const auto& [key, series] : pending_) {
    const auto pos =
        std::upper_bound(old.keys.begin() + static_cast<std::ptrdiff_t>(copied), old.keys.end(), key, key_less);
    copy_old(static_cast<std::size_t>(pos - old.keys.begin()));
    next->series.push_back(series);
    next->keys.push_back(key);
    // Escaped once here: labels never change, so every later scrape only copies the block.
    append_label_block(next->labels, label_names_, *key);
    next->label_end.push_back(next->labels.size());
  }
  copy_old(old.series.size());
  pending_.clear();
  snapshot_ = std::move(next);
  return snapshot_;
}

namespace {

// Counters and gauges: one sample per series, `<name>{<labels>} <value>`.
template <class Series, class Value>
void render_scalar_family(text_writer& out, const series_snapshot& snap, const std::string& name, Value value_of) {
  const std::size_t n = snap.series.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i + 2 * prefetch_distance < n) prefetch(snap.series[i + 2 * prefetch_distance]);
    if (i + prefetch_distance < n) {
      const auto* ahead = static_cast<const Series*>(snap.series[i + prefetch_distance]);
      for (std::size_t s = 0; s < ahead->shards; ++s) prefetch(&value_of.cells(*ahead)[s]);
    }
    const std::string_view labels = snap.labels_of(i);
    out.reserve(name.size() + labels.size() + 4 + text_writer::max_value);
    out.put(name);
    if (!labels.empty()) {
      out.put('{');
      out.put(labels);
      out.put('}');
    }
    out.put(' ');
    out.value(value_of(*static_cast<const Series*>(snap.series[i])));
    out.put('\n');
  }
}

struct counter_value {
  const double_cell* cells(const counter_series& s) const { return s.cells.get(); }
  double operator()(const counter_series& s) const { return s.value(); }
};
struct gauge_value {
  const double_cell* cells(const gauge_series& s) const { return s.deltas.get(); }
  double operator()(const gauge_series& s) const { return s.value(); }
};

// Sums the shards' bucket rows of `series` into `totals` shard-major (the
// order they sit in memory), so one pass over the cells serves every output
// line, and returns the sum of the observations. Whole lines are summed (the
// padding counts are never written, so zero).
double sum_shards(const histogram_series& series, std::vector<std::uint64_t>& totals) {
  std::fill(totals.begin(), totals.end(), 0);
  double sum = 0.0;
  for (std::size_t s = 0; s < series.shards; ++s) {
    const count_line* row = &series.counts[s * series.lines_per_shard];
    for (std::size_t l = 0; l < series.lines_per_shard; ++l) {
      for (std::size_t k = 0; k < counts_per_line; ++k) {
        totals[l * counts_per_line + k] += row[l].v[k].load(std::memory_order_relaxed);
      }
    }
    sum += series.sums[s].v.load(std::memory_order_relaxed);
  }
  return sum;
}

// The newest exemplar of bucket `b` over the shards, into `latest`, without
// allocating; false when no shard recorded one.
bool newest_exemplar(const histogram_series& series, std::size_t buckets, std::size_t b, exemplar_read& latest) {
  exemplar_read read;
  bool found = false;
  for (std::size_t s = 0; s < series.shards; ++s) {
    if (!series.sums[s].has_exemplars.load(std::memory_order_relaxed)) continue;
    if (!read_exemplar(series.exemplars[s * buckets + b], read)) continue;
    if (!found || read.timestamp > latest.timestamp) latest = read;
    found = true;
  }
  return found;
}

}  // namespace

}  // namespace detail

counter_family::counter_family(std::string name, std::string help, std::vector<std::string> label_names,
                               std::size_t shards)
    : family_base(detail::metric_type::counter, std::move(name), std::move(help), std::move(label_names), shards) {
  // A label-less metric has exactly one series; expose it as 0 from the start.
  if (label_names_.empty()) series();
}

counter_handle counter_family::series(std::initializer_list<std::string_view> label_values) {
  std::vector<std::string> key = make_key(label_values);
  const std::lock_guard lock(mu_);
  auto [it, inserted] = series_.try_emplace(std::move(key));
  if (inserted) {
    it->second = std::make_unique<detail::counter_series>(shards_);
    added(&it->first, it->second.get());
  }
  return counter_handle(it->second.get());
}

void counter_family::render(detail::text_writer& out, bool /*openmetrics*/) const {
  detail::render_scalar_family<detail::counter_series>(out, *snapshot(), sample_name_, detail::counter_value{});
}

gauge_family::gauge_family(std::string name, std::string help, std::vector<std::string> label_names, std::size_t shards)
    : family_base(detail::metric_type::gauge, std::move(name), std::move(help), std::move(label_names), shards) {
  if (label_names_.empty()) series();
}

gauge_handle gauge_family::series(std::initializer_list<std::string_view> label_values) {
  std::vector<std::string> key = make_key(label_values);
  const std::lock_guard lock(mu_);
  auto [it, inserted] = series_.try_emplace(std::move(key));
  if (inserted) {
    it->second = std::make_unique<detail::gauge_series>(shards_);
    added(&it->first, it->second.get());
  }
  return gauge_handle(it->second.get());
}

void gauge_family::render(detail::text_writer& out, bool /*openmetrics*/) const {
  detail::render_scalar_family<detail::gauge_series>(out, *snapshot(), sample_name_, detail::gauge_value{});
}

histogram_family::histogram_family(std::string name, std::string help, std::vector<double> upper_bounds,
                                   std::vector<std::string> label_names, std::size_t shards, bool with_exemplars)
    : family_base(detail::metric_type::histogram, std::move(name), std::move(help), std::move(label_names), shards),
      bounds_(std::move(upper_bounds)),
      with_exemplars_(with_exemplars) {
  if (!bounds_.empty() && bounds_.back() == std::numeric_limits<double>::infinity()) bounds_.pop_back();
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && !(bounds_[i - 1] < bounds_[i]))) {
      throw std::invalid_argument(
          fmt::format("histogram '{}': bucket bounds must be finite and strictly increasing", name_));
    }
  }
  bucket_open_ = name_ + "_bucket{";
  for (std::size_t b = 0; b <= bounds_.size(); ++b) {
    le_close_.push_back("le=\"" + (b < bounds_.size() ? format_bound(bounds_[b]) : std::string("+Inf")) + "\"} ");
    max_le_close_ = std::max(max_le_close_, le_close_.back().size());
  }
  if (label_names_.empty()) series();
}

histogram_handle histogram_family::series(std::initializer_list<std::string_view> label_values) {
  std::vector<std::string> key = make_key(label_values);
  const std::lock_guard lock(mu_);
  auto [it, inserted] = series_.try_emplace(std::move(key));
  if (inserted) {
    it->second = std::make_unique<detail::histogram_series>(bounds_, shards_, with_exemplars_);
    added(&it->first, it->second.get());
  }
  return histogram_handle(it->second.get());
}

void histogram_family::render(detail::text_writer& out, bool openmetrics) const {
  const std::shared_ptr<const detail::series_snapshot> snap = snapshot();
  const std::size_t n = snap->series.size();
  const std::size_t buckets = bounds_.size() + 1;
  const std::size_t lines_per_shard = (buckets + counts_per_line - 1) / counts_per_line;
  std::vector<std::uint64_t> totals(lines_per_shard * counts_per_line);  // reused by every series
  const bool exemplars = openmetrics && with_exemplars_;
  const auto at = [&](std::size_t i) { return static_cast<const detail::histogram_series*>(snap->series[i]); };
  for (std::size_t i = 0; i < n; ++i) {
    if (i + 2 * detail::prefetch_distance < n) detail::prefetch(at(i + 2 * detail::prefetch_distance));
    if (i + detail::prefetch_distance < n) {
      const detail::histogram_series* ahead = at(i + detail::prefetch_distance);
      for (std::size_t l = 0; l < ahead->shards * ahead->lines_per_shard; ++l) detail::prefetch(&ahead->counts[l]);
      for (std::size_t s = 0; s < ahead->shards; ++s) detail::prefetch(&ahead->sums[s]);
    }
    const detail::histogram_series& series = *at(i);
    const double sum = detail::sum_shards(series, totals);
    render_series(out, series, snap->labels_of(i), totals, sum, exemplars);
  }
}

std::size_t histogram_family::series_room(std::size_t buckets, std::size_t labels) const {
  return buckets * (bucket_open_.size() + labels + 1 + max_le_close_ + detail::text_writer::max_count + 1) +
         2 * (name_.size() + 6 + labels + 3 + detail::text_writer::max_value + 1);
}

void histogram_family::render_series(detail::text_writer& out, const detail::histogram_series& series,
                                     std::string_view labels, const std::vector<std::uint64_t>& totals, double sum,
                                     bool exemplars) const {
  const std::size_t buckets = bounds_.size() + 1;
  out.reserve(series_room(buckets, labels.size()));
  // _count is the +Inf bucket's cumulative count, so the two always agree
  // even while shards keep observing during the scrape.
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < buckets; ++b) {
    cumulative += totals[b];
    out.put(bucket_open_);
    if (!labels.empty()) {
      out.put(labels);
      out.put(',');
    }
    out.put(le_close_[b]);
    out.count(cumulative);
    // Exemplars exist only in OpenMetrics; text 0.0.4 has no syntax for them.
    if (exemplars) render_exemplar(out, series, b, labels.size());
    out.put('\n');
  }
  const auto tail = [&](std::string_view suffix) {
    out.put(name_);
    out.put(suffix);
    if (!labels.empty()) {
      out.put('{');
      out.put(labels);
      out.put('}');
    }
    out.put(' ');
  };
  tail("_sum");
  out.value(sum);
  out.put('\n');
  tail("_count");
  out.count(cumulative);
  out.put('\n');
}

void histogram_family::render_exemplar(detail::text_writer& out, const detail::histogram_series& series, std::size_t b,
                                       std::size_t labels) const {
  const std::size_t buckets = bounds_.size() + 1;
  detail::exemplar_read latest;
  if (!detail::newest_exemplar(series, buckets, b, latest)) return;
  out.reserve(32 + 2 * latest.trace_id_size + detail::text_writer::max_value + detail::text_writer::max_fixed3 + 1 +
              series_room(buckets - b, labels));  // what the rest of the series may still take
  out.put(" # {trace_id=\"");
  out.escaped(std::string_view(latest.trace_id, latest.trace_id_size));
  out.put("\"} ");
  out.value(latest.value);
  out.put(' ');
  out.fixed3(latest.timestamp);
}

void histogram_handle::observe(std::size_t shard, double value, std::string_view trace_id) const {
  // The coarse wall clock (a few milliseconds of resolution, read from
  // memory the kernel updates): a traced request observes five histograms,
  // and five full clock reads cost it a tenth of a microsecond here, for a
  // timestamp that only has to place the exemplar near its trace.
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
  observe(shard, value, trace_id, static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9);
}

void histogram_handle::observe(std::size_t shard, double value, std::string_view trace_id,
                               double timestamp_seconds) const {
  assert(series_ != nullptr && shard < series_->shards);
  series_->observe(shard, value, trace_id, timestamp_seconds);
}

std::uint64_t histogram_handle::count() const {
  std::uint64_t total = 0;
  for (const std::uint64_t b : series_->bucket_totals()) total += b;
  return total;
}

registry::registry(std::size_t shards) : shards_(shards) {
  if (shards == 0) throw std::invalid_argument("metrics registry needs at least one shard");
}

void registry::add_family(std::unique_ptr<detail::family_base> family) {
  const std::lock_guard lock(mu_);
  for (const auto& existing : families_) {
    if (existing->family_name() == family->family_name()) {
      throw std::invalid_argument(fmt::format("metric '{}' declared twice", family->family_name()));
    }
  }
  families_.push_back(std::move(family));
}

counter_family& registry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
  auto family = std::make_unique<counter_family>(std::move(name), std::move(help), std::move(label_names), shards_);
  counter_family& ref = *family;
  add_family(std::move(family));
  return ref;
}

gauge_family& registry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
  auto family = std::make_unique<gauge_family>(std::move(name), std::move(help), std::move(label_names), shards_);
  gauge_family& ref = *family;
  add_family(std::move(family));
  return ref;
}

histogram_family& registry::histogram(std::string name, std::string help, std::vector<double> upper_bounds,
                                      std::vector<std::string> label_names, bool with_exemplars) {
  auto family = std::make_unique<histogram_family>(std::move(name), std::move(help), std::move(upper_bounds),
                                                   std::move(label_names), shards_, with_exemplars);
  histogram_family& ref = *family;
  add_family(std::move(family));
  return ref;
}

std::string registry::render_all(bool openmetrics) const {
  std::string out;
  // Growing a many-megabyte string by doubling costs copies and page faults:
  // start from the size of the last scrape.
  out.reserve(last_render_size_.load(std::memory_order_relaxed) * 9 / 8 + 4096);
  advise_huge_pages(out);
  detail::text_writer writer(out);
  {
    const std::lock_guard lock(mu_);
    for (const auto& family : families_) {
      family->render_header(writer, openmetrics);
      family->render(writer, openmetrics);
    }
  }
  if (openmetrics) {
    writer.reserve(6);
    writer.put("# EOF\n");
  }
  writer.finish();
  last_render_size_.store(out.size(), std::memory_order_relaxed);
  return out;
}

std::vector<family_description> registry::describe() const {
  const std::lock_guard lock(mu_);
  std::vector<family_description> out;
  out.reserve(families_.size());
  for (const auto& family : families_) {
    const std::string_view type = family->type() == detail::metric_type::counter ? "counter"
                                  : family->type() == detail::metric_type::gauge ? "gauge"
                                                                                 : "histogram";
    out.push_back({family->sample_name(), type, family->help(), family->label_names()});
  }
  return out;
}

std::string registry::render_text() const { return render_all(false); }

std::string registry::render_openmetrics() const { return render_all(true); }

std::string registry::render(std::string_view content_type) const {
  return render_all(content_type == content_type_openmetrics);
}

}  // namespace gatewayz::telemetry
