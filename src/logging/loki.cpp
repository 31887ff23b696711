// The Loki shipper: the push encoding, the queue and the pushing thread.
#include "logging/loki.hpp"

#include <algorithm>
#include <charconv>
#include <random>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "core/threads.hpp"
#include "http/client.hpp"
#include "logging/json_text.hpp"
#include "telemetry/metrics.hpp"

namespace gatewayz::logging {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

void encode_push(std::span<const loki_record> records, loki_streams& streams, std::string& out) {
  out.append("{\"streams\":[");
  bool first_stream = true;
  for (std::size_t l = 0; l < level_count; ++l) {
    const auto severity = static_cast<level>(l);
    bool any = false;
    for (const auto& r : records) {
      if (r.severity != severity) continue;
      if (!any) {
        if (!first_stream) out.push_back(',');
        first_stream = false;
        any = true;
        out.append("{\"stream\":{\"app\":\"");
        detail::append_json_escaped(streams.app, out);
        out.append("\",\"env\":\"");
        detail::append_json_escaped(streams.env, out);
        out.append("\",\"service\":\"");
        detail::append_json_escaped(streams.service, out);
        out.append("\",\"level\":\"");
        out.append(to_string(severity));
        out.append("\"},\"values\":[");
      } else {
        out.push_back(',');
      }
      // Strictly increasing per stream, across pushes too.
      const std::int64_t ns = std::max(r.unix_ns, streams.last_ns[l] + 1);
      streams.last_ns[l] = ns;
      out.append("[\"");
      const fmt::format_int digits(ns);
      out.append(digits.data(), digits.size());
      out.append("\",\"");
      detail::append_json_escaped(r.line, out);
      out.append("\"]");
    }
    if (any) out.append("]}");
  }
  out.append("]}");
}

namespace {

enum class push_result { accepted, retry, rejected };

// Retry-After as delay-seconds; an HTTP date or garbage: none.
std::optional<std::chrono::milliseconds> retry_after(std::string_view value) {
  unsigned long seconds = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc{} || end != value.data() + value.size() || value.empty()) return std::nullopt;
  return std::chrono::milliseconds(std::min<unsigned long>(seconds, 300) * 1000);
}

}  // namespace

struct loki_shipper::impl {
  loki_options options;
  base_url endpoint;
  std::string target;  // after the URL's path: Loki's push path when the URL has none

  mutable std::mutex mu;  // guards the fields down to `stopping`
  std::deque<loki_record> queue;
  // Emptied line buffers of pushed batches, handed back to the logger by
  // enqueue(): a warm shipper allocates no line.
  std::vector<std::string> spare;
  std::size_t queued_bytes = 0;
  steady::time_point oldest_at{};
  loki_stats counters;
  bool stopping = false;
  steady::time_point stop_deadline{};

  loki_streams streams;
  telemetry::gzip_compressor gzip;
  asio::io_context io{1};
  std::shared_ptr<http::upstream_pool> pool;
  std::mt19937_64 random{std::random_device{}()};
  std::thread thread;

  explicit impl(loki_options o) : options(std::move(o)) {
    std::string problem;
    auto parsed = parse_base_url(options.url, problem);
    if (!parsed) throw std::invalid_argument("logging.loki.url: " + problem);
    endpoint = std::move(*parsed);
    if (endpoint.base_path.empty()) target = "/loki/api/v1/push";
    streams.app = options.app;
    streams.env = options.env;
    streams.service = options.service;
    http::client_settings settings;
    settings.connect_timeout = std::min(options.push_timeout, std::chrono::milliseconds(5000));
    settings.read_timeout = options.push_timeout;
    settings.write_timeout = options.push_timeout;
    settings.max_idle_connections = 2;
    pool = std::make_shared<http::upstream_pool>(io, endpoint, settings);
  }

  // Drops the oldest lines beyond the bound. Called with mu held.
  void trim() {
    while (queue.size() > options.queue_max_records) {
      queued_bytes -= queue.front().line.size();
      queue.pop_front();
      ++counters.dropped_queue_full;
    }
    counters.queued = queue.size();
  }

  // Up to batch_max_bytes (at least one line) from the head of the queue.
  bool take_batch(std::vector<loki_record>& batch, bool& stop) {
    std::lock_guard lock(mu);
    stop = stopping;
    const auto now = steady::now();
    if (stopping && now >= stop_deadline) {
      counters.dropped_shutdown += queue.size();
      queue.clear();
      queued_bytes = 0;
      counters.queued = 0;
      return false;
    }
    if (queue.empty()) return false;
    const bool due = stopping || queued_bytes >= options.batch_max_bytes || now - oldest_at >= options.flush_interval;
    if (!due) return false;
    batch.clear();
    std::size_t bytes = 0;
    while (!queue.empty() && (batch.empty() || bytes + queue.front().line.size() <= options.batch_max_bytes)) {
      bytes += queue.front().line.size();
      batch.push_back(std::move(queue.front()));
      queue.pop_front();
    }
    queued_bytes -= bytes;
    oldest_at = now;  // the rest waits a full interval at most once more
    counters.queued = queue.size();
    return true;
  }

  // Keeps the batch's line buffers for enqueue() (as many as the queue can
  // hold), and empties the batch. Called with mu held.
  void recycle(std::vector<loki_record>& batch) {
    for (auto& r : batch) {
      if (spare.size() >= options.queue_max_records) break;
      r.line.clear();
      spare.push_back(std::move(r.line));
    }
    batch.clear();
  }

  // A failed batch goes back to the head of the queue (it holds the oldest lines).
  void put_back(std::vector<loki_record>& batch) {
    std::lock_guard lock(mu);
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
      queued_bytes += it->line.size();
      queue.push_front(std::move(*it));
    }
    batch.clear();
    trim();
  }

  asio::awaitable<push_result> push(std::string_view body, std::chrono::milliseconds& wait_hint) {
    http::outgoing_request request;
    request.method = boost::beast::http::verb::post;
    request.target = target;
    request.headers.emplace_back("Content-Type", "application/json");
    request.headers.emplace_back("Content-Encoding", "gzip");
    if (!options.tenant_id.empty()) request.headers.emplace_back("X-Scope-OrgID", options.tenant_id);
    for (const auto& [name, value] : options.headers) request.headers.emplace_back(name, value);
    request.body = body;
    auto deadline = steady::now() + options.push_timeout;
    {
      std::lock_guard lock(mu);
      if (stopping) deadline = std::min(deadline, stop_deadline);
    }
    auto exchange = co_await pool->send(request, deadline);
    if (exchange.failure() != http::upstream_failure::none) co_return push_result::retry;
    const unsigned status = exchange.status();
    if (const auto after = retry_after(exchange.retry_after())) wait_hint = *after;
    std::string answer;
    co_await exchange.read_all(answer, 64 * 1024);  // so the connection can be reused
    if (status >= 200 && status < 300) co_return push_result::accepted;
    if (status == 429 || status >= 500) co_return push_result::retry;
    co_return push_result::rejected;
  }

  // Sleeps `how_long` in short steps, returning early once stopping.
  asio::awaitable<void> sleep(std::chrono::milliseconds how_long) {
    asio::steady_timer timer{io};
    const auto until = steady::now() + how_long;
    while (steady::now() < until) {
      {
        std::lock_guard lock(mu);
        if (stopping) co_return;
      }
      timer.expires_after(std::min<steady::duration>(until - steady::now(), std::chrono::milliseconds(20)));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  std::chrono::milliseconds backoff(unsigned failures) {
    const auto cap =
        std::min<std::int64_t>(options.max_backoff.count(), options.min_backoff.count() << std::min(failures, 16U));
    // Full jitter, but never below half the minimum (no busy loop).
    std::uniform_int_distribution<std::int64_t> pick(options.min_backoff.count() / 2, std::max<std::int64_t>(cap, 1));
    return std::chrono::milliseconds(pick(random));
  }

  asio::awaitable<void> run() {
    std::vector<loki_record> batch;
    std::string body;
    unsigned failures = 0;
    const auto tick = std::clamp<std::chrono::milliseconds>(options.flush_interval / 4, std::chrono::milliseconds(5),
                                                            std::chrono::milliseconds(50));
    asio::steady_timer timer{io};
    for (;;) {
      bool stop = false;
      if (!take_batch(batch, stop)) {
        {
          std::lock_guard lock(mu);
          if (stopping && queue.empty()) co_return;
        }
        timer.expires_after(tick);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      loki_streams attempt_streams = streams;
      body.clear();
      encode_push(batch, attempt_streams, body);
      std::chrono::milliseconds hint{0};
      const auto result = co_await push(gzip.compress(body), hint);
      if (result == push_result::accepted) {
        streams = attempt_streams;
        failures = 0;
        std::lock_guard lock(mu);
        counters.sent += batch.size();
        ++counters.pushes;
        recycle(batch);
        continue;
      }
      {
        std::lock_guard lock(mu);
        ++counters.failed_pushes;
        if (result == push_result::rejected) counters.dropped_rejected += batch.size();
      }
      if (result == push_result::rejected) {
        std::lock_guard lock(mu);
        recycle(batch);
        continue;
      }
      put_back(batch);
      ++failures;
      const auto wait = hint.count() > 0 ? std::min(hint, options.max_backoff) : backoff(failures);
      co_await sleep(wait);
    }
  }
};

loki_shipper::loki_shipper(loki_options options) : impl_(std::make_unique<impl>(std::move(options))) {
  asio::co_spawn(impl_->io, impl_->run(), asio::detached);
  impl_->thread = std::thread([this] {
    name_this_thread("gw-loki");
    lower_thread_priority(5);  // pushes are background work, like the ledger's
    impl_->io.run();
  });
}

loki_shipper::~loki_shipper() { stop(std::chrono::milliseconds(0)); }

void loki_shipper::enqueue(std::span<loki_record> records) {
  if (records.empty()) return;
  std::lock_guard lock(impl_->mu);
  if (impl_->queue.empty()) impl_->oldest_at = steady::now();
  for (auto& r : records) {
    loki_record moved;
    moved.unix_ns = r.unix_ns;
    moved.severity = r.severity;
    if (!impl_->spare.empty()) {
      moved.line.swap(impl_->spare.back());
      impl_->spare.pop_back();
    }
    moved.line.swap(r.line);  // r keeps a buffer with room for its next line
    impl_->queued_bytes += moved.line.size();
    impl_->queue.push_back(std::move(moved));
  }
  impl_->trim();
}

void loki_shipper::stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->stopping) {
      impl_->stopping = true;
      impl_->stop_deadline = steady::now() + grace;
    }
  }
  if (impl_->thread.joinable()) impl_->thread.join();
  std::lock_guard lock(impl_->mu);
  impl_->counters.dropped_shutdown += impl_->queue.size();
  impl_->queue.clear();
  impl_->counters.queued = 0;
}

loki_stats loki_shipper::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->counters;
}

}  // namespace gatewayz::logging
