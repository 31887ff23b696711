#include "health/http_prober.hpp"

#include <atomic>
#include <chrono>
#include <stdexcept>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "config/durations.hpp"
#include "providers/provider.hpp"

namespace gatewayz::health {

namespace asio = boost::asio;

namespace {

using clock = std::chrono::steady_clock;

constexpr std::size_t max_probe_body_bytes = 1024 * 1024;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

struct target {
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{0};
  std::shared_ptr<http::upstream_pool> pool;  // null: not probed or unusable
  std::string error;                          // why there is no pool
};

asio::awaitable<probe_result> probe_one(target& t) {
  http::outgoing_request request;
  request.method = boost::beast::http::verb::get;
  request.target = t.path;
  for (const auto& [name, value] : t.headers) request.headers.emplace_back(name, value);
  const auto deadline = clock::now() + t.timeout;
  http::upstream_exchange exchange = co_await t.pool->send(request, deadline);
  probe_result result;
  if (exchange.failure() != http::upstream_failure::none) {
    result.cancelled = exchange.failure() == http::upstream_failure::cancelled;
    result.detail = exchange.failure_detail();
    co_return result;
  }
  result.http_status = exchange.status();
  std::string body;
  const bool complete = co_await exchange.read_all(body, max_probe_body_bytes);
  if (!complete) {
    result.cancelled = exchange.failure() == http::upstream_failure::cancelled;
    result.detail = exchange.failure_detail();
    co_return result;
  }
  result.ok = result.http_status >= 200 && result.http_status < 300;
  if (!result.ok) result.detail = fmt::format("HTTP {}", result.http_status);
  co_return result;
}

}  // namespace

outcome classify_failure(http::upstream_failure failure) {
  switch (failure) {
    case http::upstream_failure::none: return outcome::success;
    case http::upstream_failure::cancelled: return outcome::cancelled;
    case http::upstream_failure::too_large: return outcome::client_error;
    case http::upstream_failure::connect:
    case http::upstream_failure::timeout:
    case http::upstream_failure::closed:
    case http::upstream_failure::protocol: return outcome::failure;
  }
  return outcome::failure;
}

std::vector<std::pair<std::string, std::string>> probe_headers(const providers::provider_runtime& provider) {
  // The adapter is the one place that knows a provider's authentication; a
  // minimal chat request makes it produce exactly its headers.
  const auto& adapter = provider.adapter;
  static constexpr std::string_view body = R"({"model":"probe","messages":[{"role":"user","content":"ping"}]})";
  providers::inbound_request request;
  request.op = providers::operation::chat_completions;
  request.body = body;
  request.scan = nullptr;
  request.model = "probe";
  config::model_config model;
  model.id = "probe";
  providers::upstream_request built;
  std::string error;
  if (!adapter->build_request(request, model, built, error)) {
    throw std::runtime_error(fmt::format("probe headers for provider {}: {}", provider.config->name, error));
  }
  std::vector<std::pair<std::string, std::string>> headers;
  bool has_accept = false;
  for (const auto& h : built.headers) {
    if (iequals(h.name, "content-type")) continue;  // a GET has no body
    if (iequals(h.name, "accept")) {
      has_accept = true;
      headers.emplace_back(h.name, "application/json");
      continue;
    }
    headers.emplace_back(h.name, h.value);
  }
  if (!has_accept) headers.emplace_back("accept", "application/json");
  return headers;
}

struct http_prober::impl {
  // Declared before the targets: pools (and their sockets) go first.
  asio::io_context io{1};
  std::vector<target> targets;
  std::atomic<bool> stopped{false};
  // Signals of the probes in flight; touched on the io thread only.
  std::vector<std::unique_ptr<asio::cancellation_signal>> signals;
};

http_prober::http_prober(std::span<const providers::provider_runtime> providers, const options& opts)
    : impl_(std::make_unique<impl>()) {
  if (providers.size() != opts.providers.size()) {
    throw std::invalid_argument("http_prober: provider configs and health options differ in length");
  }
  impl_->targets.resize(providers.size());
  for (std::size_t i = 0; i < providers.size(); ++i) {
    const provider_info& info = opts.providers[i];
    if (info.probe_interval_s <= 0) continue;
    target& t = impl_->targets[i];
    const providers::provider_runtime& p = providers[i];
    t.path = info.probe_path;
    t.timeout = config::to_milliseconds(info.probe_timeout_s);
    t.headers = probe_headers(p);
    // The provider's own client settings, with a probe's shorter timeouts
    // and a single kept-alive connection.
    http::client_settings settings = p.client;
    settings.connect_timeout = std::min(t.timeout, p.client.connect_timeout);
    settings.read_timeout = t.timeout;
    settings.write_timeout = t.timeout;
    settings.max_idle_connections = 1;
    t.pool = std::make_shared<http::upstream_pool>(impl_->io, p.endpoint, std::move(settings));
  }
}

http_prober::~http_prober() = default;

std::vector<probe_result> http_prober::probe(std::span<const std::size_t> providers) {
  std::vector<probe_result> results(providers.size());
  if (impl_->stopped.load(std::memory_order_acquire)) {
    for (auto& r : results) {
      r.cancelled = true;
      r.detail = "prober stopped";
    }
    return results;
  }
  std::size_t pending = 0;
  impl_->io.restart();
  for (std::size_t k = 0; k < providers.size(); ++k) {
    const std::size_t index = providers[k];
    if (index >= impl_->targets.size() || !impl_->targets[index].pool) {
      results[k].detail = index < impl_->targets.size() && !impl_->targets[index].error.empty()
                              ? impl_->targets[index].error
                              : "provider is not probed";
      continue;
    }
    auto& signal = impl_->signals.emplace_back(std::make_unique<asio::cancellation_signal>());
    ++pending;
    auto done = [&results, &pending, k](std::exception_ptr error, probe_result r) {
      if (error) {
        r = probe_result{};
        r.detail = "probe failed unexpectedly";
      }
      results[k] = std::move(r);
      --pending;
    };
    asio::co_spawn(impl_->io, probe_one(impl_->targets[index]),
                   asio::bind_cancellation_slot(signal->slot(), std::move(done)));
  }
  while (pending > 0) impl_->io.run_one();
  impl_->signals.clear();
  return results;
}

void http_prober::stop() {
  impl_->stopped.store(true, std::memory_order_release);
  asio::post(impl_->io, [state = impl_.get()] {
    for (auto& signal : state->signals) signal->emit(asio::cancellation_type::terminal);
  });
}

}  // namespace gatewayz::health
