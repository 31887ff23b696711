#include "telemetry/metrics.hpp"

#include <charconv>
#include <iterator>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

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

// The same, appended in place (a scrape formats a million numbers; no temporaries).
void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

void append_count(std::string& out, std::uint64_t v) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  out.append(buffer, static_cast<std::size_t>(end - buffer));
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
  if (s.find_first_of(escape_quote ? std::string_view("\\\n\"") : std::string_view("\\\n")) ==
      std::string_view::npos) {
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

void append_labels(std::string& out, const std::vector<std::string>& names, const std::vector<std::string>& values,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!first) out += ',';
    first = false;
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
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
      sums(std::make_unique<double_cell[]>(shard_count)),
      exemplars(with_exemplars ? std::make_unique<exemplar_cell[]>(shard_count * (upper_bounds.size() + 1))
                               : nullptr) {}

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

std::optional<exemplar> histogram_series::latest_exemplar(std::size_t index) const {
  if (!exemplars) return std::nullopt;
  std::optional<exemplar> latest;
  for (std::size_t s = 0; s < shards; ++s) {
    const exemplar_cell& cell = exemplars[s * (bounds->size() + 1) + index];
    exemplar read;
    std::array<char, exemplar_cell::max_trace_id> id{};
    std::uint32_t size = 0;
    bool written = false;
    for (;;) {
      const std::uint32_t before = cell.seq.load(std::memory_order_acquire);
      if (before % 2 != 0) continue;  // a write is in progress
      size = cell.trace_id_size.load(std::memory_order_relaxed);
      read.value = cell.value.load(std::memory_order_relaxed);
      read.timestamp = cell.timestamp.load(std::memory_order_relaxed);
      for (std::size_t w = 0; w < std::size(cell.trace_id_words); ++w) {
        const std::uint64_t word = cell.trace_id_words[w].load(std::memory_order_relaxed);
        std::memcpy(id.data() + w * sizeof(word), &word, sizeof(word));
      }
      // Orders the field loads before re-reading the sequence (seqlock reader).
      std::atomic_thread_fence(std::memory_order_acquire);
      if (cell.seq.load(std::memory_order_relaxed) == before) {
        written = before != 0;
        break;
      }
    }
    if (!written) continue;
    read.trace_id.assign(id.data(), std::min<std::size_t>(size, id.size()));
    if (!latest || read.timestamp > latest->timestamp) latest = std::move(read);
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
      shards_(shards) {
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
}

std::vector<std::string> family_base::make_key(std::initializer_list<std::string_view> label_values) const {
  if (label_values.size() != label_names_.size()) {
    throw std::invalid_argument(fmt::format("metric '{}' takes {} label values, got {}", name_,
                                            label_names_.size(), label_values.size()));
  }
  return std::vector<std::string>(label_values.begin(), label_values.end());
}

void family_base::render_header(std::string& out, bool openmetrics) const {
  // Text 0.0.4 names a counter by its sample (`x_total`); OpenMetrics by its family (`x`).
  const std::string& name = openmetrics ? family_name_ : (type_ == metric_type::counter ? family_name_ + "_total" : name_);
  out += "# HELP ";
  out += name;
  out += ' ';
  append_escaped(out, help_, openmetrics);
  out += "\n# TYPE ";
  out += name;
  switch (type_) {
    case metric_type::counter: out += " counter\n"; break;
    case metric_type::gauge: out += " gauge\n"; break;
    case metric_type::histogram: out += " histogram\n"; break;
  }
}

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
  auto& slot = series_[std::move(key)];
  if (!slot) slot = std::make_unique<detail::counter_series>(shards_);
  return counter_handle(slot.get());
}

void counter_family::render(std::string& out, bool /*openmetrics*/) const {
  const std::lock_guard lock(mu_);
  for (const auto& [values, s] : series_) {
    out += family_name_;
    out += "_total";
    append_labels(out, label_names_, values);
    out += ' ';
    append_value(out, s->value());
    out += '\n';
  }
}

gauge_family::gauge_family(std::string name, std::string help, std::vector<std::string> label_names,
                           std::size_t shards)
    : family_base(detail::metric_type::gauge, std::move(name), std::move(help), std::move(label_names), shards) {
  if (label_names_.empty()) series();
}

gauge_handle gauge_family::series(std::initializer_list<std::string_view> label_values) {
  std::vector<std::string> key = make_key(label_values);
  const std::lock_guard lock(mu_);
  auto& slot = series_[std::move(key)];
  if (!slot) slot = std::make_unique<detail::gauge_series>(shards_);
  return gauge_handle(slot.get());
}

void gauge_family::render(std::string& out, bool /*openmetrics*/) const {
  const std::lock_guard lock(mu_);
  for (const auto& [values, s] : series_) {
    out += name_;
    append_labels(out, label_names_, values);
    out += ' ';
    append_value(out, s->value());
    out += '\n';
  }
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
  if (label_names_.empty()) series();
}

histogram_handle histogram_family::series(std::initializer_list<std::string_view> label_values) {
  std::vector<std::string> key = make_key(label_values);
  const std::lock_guard lock(mu_);
  auto& slot = series_[std::move(key)];
  if (!slot) slot = std::make_unique<detail::histogram_series>(bounds_, shards_, with_exemplars_);
  return histogram_handle(slot.get());
}

void histogram_family::render(std::string& out, bool openmetrics) const {
  std::vector<std::string> le(bounds_.size() + 1);
  for (std::size_t b = 0; b < bounds_.size(); ++b) le[b] = format_bound(bounds_[b]);
  le.back() = "+Inf";
  std::vector<std::uint64_t> buckets;
  std::string labels;  // `a="x",b="y",` : the series' labels, built once and reused per line
  const std::lock_guard lock(mu_);
  for (const auto& [values, s] : series_) {
    labels.clear();
    for (std::size_t i = 0; i < label_names_.size(); ++i) {
      labels += label_names_[i];
      labels += "=\"";
      append_escaped(labels, values[i], true);
      labels += "\",";
    }
    // _count is the +Inf bucket's cumulative count, so the two always agree
    // even while shards keep observing during the scrape.
    s->bucket_totals(buckets);
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < buckets.size(); ++b) {
      cumulative += buckets[b];
      out += name_;
      out += "_bucket{";
      out += labels;
      out += "le=\"";
      out += le[b];
      out += "\"} ";
      append_count(out, cumulative);
      // Exemplars exist only in OpenMetrics; text 0.0.4 has no syntax for them.
      if (openmetrics) {
        if (const std::optional<detail::exemplar> ex = s->latest_exemplar(b)) {
          out += " # {trace_id=\"";
          append_escaped(out, ex->trace_id, true);
          out += "\"} ";
          append_value(out, ex->value);
          fmt::format_to(std::back_inserter(out), " {:.3f}", ex->timestamp);
        }
      }
      out += '\n';
    }
    if (!labels.empty()) labels.pop_back();  // the trailing ','
    const auto tail = [&](std::string_view suffix) {
      out += name_;
      out += suffix;
      if (!labels.empty()) {
        out += '{';
        out += labels;
        out += '}';
      }
      out += ' ';
    };
    tail("_sum");
    append_value(out, s->sum());
    out += '\n';
    tail("_count");
    append_count(out, cumulative);
    out += '\n';
  }
}

void histogram_handle::observe(std::size_t shard, double value, std::string_view trace_id) const {
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  observe(shard, value, trace_id, now);
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
  const std::lock_guard lock(mu_);
  for (const auto& family : families_) {
    family->render_header(out, openmetrics);
    family->render(out, openmetrics);
  }
  if (openmetrics) out += "# EOF\n";
  last_render_size_.store(out.size(), std::memory_order_relaxed);
  return out;
}

std::string registry::render_text() const { return render_all(false); }

std::string registry::render_openmetrics() const { return render_all(true); }

std::string registry::render(std::string_view content_type) const {
  return render_all(content_type == content_type_openmetrics);
}

}  // namespace gatewayz::telemetry
