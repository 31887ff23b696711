#pragma once
// Ships log lines to Grafana Loki's push API (POST /loki/api/v1/push, JSON
// body, gzip), without ever holding up the process that logs.
//
// What: lines wait in one bounded queue; a push is sent once the queued
// lines reach batch_max_bytes or the oldest has waited flush_interval. Each
// push has one stream per level, labelled only app, env, service and level
// (low cardinality: request and customer ids stay in the JSON line), with
// timestamps strictly increasing per stream across pushes (a line stamped
// no later than its stream's last one is sent 1 ns after it; the line's own
// "timestamp" field keeps the real time).
//
// Failure: 429, 5xx and connection failures are retried with exponential
// backoff and full jitter (Retry-After honoured), the lines staying at the
// head of the queue; another 4xx drops the push (reason "rejected"). When
// the queue is full the oldest lines are dropped (reason "queue_full"), so
// Loki being slow or down costs at most queue_max_records lines of memory.
//
// Threads: enqueue() is called by the logger's writer thread; the shipper
// runs its own thread with its own io_context and HTTP client. stats() is
// safe from any thread.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "logging/level.hpp"

namespace gatewayz::logging {

struct loki_options {
  std::string url;  // http(s)://host[:port]/loki/api/v1/push
  std::string tenant_id;
  std::map<std::string, std::string> headers;
  std::size_t batch_max_bytes = 1024 * 1024;
  std::chrono::milliseconds flush_interval{1000};
  std::size_t queue_max_records = 10000;
  std::string app = "gatewayz";
  std::string env = "production";
  std::string service = "gatewayz-api";
  std::chrono::milliseconds push_timeout{10'000};
  std::chrono::milliseconds min_backoff{250};
  std::chrono::milliseconds max_backoff{5'000};
};

struct loki_stats {
  std::uint64_t sent = 0;                // lines Loki accepted
  std::uint64_t dropped_queue_full = 0;  // oldest lines dropped from a full queue
  std::uint64_t dropped_rejected = 0;    // lines in pushes Loki refused (4xx other than 429)
  std::uint64_t dropped_shutdown = 0;    // lines still queued when the grace at stop ran out
  std::uint64_t pushes = 0;              // pushes Loki accepted
  std::uint64_t failed_pushes = 0;       // pushes that failed and were retried or dropped
  std::size_t queued = 0;                // lines waiting now
};

struct loki_record {
  std::int64_t unix_ns = 0;
  level severity = level::info;
  std::string line;  // redacted, one line, valid UTF-8
};

// The stream labels and, per stream, the last timestamp sent (pushes must
// keep each stream's timestamps increasing).
struct loki_streams {
  std::string app, env, service;
  std::int64_t last_ns[level_count] = {};
};

// Appends the JSON push body of `records` (sorted by time, any levels) to
// `out`, advancing `streams.last_ns`.
void encode_push(std::span<const loki_record> records, loki_streams& streams, std::string& out);

class loki_shipper {
 public:
  // Throws std::invalid_argument when the URL is not http(s)://host[:port]/path.
  explicit loki_shipper(loki_options options);
  ~loki_shipper();
  loki_shipper(const loki_shipper&) = delete;
  loki_shipper& operator=(const loki_shipper&) = delete;

  // Moves the lines of records[0..count) into the queue (their strings are
  // swapped out, so the caller's slots get spare capacity back).
  void enqueue(std::span<loki_record> records);
  // Pushes what is queued for up to `grace`, then stops; what is left is
  // counted as dropped (reason "shutdown"). Idempotent.
  void stop(std::chrono::milliseconds grace);

  loki_stats stats() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace gatewayz::logging
