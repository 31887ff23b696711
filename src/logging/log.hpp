#pragma once
// Structured logs: the one way the process tells its operator what happened.
//
// What: an `event` is a level, a message and typed fields, built on the
// caller's stack. `logger::write` formats it at once into a line, JSON (one
// object: timestamp in RFC 3339 with milliseconds, UTC; level; message; the
// fields in the order given) or text, and queues the line. A writer thread
// passes every line through redact() (redact.hpp) and writes it to stdout
// and, when Loki is configured, hands it to the Loki shipper (loki.hpp).
//
// Threads: write() may be called from any thread. A server shard passes its
// index and appends to a queue of its own, whose lock only the writer
// thread ever contends; other threads share one more queue. Formatting is
// on the caller's thread; redaction, stdout and Loki on background
// threads, so a request never waits on a pipe, a terminal or Loki.
//
// Bounds: each queue holds `queue_capacity` lines; when a queue is full (the
// writer is stuck behind a blocked stdout) the oldest line is dropped and
// counted, reason "queue_full". Strings in queue slots keep their capacity,
// so a warm logger allocates nothing per line.
//
// Failure: write() never throws and never blocks beyond its queue's lock.
// Ownership: main builds the logger before reading the config (so a config
// error is a line too) and stops it last; stop() writes every queued line.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "logging/level.hpp"
#include "logging/loki.hpp"

namespace gatewayz::telemetry {
struct catalog;
}

namespace gatewayz::logging {

// One log event. Keys and string values are views: they must live until
// logger::write returns (it formats at once). At most max_fields fields;
// further ones are ignored.
class event {
 public:
  static constexpr std::size_t max_fields = 32;

  event(level l, std::string_view message) : level_(l), message_(message) {}

  event& text(std::string_view key, std::string_view value);
  event& integer(std::string_view key, std::int64_t value);
  event& number(std::string_view key, double value);  // NaN and infinities become null
  event& boolean(std::string_view key, bool value);

  struct field {
    enum class kind : std::uint8_t { text, integer, number, boolean };
    std::string_view key;
    kind type = kind::text;
    std::string_view text;
    std::int64_t integer = 0;
    double number = 0;
    bool boolean = false;
  };

  level severity() const { return level_; }
  std::string_view message() const { return message_; }
  const field* begin() const { return fields_; }
  const field* end() const { return fields_ + count_; }

 private:
  field* next();
  level level_;
  std::string_view message_;
  std::size_t count_ = 0;
  field fields_[max_fields];
};

enum class line_format : std::uint8_t { json, text };

// Appends `e` as one line (no newline) stamped `at` to `out`.
void format_line(const event& e, std::chrono::system_clock::time_point at, line_format format, std::string& out);

struct logger_options {
  level min_level = level::info;
  line_format format = line_format::json;
  bool redact_emails = true;
  std::size_t shards = 0;                       // server threads that pass their index to write()
  std::size_t queue_capacity = 8192;            // lines per queue
  int fd = 1;                                   // where lines go (stdout)
  std::chrono::milliseconds writer_period{20};  // the writer's longest sleep
  std::optional<loki_options> loki;             // none: stdout only
};

struct logger_stats {
  std::uint64_t written = 0;        // lines written to the fd
  std::uint64_t dropped_queue = 0;  // lines dropped from a full queue (before the fd)
  loki_stats loki;
};

class logger {
 public:
  static constexpr std::size_t any_thread = static_cast<std::size_t>(-1);

  explicit logger(logger_options options);
  ~logger();
  logger(const logger&) = delete;
  logger& operator=(const logger&) = delete;

  bool enabled(level l) const { return l >= options_.min_level; }
  line_format format() const { return options_.format; }

  // Queues `e` (if its level is enabled). `shard`: the caller's server
  // shard, or any_thread.
  void write(const event& e, std::size_t shard = any_thread) noexcept;

  // Waits until every line queued before the call has been written to the
  // fd and handed to the Loki shipper (not necessarily pushed).
  void flush();
  // Writes every queued line, gives Loki up to `loki_grace` to take what it
  // has, and stops the threads. Idempotent; the destructor calls it.
  void stop(std::chrono::milliseconds loki_grace = std::chrono::milliseconds(2000));

  // Publishes the logger's counters in `metrics`
  // (gatewayz_log_records_sent_total, gatewayz_log_records_dropped_total{reason},
  // loki_log_queue_size), refreshed by the writer thread. detach before the
  // catalog goes away.
  void attach_metrics(telemetry::catalog& metrics);
  void detach_metrics();

  logger_stats stats() const;

 private:
  struct slot {
    std::int64_t unix_ns = 0;
    level severity = level::info;
    std::string line;
  };
  struct queue;

  void run();
  std::size_t drain(std::vector<slot>& out);
  void publish_metrics();

  logger_options options_;
  std::unique_ptr<queue[]> queues_;  // shards + 1 (the last: any_thread)
  std::size_t queue_count_;
  std::unique_ptr<loki_shipper> loki_;

  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable wake_;
  std::condition_variable flushed_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::uint64_t flush_requested_ = 0;
  std::uint64_t flush_done_ = 0;
  std::uint64_t dropped_queue_ = 0;
  std::shared_ptr<void> metrics_;  // the handles of attach_metrics

  std::atomic<std::uint64_t> written_{0};
  std::thread writer_;
};

}  // namespace gatewayz::logging
