#pragma once
// A simulated LLM provider speaking OpenAI's and Anthropic's wire formats.
//
// It is the demo provider of the embedded default config, the upstream of the
// integration tests and the target of the benchmarks. Latency, time to first
// token, token rate, error rate and failure modes are configurable at start,
// at run time (PUT /_mock/behaviour) and per request (x-mock-* headers).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/server.hpp"

namespace gatewayz::mock {

enum class failure_mode : std::uint8_t {
  http_500,          // 500 with an OpenAI-shaped error body
  http_429,          // 429 with Retry-After
  hang,              // accept the request and never answer
  reset_mid_stream,  // start answering, then reset the connection
  malformed_body,    // 200 with a body that is not valid JSON / SSE
};

// The names used by the control API, the x-mock-failure header and the CLI:
// "500", "429", "hang", "reset", "malformed". parse_failure_mode also accepts
// the enumerator names ("http_500", "reset_mid_stream", ...). Returns false
// and leaves `out` untouched for anything else.
bool parse_failure_mode(std::string_view text, failure_mode& out);
std::string_view to_string(failure_mode mode);

struct behaviour {
  double latency_ms = 0;    // delay before a non-streaming answer (and before stream headers)
  double ttft_ms = 0;       // streaming: delay from headers to the first token
  double tokens_per_s = 0;  // streaming: token rate after the first; 0 = as fast as possible
  int output_tokens = 16;   // tokens generated when the request sets no max_tokens
  double error_rate = 0;    // fraction of requests that fail with `failure`
  failure_mode failure = failure_mode::http_500;
  std::string fixed_body;  // non-empty: every non-streaming chat answer is exactly these bytes (benchmarks)
};

struct recorded_request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string body;                                          // at most max_recorded_body_bytes
  bool body_truncated = false;                               // the request body was longer than what is kept

  // Bounds the memory the last 256 recorded requests can hold.
  static constexpr std::size_t max_recorded_body_bytes = 256 * 1024;
};

struct mock_stats {
  std::uint64_t requests = 0;   // all requests outside the /_mock/ control API
  std::uint64_t failures = 0;   // requests answered with a simulated failure
  std::uint64_t cancelled = 0;  // responses abandoned because the client went away
  std::uint64_t streams_completed = 0;
};

struct mock_options {
  http::server_options server;  // listen address, threads, optional TLS
  behaviour initial;
  std::optional<std::string> port_file;  // write the bound port here once listening
  // Non-empty: OpenAI paths require `Authorization: Bearer <key>` and
  // /v1/messages requires `x-api-key: <key>` (which Anthropic always demands).
  std::string required_api_key;
  // Listed by GET /v1/models. Any model name is accepted and echoed anyway.
  std::vector<std::string> models = {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "claude-3-5-haiku-latest",
                                     "claude-3-5-sonnet-latest"};
  // How long stop() / a signal lets in-flight requests and streams finish.
  std::chrono::milliseconds shutdown_grace{2000};
};

// Runs a mock provider on background threads (for in-process tests) or in the
// foreground (the `gatewayz mock-provider` command).
//
// API paths: POST /v1/chat/completions, /v1/completions, /v1/embeddings,
// /v1/messages (Anthropic; needs x-api-key and anthropic-version), GET
// /v1/models[/<id>]. Generated text is "tok0 tok1 ... tok<n-1>" with n =
// max_tokens / max_completion_tokens if the request sets it (finish_reason
// "length", stop_reason "max_tokens") else behaviour.output_tokens ("stop",
// "end_turn"). Simulated failures apply to the POST paths only.
//
// Per-request headers override the behaviour: x-mock-failure
// (none|500|429|hang|reset|malformed), x-mock-latency-ms, x-mock-ttft-ms,
// x-mock-tokens-per-s, x-mock-output-tokens.
//
// Control API (no auth, not counted or recorded): GET|PUT /_mock/behaviour
// (PUT merges the JSON members given), GET /_mock/stats, GET|DELETE
// /_mock/requests.
class mock_provider {
 public:
  explicit mock_provider(mock_options options);
  ~mock_provider();  // stops if running

  void start();  // listen and serve on background threads; returns once listening
  void run();    // listen and serve on the calling thread until stop() / SIGINT / SIGTERM
  // Graceful: in-flight requests get shutdown_grace to finish. After start()
  // it also joins the threads; with run() it makes run() return. Idempotent;
  // the provider can be started again afterwards (stats are kept).
  void stop();

  std::uint16_t port() const;

  void set_behaviour(const behaviour& b);
  behaviour current_behaviour() const;
  mock_stats stats() const;
  std::vector<recorded_request> recent_requests() const;  // newest last, bounded
  void clear_recorded();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace gatewayz::mock
