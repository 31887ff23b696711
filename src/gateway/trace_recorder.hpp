#pragma once
// The request observer that turns a sampled request into OpenTelemetry
// spans: one SERVER span for the inbound request ("POST /v1/chat/completions")
// and one CLIENT span per provider attempt ("chat gpt-4o", GenAI semantic
// conventions), parented to it, so a failover shows as one server span with
// several client spans, the failed ones with error status; the response
// cache's lookup and store are a span each ("cache lookup", "cache store":
// INTERNAL, or CLIENT with db.* attributes for Redis). Attribute names
// are a contract with the dashboards (Tempo's span metrics group by
// service.name, span name, gen_ai.request.model, gen_ai.system,
// http.status_code, http.route, error.type, gen_ai.response.finish_reason,
// customer.id). Prompts, completions and API keys never go into a span.
//
// Spans are built on the shard thread when the attempt or request ends and
// handed to the batch exporter's per-shard queue (never blocks; a full queue
// drops and counts). Unsampled requests cost nothing here.

#include <string>
#include <vector>

#include "gateway/request_record.hpp"
#include "providers/runtime.hpp"
#include "tracing/exporter.hpp"

namespace gatewayz::gateway {

class trace_recorder final : public request_observer {
 public:
  // `providers`: one runtime per config provider, in order (server.address/port, kind).
  trace_recorder(tracing::batch_exporter& exporter, std::span<const providers::provider_runtime> providers);

  void on_attempt(std::size_t shard, const request_record& request, const attempt_record& attempt) noexcept override;
  void on_request(std::size_t shard, const request_record& request) noexcept override;

 private:
  struct provider_info {
    std::string name;
    std::string system;  // gen_ai.system / gen_ai.provider.name: openai, anthropic
    std::string address;
    std::int64_t port = 0;
  };
  tracing::batch_exporter& exporter_;
  std::vector<provider_info> providers_;
};

}  // namespace gatewayz::gateway
