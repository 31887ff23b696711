#pragma once
// The gateway's typed configuration. A YAML file is parsed once at start into
// these immutable structs; nothing on the request path reads YAML.
//
// Keys are a stable contract: add, never rename. Unknown keys are errors, and
// every error names the YAML path it concerns (e.g. "providers[1].models[0].id").
// "${VAR}" anywhere in a scalar is replaced by the environment variable VAR
// ("${VAR:-default}" gives a default); a reference to an unset variable with no
// default is an error.
//
// Expansion rules, kept deliberately small so a config file means one thing:
//  - VAR is [A-Za-z_][A-Za-z0-9_]*; a scalar may hold several references.
//  - "${VAR:-default}" uses default when VAR is unset *or empty* (as in sh);
//    "${VAR}" with VAR set to "" expands to "".
//  - The default is literal text up to the first '}'; nesting is an error.
//  - Only "${" starts a reference: a lone '$' and "$$" are ordinary text.
//  - Expanded text is never re-scanned, so a variable's value cannot inject
//    further references. Mapping keys are not expanded (they are the schema).
//
// A mapping or list whose entries are all commented out (a null value) keeps
// its defaults; a scalar key with no value is an error, since it is usually an
// unfinished edit. Error messages never contain the values of api_key,
// admin_key, read_token, headers, storage.url, metrics.bearer_token or
// logging.loki.url and headers.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gatewayz::config {

struct server_config {
  std::string listen = "127.0.0.1:8080";  // "host:port"; IPv6 as "[::1]:8080"
  std::string host = "127.0.0.1";         // derived from listen
  std::uint16_t port = 8080;              // derived from listen; 0 = OS picks
  unsigned threads = 0;                   // 0 = one per core
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_connections = 10000;  // whole process
  // Per client address; 0 = max_connections / 4 (at least 1).
  std::size_t max_connections_per_ip = 0;
  double header_timeout_s = 10;          // time to receive a request's headers
  double body_timeout_s = 30;            // time to receive a request's body
  double idle_timeout_s = 75;            // keep-alive idle connection lifetime
  double request_timeout_s = 600;        // overall deadline of one request, failover included
  double shutdown_grace_s = 30;          // SIGTERM: in-flight work gets this long
  unsigned max_attempts = 3;             // upstream attempts per request (failover)
  std::optional<std::string> port_file;  // write the bound port here once listening (tests)
};

struct auth_config {
  std::string mode = "none";    // none | keys
  std::string admin_key;        // secret: required with mode keys; guards the admin API (without it,
                                // /admin/* is served only on a loopback listen address)
  std::string read_token;       // secret: with mode keys, opens /models/stats and /health/dashboard
                                // (as the admin key also does); empty: the admin key only
  double key_cache_ttl_s = 30;  // a revoked key is refused within this long
  // Output tokens reserved against a customer's credit while a request that
  // sets no max_tokens runs (per model: models[].reserve_output_tokens).
  std::uint32_t reserve_output_tokens = 4096;
};

// Provider health: rolling windows and the background monitor.
struct health_config {
  double window_s = 300;          // rolling window for availability, error rate, latency
  double interval_s = 30;         // monitor period
  double dashboard_cache_s = 30;  // GET /health/dashboard is recomputed at most this often
  // true: request-history windows and breaker openings are shared through
  // Redis (redis.url required), so instances behind one load balancer agree
  // within one interval_s; false: each process keeps its own.
  bool shared = false;
};

// Redis: the response cache (cache.mode redis) and shared health.
struct redis_config {
  std::string url;       // redis://[[user]:password@]host[:port][/db] (secret: never logged); empty = no Redis
  int timeout_ms = 100;  // per command, connect included: the most Redis can delay anything
  int pool_size = 2;     // connections per server thread
};

struct circuit_breaker_config {
  unsigned failure_threshold = 5;     // consecutive failures that open it
  double error_rate_threshold = 0.5;  // or this error rate ...
  unsigned min_requests = 10;         // ... over at least this many requests in the window
  double open_s = 60;                 // cool-down before half-open
  unsigned half_open_requests = 2;    // trial requests; all must succeed to close
  double max_open_s = 600;            // the cool-down doubles on each reopen up to this
};

// Customers, keys, credits and the usage ledger.
struct storage_config {
  std::string url = "sqlite://./gatewayz.db";  // or postgres://user:pass@host:port/db (secret: never logged);
                                               // "none": a plain proxy: no keys, no ledger, no /models/stats
  unsigned flush_interval_ms = 200;            // ledger batch period: the most a kill -9 can lose
  std::string spill_path;                      // rows wait here while the database is down;
                                               // empty = gatewayz-ledger.spill in the working dir
  std::size_t queue_capacity = 65536;          // ledger rows queued + requests in progress per server thread
  double stats_cache_s = 30;                   // GET /models/stats is recomputed at most this often
                                               // (rounded up to whole seconds; 0 = no cache)
};

struct metrics_config {
  bool enabled = true;       // false: /metrics still answers, but the request path records nothing
  std::string bearer_token;  // secret: when set, GET /metrics requires "Authorization: Bearer <token>"
};

// Where Loki is and how log lines are batched for it.
struct loki_config {
  std::string url;                             // e.g. http://loki:3100/loki/api/v1/push; empty = no shipping
  std::string tenant_id;                       // sent as X-Scope-OrgID when set
  std::map<std::string, std::string> headers;  // secret values: extra headers on every push (auth)
  std::size_t batch_max_bytes = 1024 * 1024;   // a push is sent once its lines reach this size ...
  unsigned flush_interval_ms = 1000;           // ... or this long after its first line
  std::size_t queue_max_records = 10000;       // lines waiting for Loki; the oldest are dropped beyond it
};

// Structured logs: one line per event on stdout, and to Loki when configured.
struct logging_config {
  std::string level = "info";    // debug | info | warning | error
  std::string format = "json";   // json | text
  std::string app = "gatewayz";  // the Loki stream labels app, env, service
  std::string env = "production";
  std::string service = "gatewayz-api";
  bool log_content = false;  // true: prompts (truncated) on the access line at debug
  bool log_emails = false;   // false: e-mail addresses are redacted from every line
  loki_config loki;
};

enum class provider_kind { openai, anthropic };

struct model_config {
  std::string id;                 // what clients send as "model"
  std::string upstream;           // the name sent upstream; defaults to id
  double input_per_million = 0;   // USD per 1M input tokens
  double output_per_million = 0;  // USD per 1M output tokens
  // Output tokens reserved against the customer's credit for a request that
  // sets no max_tokens / max_completion_tokens; 0: auth.reserve_output_tokens.
  std::uint32_t reserve_output_tokens = 0;
};

struct provider_config {
  std::string name;  // the `provider` label value everywhere; "none" is reserved (/models/stats)
  provider_kind kind = provider_kind::openai;
  std::string base_url;    // e.g. https://openrouter.ai/api/v1
  std::string api_key;     // secret: never logged
  double timeout_s = 120;  // connect + first byte; also the idle gap between stream chunks
  double connect_timeout_s = 10;
  std::size_t max_idle_connections = 64;  // per thread keep-alive pool
  std::size_t max_response_bytes = 64 * 1024 * 1024;
  bool verify_tls = true;
  std::string ca_file;  // extra CA bundle (PEM) trusted for this provider
  std::string anthropic_version = "2023-06-01";
  std::map<std::string, std::string> headers;  // extra headers sent upstream
  double probe_interval_s = 0;                 // active health probe period; 0 = passive only
  std::string probe_path = "/models";          // probed as GET {base_url}{probe_path}
  std::vector<model_config> models;
};

// OpenTelemetry traces over OTLP/HTTP. The standard OTEL_* environment
// variables override these (loader_tracing.cpp lists them).
struct tracing_config {
  bool enabled = false;
  std::string otlp_endpoint = "http://localhost:4318";  // base URL; "/v1/traces" is appended
  std::string traces_endpoint;                          // used as is when set (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
  std::string protocol = "http/protobuf";               // or http/json
  bool gzip = true;                                     // compression: gzip | none
  std::string sampler = "parentbased_traceidratio";     // OTEL_TRACES_SAMPLER names
  double sample_ratio = 1.0;                            // for the ratio samplers
  std::string service_name = "gatewayz-api";
  std::string environment;                                 // deployment.environment; empty: not sent
  std::map<std::string, std::string> headers;              // secret values (e.g. authorization): never logged
  std::map<std::string, std::string> resource_attributes;  // more resource attributes (OTEL_RESOURCE_ATTRIBUTES)
  std::size_t max_queue_size = 2048;                       // OpenTelemetry BatchSpanProcessor defaults
  unsigned schedule_delay_ms = 5000;
  std::size_t max_export_batch_size = 512;
  unsigned export_timeout_ms = 30000;
};

// The response cache: exact-match answers of non-streaming chat completions
// and embeddings, replayed to later identical requests of the same customer.
struct cache_config {
  std::string mode = "off";                   // off | memory (this instance) | redis (shared; needs redis.url)
  double ttl_s = 3600;                        // how long an answer is served from the cache
  std::size_t max_bytes = 64 * 1024 * 1024;   // memory mode: the most the cache holds (least recently used go)
  std::size_t max_entry_bytes = 1024 * 1024;  // answers larger than this are not stored
  // Models whose requests are cached unless the request says
  // `x-gatewayz-cache: off`; "*" is every model. Requests for other models
  // are cached only with `x-gatewayz-cache: on`.
  std::vector<std::string> models{"*"};
  double hit_cost_fraction = 0;  // of the original answer's cost, charged for a hit (0..1)
  // redis mode: a local tier of this size in front of Redis (0: none), which
  // keeps an entry at most local_ttl_s (the staleness bound for an answer
  // refreshed on another instance). Also what cache_size_bytes shows there.
  std::size_t local_max_bytes = 16 * 1024 * 1024;
  double local_ttl_s = 60;
};

struct gateway_config {
  server_config server;
  auth_config auth;
  health_config health;
  circuit_breaker_config circuit_breaker;
  storage_config storage;
  redis_config redis;
  metrics_config metrics;
  logging_config logging;
  tracing_config tracing;
  cache_config cache;
  std::vector<provider_config> providers;
};

struct config_error {
  std::string path;  // YAML path, e.g. "providers[0].kind"; empty for the
                     // document as a whole (unreadable file, YAML syntax)
  std::string message;
};

struct load_result {
  std::optional<gateway_config> config;  // set when errors is empty
  std::vector<config_error> errors;
};

// Looks up an environment variable; nullopt when unset.
using env_lookup = std::function<std::optional<std::string>(std::string_view)>;

// The process environment.
env_lookup process_env();

// All errors are collected (loading never stops at the first). An empty `env`
// function means no variable is set. Relative ca_file paths are resolved
// against the working directory.
load_result load_config_string(std::string_view yaml, const env_lookup& env);
load_result load_config_file(const std::string& path, const env_lookup& env);

// Parses "host:port" ("[::1]:8080" for IPv6; the host must be an IP literal)
// into server.listen/host/port, so a command-line override is validated exactly
// like the file. Returns why it is malformed, leaving `server` unchanged.
std::optional<std::string> set_listen(server_config& server, std::string_view listen);

// "providers[0].kind: must be one of openai, anthropic (got \"foo\")" lines,
// one per error, each ending in '\n'; errors without a path print the message only.
std::string format_errors(const std::vector<config_error>& errors);

}  // namespace gatewayz::config
