// The logger: per-shard queues, the writer thread, stdout.
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/threads.hpp"
#include "logging/log.hpp"
#include "logging/redact.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::logging {

struct logger::queue {
  std::mutex mu;
  std::vector<slot> ring;  // fixed size: queue_capacity
  std::size_t head = 0;
  std::size_t size = 0;
  std::uint64_t dropped = 0;  // since the writer last drained
};

namespace {

// Writes all of `data` to `fd`. A closed or broken stdout loses the lines
// (SIGPIPE is ignored by main); nothing else can be done with them.
void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Lines redacted and written per turn of the writer (~100 us of work).
constexpr std::size_t lines_per_turn = 128;

struct metric_set {
  telemetry::counter_handle sent;
  telemetry::counter_handle queue_full;
  telemetry::counter_handle rejected;
  telemetry::counter_handle shutdown;
  telemetry::gauge_handle queued;
};

}  // namespace

logger::logger(logger_options options) : options_(std::move(options)), queue_count_(options_.shards + 1) {
  if (options_.queue_capacity == 0) options_.queue_capacity = 1;
  queues_ = std::make_unique<queue[]>(queue_count_);
  for (std::size_t i = 0; i < queue_count_; ++i) queues_[i].ring.resize(options_.queue_capacity);
  if (options_.loki) loki_ = std::make_unique<loki_shipper>(*options_.loki);
  writer_ = std::thread([this] { run(); });
}

logger::~logger() { stop(); }

void logger::write(const event& e, std::size_t shard) noexcept {
  if (!enabled(e.severity())) return;
  try {
    const auto now = std::chrono::system_clock::now();
    thread_local std::string scratch;
    scratch.clear();
    format_line(e, now, options_.format, scratch);
    queue& q = queues_[shard < options_.shards ? shard : queue_count_ - 1];
    bool half_full = false;
    {
      std::lock_guard lock(q.mu);
      const std::size_t capacity = q.ring.size();
      if (q.size == capacity) {  // the oldest line goes
        q.head = (q.head + 1) % capacity;
        --q.size;
        ++q.dropped;
      }
      slot& s = q.ring[(q.head + q.size) % capacity];
      s.unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
      s.severity = e.severity();
      s.line.assign(scratch);
      ++q.size;
      half_full = q.size * 2 >= capacity;
    }
    if (half_full) wake_.notify_one();
  } catch (...) {
    // Out of memory while formatting: the line is lost, the caller goes on.
  }
}

std::size_t logger::drain(std::vector<slot>& out) {
  std::size_t n = 0;
  std::uint64_t dropped = 0;
  for (std::size_t i = 0; i < queue_count_; ++i) {
    queue& q = queues_[i];
    std::lock_guard lock(q.mu);
    if (out.size() < n + q.size) out.resize(n + q.size);
    for (std::size_t k = 0; k < q.size; ++k) {
      slot& from = q.ring[(q.head + k) % q.ring.size()];
      slot& to = out[n++];
      to.unix_ns = from.unix_ns;
      to.severity = from.severity;
      to.line.swap(from.line);  // both keep a buffer: no allocation either side
    }
    q.head = 0;
    q.size = 0;
    dropped += q.dropped;
    q.dropped = 0;
  }
  if (dropped != 0) {
    std::lock_guard lock(mu_);
    dropped_queue_ += dropped;
  }
  return n;
}

void logger::run() {
  // Like the ledger writer, it shares cores with the shards: it runs when
  // they wait and in short turns (a chunk of lines, then a yield) when they
  // do not, so a batch never holds a shard up for long.
  name_this_thread("gw-logs");
  lower_thread_priority(5);
  std::vector<slot> batch;
  std::vector<loki_record> shipped;
  std::string out;
  const redaction_options redaction{options_.redact_emails};
  for (;;) {
    bool stop = false;
    std::uint64_t flush_target = 0;
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, options_.writer_period, [&] { return stopping_ || flush_requested_ != flush_done_; });
      stop = stopping_;
      flush_target = flush_requested_;
    }
    const std::size_t n = drain(batch);
    if (n != 0) {
      std::stable_sort(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(n),
                       [](const slot& a, const slot& b) { return a.unix_ns < b.unix_ns; });
      if (shipped.size() < n) shipped.resize(n);
      for (std::size_t first = 0; first < n; first += lines_per_turn) {
        if (first != 0) std::this_thread::yield();
        const std::size_t last = std::min(n, first + lines_per_turn);
        out.clear();
        for (std::size_t i = first; i < last; ++i) {
          auto& record = shipped[i];
          record.unix_ns = batch[i].unix_ns;
          record.severity = batch[i].severity;
          record.line.clear();
          redact(batch[i].line, record.line, redaction);
          out.append(record.line);
          out.push_back('\n');
        }
        write_all(options_.fd, out);
      }
      written_.fetch_add(n, std::memory_order_relaxed);
      if (loki_) loki_->enqueue(std::span<loki_record>(shipped.data(), n));
    }
    publish_metrics();
    {
      std::lock_guard lock(mu_);
      flush_done_ = flush_target;
    }
    flushed_.notify_all();
    if (stop && n == 0) return;
  }
}

void logger::flush() {
  std::unique_lock lock(mu_);
  if (stopped_) return;
  const std::uint64_t ticket = ++flush_requested_;
  wake_.notify_one();
  flushed_.wait(lock, [&] { return flush_done_ >= ticket || stopped_; });
}

void logger::stop(std::chrono::milliseconds loki_grace) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (writer_.joinable()) writer_.join();
  if (loki_) loki_->stop(loki_grace);
  publish_metrics();
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  flushed_.notify_all();
}

void logger::attach_metrics(telemetry::catalog& metrics) {
  auto set = std::make_shared<metric_set>();
  set->sent = metrics.log_records_sent.series();
  set->queue_full = metrics.log_records_dropped.series({"queue_full"});
  set->rejected = metrics.log_records_dropped.series({"rejected"});
  set->shutdown = metrics.log_records_dropped.series({"shutdown"});
  set->queued = metrics.loki_queue_size.series();
  {
    std::lock_guard lock(mu_);
    metrics_ = std::move(set);
  }
  publish_metrics();
}

void logger::detach_metrics() {
  std::lock_guard lock(mu_);
  metrics_.reset();
}

void logger::publish_metrics() {
  const auto s = stats();
  std::lock_guard lock(mu_);
  if (!metrics_) return;
  const auto& m = *static_cast<const metric_set*>(metrics_.get());
  m.sent.set_mirrored_total(static_cast<double>(s.loki.sent));
  m.queue_full.set_mirrored_total(static_cast<double>(s.dropped_queue + s.loki.dropped_queue_full));
  m.rejected.set_mirrored_total(static_cast<double>(s.loki.dropped_rejected));
  m.shutdown.set_mirrored_total(static_cast<double>(s.loki.dropped_shutdown));
  m.queued.set(static_cast<double>(s.loki.queued));
}

logger_stats logger::stats() const {
  logger_stats s;
  s.written = written_.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    s.dropped_queue = dropped_queue_;
  }
  if (loki_) s.loki = loki_->stats();
  return s;
}

}  // namespace gatewayz::logging
