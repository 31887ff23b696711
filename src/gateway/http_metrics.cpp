#include "gateway/http_metrics.hpp"

#include <string>

namespace gatewayz::gateway {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view method_names[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "OTHER"};

std::size_t method_index(bhttp::verb method) {
  switch (method) {
    case bhttp::verb::get: return 0;
    case bhttp::verb::post: return 1;
    case bhttp::verb::put: return 2;
    case bhttp::verb::delete_: return 3;
    case bhttp::verb::patch: return 4;
    case bhttp::verb::head: return 5;
    case bhttp::verb::options: return 6;
    default: return 7;
  }
}

}  // namespace

http_metrics::http_metrics(telemetry::catalog& metrics, std::size_t shards, bool enabled)
    : metrics_(metrics), enabled_(enabled), shards_(shards) {}

http_metrics::route_method& http_metrics::cell(std::size_t shard, std::uint32_t token) {
  auto& c = shards_[shard].cells[token];
  if (!c.resolved) {
    const std::size_t route = token / method_count;
    const std::string_view path = route < route_count ? route_specs[route].path_template : unmatched_route;
    const std::string_view method = method_names[token % method_count];
    c.in_progress = metrics_.http_in_progress.series({method, path});
    c.duration = metrics_.http_duration.series({method, path});
    c.request_size = metrics_.http_request_size.series({method, path});
    c.response_size = metrics_.http_response_size.series({method, path});
    c.resolved = true;
  }
  return c;
}

std::uint32_t http_metrics::started(std::size_t shard, bhttp::verb method, std::string_view target) {
  const auto path = target.substr(0, target.find('?'));
  const auto token = static_cast<std::uint32_t>(match_route(path) * method_count + method_index(method));
  if (enabled_) cell(shard, token).in_progress.inc(shard);
  return token;
}

void http_metrics::finished(std::size_t shard, std::uint32_t token, bhttp::verb /*method*/, unsigned status,
                            std::size_t request_bytes, std::size_t response_bytes,
                            std::chrono::steady_clock::duration elapsed, std::string_view trace_id) {
  if (!enabled_) return;
  auto& c = cell(shard, token);
  c.in_progress.dec(shard);
  const double seconds = std::chrono::duration<double>(elapsed).count();
  if (trace_id.empty()) {
    c.duration.observe(shard, seconds);
  } else {
    c.duration.observe(shard, seconds, trace_id);  // the bucket's exemplar (OpenMetrics)
  }
  c.request_size.observe(shard, static_cast<double>(request_bytes));
  c.response_size.observe(shard, static_cast<double>(response_bytes));

  const std::uint32_t key = token << 10 | (status & 0x3ff);
  auto& by_status = shards_[shard].requests;
  auto it = by_status.find(key);
  if (it == by_status.end()) {
    const std::size_t route = token / method_count;
    const std::string_view path = route < route_count ? route_specs[route].path_template : unmatched_route;
    const std::string code = std::to_string(status);
    it = by_status.emplace(key, metrics_.http_requests.series({method_names[token % method_count], path, code})).first;
  }
  it->second.inc(shard);
}

}  // namespace gatewayz::gateway
