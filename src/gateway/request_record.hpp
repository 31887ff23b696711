#pragma once
// What one proxied request came to, recorded once and read by every consumer.
//
// The failover loop runs attempts; each fills an attempt_record. Accounting
// (accounting.hpp) owns the request_record, fills its outcome once when the
// request ends, and hands both to the request observers: the metrics recorder,
// the ledger recorder and any sink added later (logs, traces, the cache). A
// new consumer is one more observer; the failover loop does not change.
//
// Records live on the request's coroutine frame and are valid only during
// the observer call; views point into the request, the config or the route
// table. Observers run on the shard thread that served the request and must
// not block (anything slow is queued for a background thread).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "gateway/model_routes.hpp"
#include "providers/provider.hpp"
#include "tracing/request_trace.hpp"

namespace gatewayz::gateway {

using steady_clock = std::chrono::steady_clock;

// What one upstream attempt came to, for failover decisions.
enum class attempt_outcome : std::uint8_t {
  served,       // the client got a response (success or a non-retryable upstream error)
  retryable,    // failed before anything reached the client; another provider may serve it
  client_gone,  // the client disconnected; stop
};

// What the response cache did for a request (gateway/response_caching.hpp).
enum class cache_result : std::uint8_t {
  none,     // not cacheable (cache off, another operation or model, `x-gatewayz-cache: off`)
  miss,     // looked up, not found (or the cache was unavailable): served by a provider
  hit,      // served from the cache: no provider was called
  refresh,  // `x-gatewayz-cache: refresh`: served by a provider, the cached answer replaced
};

std::string_view to_string(cache_result result);

// One step of the response cache (its lookup, or the store of the answer),
// for its span; `started` zero when the step did not happen.
struct cache_step {
  steady_clock::time_point started{};
  steady_clock::time_point finished{};
  std::string_view outcome;  // a lookup's: hit, miss or unavailable
  std::string_view backend;  // a lookup's: the store that answered it ("memory" or "redis")
  bool happened() const { return started != steady_clock::time_point{}; }
};

struct attempt_record {
  const route_target* target = nullptr;  // the provider and model tried
  unsigned number = 0;                   // 1 for the first attempt of the request
  // The attempt before this one in the same request, which failed and moved
  // the request here (a failover from it); null for a first attempt.
  const route_target* failed_over_from = nullptr;
  attempt_outcome outcome = attempt_outcome::retryable;
  unsigned upstream_status = 0;                            // the provider's HTTP status; 0 if none arrived
  unsigned client_status = 0;                              // what the client was sent (when served)
  std::string_view error_type;                             // low-cardinality failure name; empty on success
  bool provider_failure = false;                           // counts against the provider's health
  bool in_band_error = false;                              // a stream that ended with an error event
  steady_clock::time_point sent_at{};                      // zero when nothing was sent
  std::optional<steady_clock::duration> ttfb;              // request sent -> response headers
  steady_clock::duration upstream_wait{};                  // time spent waiting on the provider
  std::optional<steady_clock::time_point> first_chunk_at;  // first bytes to the client (streams)
  std::optional<steady_clock::time_point> last_chunk_at;
  steady_clock::time_point started{};  // the attempt began (before its request was built)
  steady_clock::time_point finished{};
  providers::token_usage usage;
  providers::response_summary response;  // what the provider said about its answer
  // The attempt's CLIENT span id, sent upstream in traceparent; all zero
  // when tracing is off.
  tracing::span_id span;
};

struct request_record {
  // Known when the request is accepted.
  std::string_view request_id;  // as in x-request-id (the client's own when it sent one)
  providers::operation op = providers::operation::chat_completions;
  std::string_view model;  // as the client asked
  std::string_view body;   // the client's JSON, verbatim (prompts: only logging.log_content reads it)
  bool streamed = false;
  std::optional<std::int64_t> customer_id;  // with auth.mode keys
  std::optional<std::int64_t> key_id;
  steady_clock::time_point received_at{};
  // The request's trace context when tracing sampled it: lower-case hex of
  // 32 and 16 characters, the server span's ids; empty otherwise. Set before
  // the first attempt, so every log line of the request can carry them.
  std::string_view trace_id;
  std::string_view span_id;
  // The whole trace context when tracing is on (sampled or not); null otherwise.
  const tracing::request_trace* trace = nullptr;
  // The request as the client sent it (body and its scan), for sinks that
  // read request parameters; valid during observer calls.
  const providers::inbound_request* inbound = nullptr;
  std::string_view path;  // the request's target path

  // Filled once when the request ends.
  unsigned attempts = 0;
  const attempt_record* last_attempt = nullptr;  // null when no provider was tried
  std::string_view provider;                     // of the last attempt; "cache" on a hit; empty if none
  unsigned http_status = 0;                      // what the client got (499: client went away)
  cache_result cache = cache_result::none;
  // "memory" or "redis" when the cache took part: the store that answered the
  // lookup (a local-tier hit in redis mode is "memory"), else the backend.
  std::string_view cache_backend;
  cache_step cache_lookup;
  cache_step cache_store;
  // The answer's tokens: the last attempt's, or the cached answer's on a hit.
  providers::token_usage usage;
  bool success = false;         // a 2xx answer, and for streams no in-band error
  std::int64_t cost_nanos = 0;  // 1e-9 USD, from the config's prices
  double latency_s = 0.0;
  std::optional<double> time_to_first_chunk_s;  // streams only
  steady_clock::duration upstream_wait{};       // summed over attempts
  // Set only when some observer needs them (wants_identity): the wall-clock
  // arrival and the ledger's key, unique per request even when a client
  // reuses its X-Request-ID ("<client id>#<gateway id>" then).
  std::chrono::system_clock::time_point received_wall{};
  std::string_view ledger_id;
};

// A request the gateway answered itself: refused before any provider was
// tried (bad route, bad key, invalid body, unknown model, no credit, ledger
// backlog) or served locally (/health, /metrics, /v1/models, the admin API).
struct exchange_record {
  std::string_view request_id;
  std::string_view method;
  std::string_view route;  // the route template ("/admin/keys/{id}"), or "unmatched"
  unsigned http_status = 0;
  // For a refusal: the api_error's type and code; empty when served.
  std::string_view error_type;
  std::string_view error_code;
  std::string_view model;                   // when the body named one
  std::optional<std::int64_t> customer_id;  // when the key was valid
  steady_clock::time_point received_at{};
};

class request_observer {
 public:
  virtual ~request_observer() = default;
  // Whether on_request needs received_wall and ledger_id (two clock reads and,
  // for client-chosen ids, a string built per request).
  virtual bool wants_identity() const { return false; }
  // An attempt ended (before the next one starts).
  virtual void on_attempt(std::size_t shard, const request_record& request, const attempt_record& attempt) noexcept {
    (void)shard, (void)request, (void)attempt;
  }
  // The request ended, whichever way (served, refused, client gone).
  virtual void on_request(std::size_t shard, const request_record& request) noexcept = 0;
  // A request that never reached the failover loop's accounting (above).
  virtual void on_exchange(std::size_t shard, const exchange_record& exchange) noexcept { (void)shard, (void)exchange; }
};

}  // namespace gatewayz::gateway
