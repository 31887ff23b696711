#pragma once
// The batch span exporter: finished spans go into bounded per-producer
// queues and a background thread (`gw-traces`) sends them in batches as
// OTLP/HTTP (protobuf or JSON, gzip-compressed unless told not to) to the
// collector.
//
// Batching follows OpenTelemetry's BatchSpanProcessor: a batch leaves when
// `schedule_delay` has passed or `max_export_batch_size` spans wait; at most
// `max_queue_size` spans wait in all (an eighth for the background
// producer, the rest split evenly over the shards), and
// a span that finds its queue full is dropped and counted
// (gatewayz_spans_dropped_total{reason="queue_full"}). One export runs at a
// time; it is retried only on 429, 502, 503, 504 and on connection failures,
// after Retry-After when the collector sent one (seconds), else with
// exponential backoff and jitter, within `export_timeout`; a batch that
// still fails is dropped and counted (reason="export_failed").
//
// Threads: producer i (a shard) calls submit(i, ...) from one thread only
// (a lock-free single-producer queue: submit never blocks). submit encodes
// the span on the caller's thread into a slot of its queue, which keeps its
// capacity: once warm, submit allocates nothing, and the export thread only
// joins encoded spans, compresses and sends them. The last producer index,
// producers - 1, is shared by background threads and takes a mutex among
// them. stop() (or the destructor) exports what is queued within
// export_timeout and ends the thread.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tracing/otlp.hpp"
#include "tracing/span.hpp"

namespace gatewayz::telemetry {
struct catalog;
}

namespace gatewayz::tracing {

enum class otlp_encoding : std::uint8_t { protobuf, json };

struct exporter_options {
  std::string url;  // where to POST, e.g. http://127.0.0.1:4318/v1/traces
  otlp_encoding encoding = otlp_encoding::protobuf;
  bool gzip = true;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. authorization for a hosted collector
  resource_info resource;
  std::size_t producers = 1;  // shards + 1 (the background producer)
  std::size_t max_queue_size = 2048;
  std::chrono::milliseconds schedule_delay{5000};
  std::size_t max_export_batch_size = 512;
  std::chrono::milliseconds export_timeout{30000};
  std::string user_agent = "gatewayz-otlp-exporter";
};

class batch_exporter {
 public:
  // `metrics` may be null (no counters). `report` gets one line per failed
  // export (no span content, no header values). Throws std::invalid_argument
  // on an unusable url.
  batch_exporter(exporter_options options, telemetry::catalog* metrics,
                 std::function<void(std::string_view)> report = {});
  ~batch_exporter();
  batch_exporter(const batch_exporter&) = delete;
  batch_exporter& operator=(const batch_exporter&) = delete;

  void start();
  void stop();

  // Encodes and queues a finished span (the caller keeps `s`); drops it,
  // counted, when the producer's queue is full.
  void submit(std::size_t producer, const span& s) noexcept;

  struct counts {
    std::uint64_t exported = 0;
    std::uint64_t dropped_queue_full = 0;
    std::uint64_t dropped_export_failed = 0;
  };
  counts totals() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// The URL spans are POSTed to, as the OpenTelemetry exporter specification
// derives it: a signal-specific endpoint is used as is (a missing path
// becomes "/"); a base endpoint gets "v1/traces" appended after a '/'.
std::string traces_url(std::string_view endpoint, bool signal_specific);

}  // namespace gatewayz::tracing
