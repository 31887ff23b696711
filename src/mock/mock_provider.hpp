#pragma once
// A simulated LLM provider speaking OpenAI's and Anthropic's wire formats.
//
// It is the demo provider of the embedded default config, the upstream of the
// integration tests and the target of the benchmarks. Latency, time to first
// token, token rate, error rate and failure modes are configurable at start,
// at run time (PUT /_mock/behaviour) and per request (x-mock-* headers).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
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

struct behaviour {
  double latency_ms = 0;        // delay before a non-streaming answer (and before stream headers)
  double ttft_ms = 0;           // streaming: delay from headers to the first token
  double tokens_per_s = 0;      // streaming: token rate after the first; 0 = as fast as possible
  int output_tokens = 16;       // tokens generated when the request sets no max_tokens
  double error_rate = 0;        // fraction of requests that fail with `failure`
  failure_mode failure = failure_mode::http_500;
  std::string fixed_body;       // non-empty: every non-streaming chat answer is exactly these bytes (benchmarks)
};

struct recorded_request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string body;
};

struct mock_stats {
  std::uint64_t requests = 0;   // all requests to the API paths
  std::uint64_t failures = 0;   // requests answered with a simulated failure
  std::uint64_t cancelled = 0;  // responses abandoned because the client went away
  std::uint64_t streams_completed = 0;
};

struct mock_options {
  http::server_options server;  // listen address, threads, optional TLS
  behaviour initial;
  std::optional<std::string> port_file;  // write the bound port here once listening
};

// Runs a mock provider on background threads (for in-process tests) or in the
// foreground (the `gatewayz mock-provider` command).
class mock_provider {
 public:
  explicit mock_provider(mock_options options);
  ~mock_provider();  // stops if running

  void start();  // listen and serve on background threads; returns once listening
  void run();    // listen and serve on the calling thread until stop() / a signal
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
