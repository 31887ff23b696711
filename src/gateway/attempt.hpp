#pragma once
// One upstream attempt: send the request to one provider and relay its answer
// to the client, whole or as an SSE stream translated event by event.
//
// The attempt decides nothing about failover; it reports what happened in
// `record` (status, error type, timings, usage) and returns whether another
// provider may still serve the request (nothing reached the client yet).
// Runs on the shard thread of its request; everything it refers to outlives
// the co_await of run().

#include <array>
#include <chrono>
#include <span>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "core/api_error.hpp"
#include "gateway/request_record.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "providers/provider.hpp"

namespace gatewayz::gateway {

struct attempt {
  const config::provider_config& provider;
  const providers::provider_adapter& adapter;
  http::upstream_pool& pool;
  const providers::inbound_request& request;
  const route_target& target;
  http::request_context& ctx;
  std::string_view request_id;
  steady_clock::time_point deadline;
  attempt_record& record;
  api_error last_error{};  // set when the attempt did not serve the client (or served an upstream error)
  // Trace context sent upstream (empty: none), and whether to read the
  // answer's id, model and finish reasons into record.response (a traced attempt).
  std::string_view traceparent{};
  std::string_view tracestate{};
  bool summarize = false;
  // Sent as x-gatewayz-cache on the answer when set ("miss", "refresh").
  std::string_view cache_header{};
  // When set, called with a whole successful non-streamed answer (as the
  // client gets it) just before it is sent, for the response cache: stored
  // then, the answer is there for a client that asks again once it has
  // it, whichever shard serves the second request.
  using answer_hook = void (*)(void* context, std::string_view answer);
  answer_hook before_send = nullptr;
  void* before_send_context = nullptr;

  boost::asio::awaitable<attempt_outcome> run();

 private:
  class stream_relay;

  // Builds the upstream request; false (last_error set) when the provider
  // cannot express it.
  bool build(providers::upstream_request& built, http::outgoing_request& out);
  // The outcome of a transport failure, with last_error and the record set.
  attempt_outcome failed(http::upstream_failure failure);
  // A non-2xx answer: passed on (4xx) or failed over (5xx, 429, 3xx).
  boost::asio::awaitable<attempt_outcome> relay_error_status(http::upstream_exchange& exchange, unsigned status);
  // A streamed answer, translated event by event. Headers go to the client
  // with the first translated bytes; a failure before them can fail over, a
  // failure after them is reported in-band as an error event.
  boost::asio::awaitable<attempt_outcome> stream_response(http::upstream_exchange& exchange);
  // The fields of every answer an attempt gives the client (the first
  // `count`; the cache's only when it took part).
  struct answer_field_list {
    std::array<http::header_ref, 4> fields;
    std::size_t count = 3;
    std::span<const http::header_ref> view() const { return {fields.data(), count}; }
  };
  answer_field_list answer_fields(std::string_view content_type) const {
    answer_field_list out{{http::header_ref{"Content-Type", content_type}, http::header_ref{"x-request-id", request_id},
                           http::header_ref{"x-gatewayz-provider", provider.name},
                           http::header_ref{"x-gatewayz-cache", cache_header}}};
    if (!cache_header.empty()) out.count = 4;
    return out;
  }
  http::response_head head(unsigned status, std::string_view content_type) const;
};

// Whether an upstream status says the provider is unwell (5xx, 429), so
// another provider may serve the request; other 4xx are the client's and
// are passed on as they are.
bool retryable_status(unsigned status);

}  // namespace gatewayz::gateway
