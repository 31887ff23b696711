#include "tracing/exporter.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "core/base_url.hpp"
#include "core/threads.hpp"
#include "http/client.hpp"
#include "telemetry/catalog.hpp"
#include "telemetry/fast_gzip.hpp"
#include "telemetry/metrics.hpp"

namespace gatewayz::tracing {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

// A bounded single-producer, single-consumer ring of encoded spans: the
// producer encodes a span straight into a free slot and publishes it with
// one release store; the consumer (the export thread) copies slots out.
// Slots keep their capacity, so once warm nothing is allocated, and nothing
// crosses threads but bytes. Neither side ever waits.
class span_ring {
 public:
  explicit span_ring(std::size_t capacity) : slots_(std::max<std::size_t>(capacity, 1)) {}

  // False when the ring is full (or memory ran out encoding).
  bool push(const span& s, otlp_encoding encoding) noexcept {
    const auto tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_.load(std::memory_order_acquire) >= slots_.size()) return false;
    auto& slot = slots_[tail % slots_.size()];
    slot.clear();
    try {
      if (encoding == otlp_encoding::json) {
        append_span_json(s, slot);
      } else {
        append_span_protobuf(s, slot);
      }
    } catch (...) {
      return false;
    }
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }
  // Appends up to `limit` encoded spans to `out`, each after `separator`
  // but the batch's first (`count` spans are in `out` already); returns how
  // many.
  std::size_t pop(std::string& out, std::size_t count, std::size_t limit, std::string_view separator) {
    const auto head = head_.load(std::memory_order_relaxed);
    const auto tail = tail_.load(std::memory_order_acquire);
    const std::size_t n = std::min<std::size_t>(tail - head, limit);
    for (std::size_t i = 0; i < n; ++i) {
      if (count + i > 0) out += separator;
      out += slots_[(head + i) % slots_.size()];
    }
    head_.store(head + n, std::memory_order_release);
    return n;
  }
  std::size_t size() const { return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire); }

 private:
  std::vector<std::string> slots_;
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
};

// Retry-After in seconds (the HTTP-date form is not honoured: backoff then).
std::optional<std::chrono::milliseconds> retry_after_delay(std::string_view value) {
  if (value.empty() || value.size() > 9) return std::nullopt;
  long seconds = 0;
  for (const char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    seconds = seconds * 10 + (c - '0');
  }
  return std::chrono::seconds(seconds);
}

bool retryable(unsigned status) { return status == 429 || status == 502 || status == 503 || status == 504; }

}  // namespace

std::string traces_url(std::string_view endpoint, bool signal_specific) {
  std::string url(endpoint);
  const auto scheme_end = url.find("://");
  const auto path_start = scheme_end == std::string::npos ? std::string::npos : url.find('/', scheme_end + 3);
  if (signal_specific) {
    if (path_start == std::string::npos) url += '/';
    return url;
  }
  if (url.empty() || url.back() != '/') url += '/';
  return url + "v1/traces";
}

struct batch_exporter::impl {
  exporter_options options;
  std::function<void(std::string_view)> report;
  std::vector<std::unique_ptr<span_ring>> rings;
  std::mutex background_mu;  // the shared background producer's
  std::optional<telemetry::counter_handle> dropped_queue_full;
  std::optional<telemetry::counter_handle> dropped_export_failed;
  std::size_t metrics_shard_base = 0;

  std::atomic<std::uint64_t> exported{0};
  std::atomic<std::uint64_t> lost_queue_full{0};
  std::atomic<std::uint64_t> lost_export{0};

  base_url endpoint;
  std::string target;  // the request path
  std::string content_type;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread thread;

  // The export thread's, kept across batches: the batch's request, its
  // spans after `head_room` bytes kept for the envelope (written in front
  // once the spans' size is known, so the request is never copied whole);
  // the envelope itself.
  std::string spans;
  std::size_t head_room = 0;
  std::string head;
  std::optional<telemetry::fast_gzip> gzip;

  std::size_t queued() const {
    std::size_t n = 0;
    for (const auto& r : rings) n += r->size();
    return n;
  }

  void run();
  // Sends one batch, retrying as the header says; true when it was accepted.
  bool export_batch(asio::io_context& io, http::upstream_pool& pool, std::size_t count,
                    steady::time_point hard_deadline);
  asio::awaitable<void> post_once(http::upstream_pool& pool, std::string_view body, steady::time_point deadline,
                                  unsigned& status, std::string& retry_after, bool& transport_failed);
};

batch_exporter::batch_exporter(exporter_options options, telemetry::catalog* metrics,
                               std::function<void(std::string_view)> report)
    : impl_(std::make_unique<impl>()) {
  auto& s = *impl_;
  s.options = std::move(options);
  s.report = std::move(report);
  auto& o = s.options;
  o.producers = std::max<std::size_t>(o.producers, 1);
  o.max_queue_size = std::max<std::size_t>(o.max_queue_size, 1);
  o.max_export_batch_size = std::clamp<std::size_t>(o.max_export_batch_size, 1, o.max_queue_size);
  // The shards submit a span or more per request; the background producer
  // (the last) next to nothing. An even split left a busy shard half the
  // queue, which filled between two looks of a delayed export thread
  // (~5 % of spans dropped at 30k requests/s with the default 2048). The
  // background producer gets an eighth, the shards share the rest.
  const std::size_t shards = o.producers - 1;
  const std::size_t background = shards == 0 ? o.max_queue_size : std::max<std::size_t>(1, o.max_queue_size / 8);
  const std::size_t per_shard = shards == 0 ? 0 : std::max<std::size_t>(1, (o.max_queue_size - background) / shards);
  for (std::size_t i = 0; i < shards; ++i) s.rings.push_back(std::make_unique<span_ring>(per_shard));
  s.rings.push_back(std::make_unique<span_ring>(background));

  std::string problem;
  auto parsed = parse_base_url(o.url, problem);
  if (!parsed) throw std::invalid_argument("tracing endpoint: " + problem);
  s.endpoint = std::move(*parsed);
  s.target = s.endpoint.base_path.empty() ? "/" : s.endpoint.base_path;
  s.endpoint.base_path.clear();
  s.content_type = o.encoding == otlp_encoding::json ? "application/json" : "application/x-protobuf";

  if (metrics != nullptr) {
    // Counted on the metric shard of the producer (shards) or the background
    // shard (the export thread and background producers).
    s.dropped_queue_full = metrics->spans_dropped.series({"queue_full"});
    s.dropped_export_failed = metrics->spans_dropped.series({"export_failed"});
  }
}

batch_exporter::~batch_exporter() { stop(); }

void batch_exporter::start() {
  auto& s = *impl_;
  if (s.thread.joinable()) return;
  s.thread = std::thread([&s] { s.run(); });
}

void batch_exporter::stop() {
  auto& s = *impl_;
  if (!s.thread.joinable()) return;
  {
    std::lock_guard lock(s.mu);
    s.stopping = true;
  }
  s.cv.notify_all();
  s.thread.join();
}

void batch_exporter::submit(std::size_t producer, const span& sp) noexcept {
  auto& s = *impl_;
  const std::size_t last = s.rings.size() - 1;
  producer = std::min(producer, last);
  bool pushed = false;
  if (producer == last) {
    std::lock_guard lock(s.background_mu);
    pushed = s.rings[producer]->push(sp, s.options.encoding);
  } else {
    pushed = s.rings[producer]->push(sp, s.options.encoding);
  }
  if (pushed) return;
  s.lost_queue_full.fetch_add(1, std::memory_order_relaxed);
  // The metric shard of a producer is its index (shards, then background).
  if (s.dropped_queue_full) {
    if (producer == last) {
      std::lock_guard lock(s.background_mu);
      s.dropped_queue_full->inc(producer);
    } else {
      s.dropped_queue_full->inc(producer);
    }
  }
}

batch_exporter::counts batch_exporter::totals() const {
  return {impl_->exported.load(), impl_->lost_queue_full.load(), impl_->lost_export.load()};
}

void batch_exporter::impl::run() {
  name_this_thread("gw-traces");
  lower_thread_priority();
  asio::io_context io{1};
  http::client_settings settings;
  settings.connect_timeout = std::min<std::chrono::milliseconds>(options.export_timeout, std::chrono::seconds(10));
  settings.read_timeout = options.export_timeout;
  settings.write_timeout = options.export_timeout;
  settings.max_idle_connections = 1;
  auto pool = std::make_shared<http::upstream_pool>(io, endpoint, settings);

  if (options.gzip) gzip.emplace();
  // The envelope is longest for the largest spans' size (its length fields).
  if (options.encoding == otlp_encoding::json) {
    json_head(options.resource, head);
  } else {
    protobuf_head(options.resource, std::size_t{1} << 40, head);
  }
  head_room = head.size();
  const std::string_view separator = options.encoding == otlp_encoding::json ? "," : "";
  const std::size_t batch_size = options.max_export_batch_size;
  auto next_due = steady::now() + options.schedule_delay;
  // Often enough that a busy shard's ring (a share of max_queue_size) does
  // not fill between two looks: 40k spans/s put 400 in a ring per look.
  const auto poll = std::min<std::chrono::milliseconds>(options.schedule_delay, std::chrono::milliseconds(10));
  bool last_round = false;
  while (true) {
    {
      std::unique_lock lock(mu);
      // Producers never signal (that would cost them a lock): the thread
      // looks at the queues every `poll` for a full batch.
      cv.wait_for(lock, poll, [this] { return stopping; });
      last_round = stopping;
    }
    const auto now = steady::now();
    if (!last_round && now < next_due && queued() < options.max_export_batch_size) continue;
    next_due = now + options.schedule_delay;
    const auto flush_deadline = now + options.export_timeout;
    // Everything queued now, a batch at a time.
    while (true) {
      std::size_t n = 0;
      spans.assign(head_room, '\0');
      for (auto& ring : rings) {
        if (n >= batch_size) break;
        n += ring->pop(spans, n, batch_size - n, separator);
      }
      if (n == 0) break;
      if (export_batch(io, *pool, n, last_round ? flush_deadline : steady::now() + options.export_timeout)) {
        exported.fetch_add(n, std::memory_order_relaxed);
      } else {
        lost_export.fetch_add(n, std::memory_order_relaxed);
        if (dropped_export_failed) {
          std::lock_guard lock(background_mu);
          dropped_export_failed->inc(rings.size() - 1, static_cast<double>(n));
        }
      }
      if (last_round && steady::now() >= flush_deadline) break;
      if (!last_round && queued() < options.max_export_batch_size) break;
    }
    if (last_round) break;
  }
}

bool batch_exporter::impl::export_batch(asio::io_context& io, http::upstream_pool& pool, std::size_t count,
                                        steady::time_point hard_deadline) {
  const bool json = options.encoding == otlp_encoding::json;
  if (json) {
    json_head(options.resource, head);
    spans += json_tail;
  } else {
    protobuf_head(options.resource, spans.size() - head_room, head);
  }
  // The envelope goes right before the spans, in the room kept for it.
  const std::size_t start = head_room - head.size();
  std::memcpy(spans.data() + start, head.data(), head.size());
  const std::string_view request = std::string_view(spans).substr(start);
  const std::string_view body = gzip ? gzip->compress(request) : request;
  thread_local std::mt19937 jitter{std::random_device{}()};
  auto backoff = std::chrono::milliseconds(1000);
  for (unsigned attempt = 1;; ++attempt) {
    unsigned status = 0;
    std::string retry_after;
    bool transport_failed = false;
    io.restart();
    bool done = false;
    asio::co_spawn(io, post_once(pool, body, hard_deadline, status, retry_after, transport_failed),
                   [&done, &transport_failed](std::exception_ptr error) {
                     if (error) transport_failed = true;
                     done = true;
                   });
    // Until this export is done: the pool's deadline sweeper may keep a timer
    // armed, so run() would not return.
    while (!done) io.run_one();
    if (!transport_failed && status >= 200 && status < 300) return true;
    const bool again = transport_failed || retryable(status);
    std::chrono::milliseconds wait = backoff;
    if (auto told = retry_after_delay(retry_after)) {
      wait = *told;
    } else {
      // Exponential backoff with jitter: between half and all of `backoff`.
      std::uniform_int_distribution<long> spread(backoff.count() / 2, backoff.count());
      wait = std::chrono::milliseconds(spread(jitter));
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(32000));
    bool stop_now = false;
    {
      std::lock_guard lock(mu);
      stop_now = stopping;
    }
    if (!again || steady::now() + wait >= hard_deadline || (stop_now && attempt >= 2)) {
      if (report) {
        report(transport_failed ? fmt::format("trace export failed: collector unreachable ({} spans dropped)", count)
                                : fmt::format("trace export failed: HTTP {} ({} spans dropped)", status, count));
      }
      return false;
    }
    std::unique_lock lock(mu);
    cv.wait_for(lock, wait, [this] { return stopping; });
  }
}

asio::awaitable<void> batch_exporter::impl::post_once(http::upstream_pool& pool, std::string_view body,
                                                      steady::time_point deadline, unsigned& status,
                                                      std::string& retry_after, bool& transport_failed) {
  http::outgoing_request request;
  request.target = target;
  request.body = body;
  request.headers.emplace_back("Content-Type", content_type);
  if (options.gzip) request.headers.emplace_back("Content-Encoding", "gzip");
  request.headers.emplace_back("User-Agent", options.user_agent);
  for (const auto& [name, value] : options.headers) request.headers.emplace_back(name, value);
  auto exchange = co_await pool.send(request, deadline);
  if (exchange.failure() != http::upstream_failure::none) {
    transport_failed = true;
    co_return;
  }
  status = exchange.status();
  retry_after.assign(exchange.retry_after());
  std::string response;
  co_await exchange.read_all(response, 4 * 1024 * 1024);  // read, so the connection can be reused
}

}  // namespace gatewayz::tracing
