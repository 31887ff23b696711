#pragma once
// The gateway's URL space: one table of {template, methods, access, handler}.
//
// A request's path is matched once, by the server's exchange observer
// (http_metrics) before any handler runs; the index it finds is both the
// `path` label of the HTTP metrics and the router's dispatch key, and 405's
// Allow header is written from the same entry. A template is literal
// segments and "{name}" parameters that match one non-empty segment.
//
// Immutable after construction; shared by every shard without locks.

#include <cstddef>
#include <cstdint>
#include <ostream>  // Boost's string_view streams itself; verb.hpp alone does not include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/verb.hpp>

namespace gatewayz::gateway {

// Methods as a bit set.
enum class method_set : std::uint8_t { get = 1, post = 2, get_post = 3 };

// What a caller must present before the handler runs.
enum class access : std::uint8_t {
  open,     // anyone (health, metrics: the metrics endpoint checks its own bearer token)
  api_key,  // a customer key when auth.mode is keys
  // Operational read-outs (traffic, cost, provider health): with auth.mode
  // keys the admin key or auth.read_token; anyone otherwise.
  reader,
  // The admin key (auth.admin_key). Without one configured, served only when
  // the listen address is loopback; 403 otherwise.
  admin,
};

// The routes the gateway serves, in match order. Their templates are the
// `path` label values of the HTTP metrics.
enum class route_id : std::uint8_t {
  chat_completions,
  completions,
  embeddings,
  models,
  metrics,
  health,
  health_dashboard,
  models_stats,
  circuit_breakers,
  circuit_breaker_reset,
  customers,
  customer_credit,
  keys,
  key_revoke,
};

struct route_spec {
  route_id id;
  std::string_view path_template;
  method_set methods;
  access required;
};

inline constexpr route_spec route_specs[] = {
    {route_id::chat_completions, "/v1/chat/completions", method_set::post, access::api_key},
    {route_id::completions, "/v1/completions", method_set::post, access::api_key},
    {route_id::embeddings, "/v1/embeddings", method_set::post, access::api_key},
    {route_id::models, "/v1/models", method_set::get, access::api_key},
    {route_id::metrics, "/metrics", method_set::get, access::open},
    {route_id::health, "/health", method_set::get, access::open},
    {route_id::health_dashboard, "/health/dashboard", method_set::get, access::reader},
    {route_id::models_stats, "/models/stats", method_set::get, access::reader},
    {route_id::circuit_breakers, "/admin/circuit-breakers", method_set::get, access::admin},
    {route_id::circuit_breaker_reset, "/admin/circuit-breakers/{provider}/reset", method_set::post, access::admin},
    {route_id::customers, "/admin/customers", method_set::get_post, access::admin},
    {route_id::customer_credit, "/admin/customers/{name}/credit", method_set::post, access::admin},
    {route_id::keys, "/admin/keys", method_set::get_post, access::admin},
    {route_id::key_revoke, "/admin/keys/{id}/revoke", method_set::post, access::admin},
};
inline constexpr std::size_t route_count = std::size(route_specs);
inline constexpr std::string_view unmatched_route = "unmatched";

// The index into route_specs of the route `path` (no query) matches, or
// route_count when none does.
std::size_t match_route(std::string_view path);

// Does `method` belong to `set`?
bool allows(method_set set, boost::beast::http::verb method);

// The Allow header of a 405: "GET", "POST" or "GET, POST".
std::string_view allow_header(method_set set);

// The value of the template's one "{name}" parameter in `path` (which
// matched it); empty when the template has none.
std::string_view path_parameter(std::string_view path_template, std::string_view path);

}  // namespace gatewayz::gateway
