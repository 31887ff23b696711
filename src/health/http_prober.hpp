#pragma once
// Active provider probes over the project's upstream client, and the mapping
// of the client's transport failures to health outcomes. (Target
// gw_health_http: the health core does not depend on the HTTP client.)
//
// A probe is `GET {base_url}{probe_path}` (default /models: cheap, and it
// needs a valid key) with the provider's own authentication headers, built by
// the provider's adapter exactly as for real requests (openai: Authorization:
// Bearer; anthropic: x-api-key + anthropic-version; plus configured extra
// headers). A 2xx answer read completely within probe_timeout_s is a success;
// anything else (connect error, timeout, 401 for a revoked key, 404, 5xx) is
// a failure.

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "health/health.hpp"
#include "http/client.hpp"
#include "providers/runtime.hpp"

namespace gatewayz::health {

// connect, timeout, closed, protocol → failure; cancelled → cancelled;
// too_large → client_error (the answer exceeded what the gateway relays,
// which says nothing about the provider being up); none → success.
outcome classify_failure(http::upstream_failure failure);

// The headers of a probe for `provider` (authentication and configured extra
// headers from its adapter; no content-type, accept: application/json).
std::vector<std::pair<std::string, std::string>> probe_headers(const providers::provider_runtime& provider);

// Runs probes on its own io_context, on the thread that calls probe() (the
// monitor thread): one keep-alive pool per probed provider, all due probes
// concurrently. stop() may be called from any thread.
class http_prober final : public prober {
 public:
  // providers[i] is the same provider as opts.providers[i] (endpoint,
  // adapter, TLS settings; shared with the gateway's pools); only those with
  // probe_interval_s > 0 get a pool. Throws std::invalid_argument when the
  // two lists differ in length.
  http_prober(std::span<const providers::provider_runtime> providers, const options& opts);
  ~http_prober() override;

  std::vector<probe_result> probe(std::span<const std::size_t> providers) override;
  void stop() override;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace gatewayz::health
