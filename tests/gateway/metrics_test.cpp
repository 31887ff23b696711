// GET /metrics end to end: known traffic through the gateway, then the
// scraped text is checked sample by sample against what was sent, and the
// real output is validated by promtool.

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <thread>

#include "harness.hpp"
#include "support/gunzip.hpp"

namespace gatewayz::test {
namespace {

// The value of the sample whose name and labels are exactly `series`
// (e.g. `tokens_used_total{model="m",provider="p"}`), if present.
std::optional<double> sample(const std::string& text, std::string_view series) {
  std::size_t pos = 0;
  while ((pos = text.find(series, pos)) != std::string::npos) {
    const bool line_start = pos == 0 || text[pos - 1] == '\n';
    const std::size_t after = pos + series.size();
    if (line_start && after < text.size() && text[after] == ' ') {
      const auto end = text.find('\n', after);
      return std::stod(text.substr(after + 1, end - after - 1));
    }
    pos = after;
  }
  return std::nullopt;
}

double value_of(const std::string& text, std::string_view series) {
  const auto v = sample(text, series);
  EXPECT_TRUE(v.has_value()) << "no sample " << series;
  return v.value_or(-1);
}

// Lines of the text that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, std::string_view prefix) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto end = std::min(text.find('\n', pos), text.size());
    const std::string_view line(text.data() + pos, end - pos);
    if (line.starts_with(prefix)) out.emplace_back(line);
    pos = end + 1;
  }
  return out;
}

std::int64_t usage_of(const reply& r, std::string_view field) { return r.json().at("usage").at(field).as_int64(); }

class MetricsTest : public GatewayTest {
 protected:
  // alpha serves gpt-4o-mini at $2 / $8 per million tokens.
  config::gateway_config priced(const mock::mock_provider& m) {
    auto cfg = one_provider(m);
    cfg.providers[0].models[0].input_per_million = 2.0;
    cfg.providers[0].models[0].output_per_million = 8.0;
    return cfg;
  }
  std::string scrape(const header_list& headers = {}) { return settled_metrics(port(), headers); }
};

TEST_F(MetricsTest, PrometheusTextWithExactContentTypeAndEveryGuideFamily) {
  auto& m = add_mock();
  start_gateway(priced(m));
  const auto r = get("/metrics");
  ASSERT_EQ(r.status, 200U);
  EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  for (const char* family : {"fastapi_requests_total",
                             "fastapi_requests_duration_seconds",
                             "fastapi_requests_in_progress",
                             "fastapi_request_size_bytes",
                             "fastapi_response_size_bytes",
                             "model_inference_requests_total",
                             "model_inference_duration_seconds",
                             "tokens_used_total",
                             "credits_used_total",
                             "provider_availability",
                             "provider_error_rate",
                             "provider_response_time_seconds",
                             "gatewayz_provider_health_score",
                             "gatewayz_circuit_breaker_state",
                             "gatewayz_cost_by_provider_total",
                             "database_queries_total",
                             "database_query_duration_seconds",
                             "cache_hits_total",
                             "cache_misses_total",
                             "cache_size_bytes",
                             "gatewayz_api_key_cache_hits_total",
                             "gatewayz_api_key_cache_misses_total",
                             "backend_ttfb_seconds",
                             "streaming_duration_seconds",
                             "time_to_first_chunk_seconds",
                             "gatewayz_redis_operations_total",
                             "gatewayz_redis_operation_duration_seconds",
                             "gatewayz_redis_pool_connections",
                             "gen_ai_client_operation_duration_seconds",
                             "gen_ai_client_token_usage",
                             "gatewayz_overhead_seconds",
                             "process_resident_memory_bytes",
                             "process_cpu_seconds_total",
                             "process_start_time_seconds",
                             "process_open_fds"}) {
    std::string type_prefix = std::string("# TYPE ") + family + " ";
    if (std::string_view(family).ends_with("_total")) {
      // Prometheus text names a counter's TYPE line with the full sample name.
      type_prefix = std::string("# TYPE ") + family + " counter";
    }
    EXPECT_EQ(lines_starting(r.body, type_prefix).size(), 1U) << family;
  }
  EXPECT_EQ(value_of(r.body, "gatewayz_build_info{version=\"" GATEWAYZ_TEST_VERSION "\"}"), 1.0);
  EXPECT_GT(value_of(r.body, "process_resident_memory_bytes"), 1e6);
}

TEST_F(MetricsTest, InferenceTokensAndCostEqualTheTrafficSent) {
  auto& m = add_mock();
  start_gateway(priced(m));
  std::int64_t input = 0;
  std::int64_t output = 0;
  for (int i = 0; i < 3; ++i) {
    const auto r = post("/v1/chat/completions", chat_body);
    ASSERT_EQ(r.status, 200U) << r.body;
    input += usage_of(r, "prompt_tokens");
    output += usage_of(r, "completion_tokens");
  }
  // A stream whose usage the client did not ask for: the gateway still counts it.
  {
    sse_client s(port());
    ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
    ASSERT_EQ(s.status(), 200U);
    const auto events = s.rest();
    ASSERT_FALSE(events.empty());
    ASSERT_TRUE(s.complete());
  }

  const auto text = scrape();
  EXPECT_EQ(value_of(text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="alpha",status="success"})"),
            4);
  EXPECT_FALSE(sample(text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="alpha",status="error"})")
                   .value_or(0) > 0);
  EXPECT_EQ(value_of(text, R"(model_inference_duration_seconds_count{model="gpt-4o-mini",provider="alpha"})"), 4);
  EXPECT_EQ(value_of(text, R"(provider_response_time_seconds_count{provider="alpha"})"), 4);
  EXPECT_EQ(value_of(text, "backend_ttfb_seconds_count"), 4);
  EXPECT_EQ(value_of(text, R"(time_to_first_chunk_seconds_count{model="gpt-4o-mini",provider="alpha"})"), 1);
  EXPECT_EQ(value_of(text, "streaming_duration_seconds_count"), 1);

  // tokens_used_total carries token_type; no series without it, and no second family.
  EXPECT_FALSE(sample(text, R"(tokens_used_total{model="gpt-4o-mini",provider="alpha"})"));
  EXPECT_EQ(lines_starting(text, "gatewayz_tokens_total").size(), 0U);
  const double in_tokens =
      value_of(text, R"(tokens_used_total{model="gpt-4o-mini",provider="alpha",token_type="input"})");
  const double out_tokens =
      value_of(text, R"(tokens_used_total{model="gpt-4o-mini",provider="alpha",token_type="output"})");
  // The three plain responses are known exactly; the stream adds its own usage.
  EXPECT_GT(in_tokens, static_cast<double>(input));
  EXPECT_GT(out_tokens, static_cast<double>(output));
  const double expected_cost = (in_tokens * 2.0 + out_tokens * 8.0) / 1e6;
  EXPECT_NEAR(value_of(text, R"(gatewayz_cost_by_provider_total{provider="alpha"})"), expected_cost, 1e-12);
  EXPECT_NEAR(value_of(text, R"(credits_used_total{model="gpt-4o-mini",provider="alpha"})"), expected_cost, 1e-12);

  // GenAI conventions: one token-usage record per call and token type.
  EXPECT_EQ(
      value_of(
          text,
          R"(gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_provider_name="alpha",gen_ai_request_model="gpt-4o-mini",gen_ai_token_type="input"})"),
      4);
  EXPECT_EQ(
      value_of(
          text,
          R"(gen_ai_client_token_usage_sum{gen_ai_operation_name="chat",gen_ai_provider_name="alpha",gen_ai_request_model="gpt-4o-mini",gen_ai_token_type="output"})"),
      out_tokens);
  EXPECT_EQ(
      value_of(
          text,
          R"(gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="alpha",gen_ai_request_model="gpt-4o-mini",error_type=""})"),
      4);
  EXPECT_EQ(value_of(text, R"(gatewayz_overhead_seconds_count{path="/v1/chat/completions"})"), 4);
}

TEST_F(MetricsTest, ErrorsAndFailoverAreCountedPerProvider) {
  auto& bad = add_mock();
  auto& good = add_mock();
  set_failure(bad, mock::failure_mode::http_500);
  start_gateway(two_providers(url_of(bad), url_of(good)));
  for (int i = 0; i < 2; ++i) ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  set_failure(good, mock::failure_mode::http_500);
  EXPECT_EQ(post("/v1/chat/completions", chat_body).status, 500U);

  const auto text = scrape();
  // One count per attempt, under the provider tried: alpha failed all three
  // requests, though failover served two of them.
  EXPECT_EQ(value_of(text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="alpha",status="error"})"),
            3);
  EXPECT_EQ(sample(text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="alpha",status="success"})")
                .value_or(0),
            0);
  EXPECT_EQ(value_of(text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="beta",status="success"})"),
            2);
  EXPECT_EQ(value_of(text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="beta",status="error"})"), 1);
  EXPECT_EQ(value_of(text, R"(provider_response_time_seconds_count{provider="alpha"})"), 3);
  EXPECT_EQ(value_of(text, R"(provider_response_time_seconds_count{provider="beta"})"), 3);
  // Three moves from alpha to beta; beta's failure had nowhere to go.
  EXPECT_EQ(value_of(text, R"(gatewayz_failovers_total{model="gpt-4o-mini",from_provider="alpha"})"), 3);
  EXPECT_EQ(sample(text, R"(gatewayz_failovers_total{model="gpt-4o-mini",from_provider="beta"})").value_or(0), 0);
  // Request level: attempts (6) minus failovers (3) are the 3 requests, each
  // timed once under the provider that answered last.
  EXPECT_EQ(value_of(text, R"(model_inference_duration_seconds_count{model="gpt-4o-mini",provider="beta"})"), 3);
  // alpha never answered last: no duration series at 0 (see HistogramSeriesAppearOnTheirFirstObservation).
  EXPECT_FALSE(sample(text, R"(model_inference_duration_seconds_count{model="gpt-4o-mini",provider="alpha"})"));
  EXPECT_FALSE(sample(
      text,
      R"(gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="alpha",gen_ai_request_model="gpt-4o-mini",error_type=""})"));
  EXPECT_EQ(
      value_of(
          text,
          R"(gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="alpha",gen_ai_request_model="gpt-4o-mini",error_type="500"})"),
      3);
}

TEST_F(MetricsTest, HistogramSeriesAppearOnTheirFirstObservation) {
  // A histogram series at 0 has no average (0/0), and one such series makes
  // avg(rate(x_sum[5m]) / rate(x_count[5m])) over all pairs NaN.
  auto& m = add_mock();
  start_gateway(priced(m));
  ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  ASSERT_EQ(post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":["one","two words"]})").status, 200U);
  auto text = scrape();
  const std::string ttfc = R"(time_to_first_chunk_seconds_count{model="gpt-4o-mini",provider="alpha"})";
  const std::string gen_ai_ttfc =
      R"(gen_ai_client_operation_time_to_first_chunk_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="alpha",gen_ai_request_model="gpt-4o-mini"})";
  EXPECT_FALSE(sample(text, ttfc)) << "a pair that never streamed has a time-to-first-chunk series";
  EXPECT_FALSE(sample(text, gen_ai_ttfc));
  EXPECT_EQ(lines_starting(text, "time_to_first_chunk_seconds_count").size(), 0U);
  // Embeddings have no output tokens: no output series for them.
  EXPECT_FALSE(sample(
      text,
      R"(gen_ai_client_token_usage_count{gen_ai_operation_name="embeddings",gen_ai_provider_name="alpha",gen_ai_request_model="text-embedding-3-small",gen_ai_token_type="output"})"));
  EXPECT_EQ(
      value_of(
          text,
          R"(gen_ai_client_token_usage_count{gen_ai_operation_name="embeddings",gen_ai_provider_name="alpha",gen_ai_request_model="text-embedding-3-small",gen_ai_token_type="input"})"),
      1);
  EXPECT_EQ(value_of(text, R"(model_inference_duration_seconds_count{model="gpt-4o-mini",provider="alpha"})"), 1);
  // The family is still declared (its HELP and TYPE lines are there).
  EXPECT_EQ(lines_starting(text, "# TYPE time_to_first_chunk_seconds histogram").size(), 1U);

  // The first stream creates the series, with that one observation.
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200U);
  s.rest();
  ASSERT_TRUE(s.complete());
  text = scrape();
  EXPECT_EQ(value_of(text, ttfc), 1);
  EXPECT_EQ(value_of(text, gen_ai_ttfc), 1);
}

TEST_F(MetricsTest, AFailureWithNowhereToGoIsNotAFailover) {
  // A model's only provider fails: each request is one failed attempt and no failover.
  auto& m = add_mock();
  set_failure(m, mock::failure_mode::http_500);
  start_gateway(one_provider(m));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(post("/v1/chat/completions", chat_body).status, 500U);
  auto text = scrape();
  EXPECT_EQ(value_of(text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="alpha",status="error"})"),
            3);
  EXPECT_EQ(sample(text, R"(gatewayz_failovers_total{model="gpt-4o-mini",from_provider="alpha"})").value_or(0), 0);

  // Two providers, but max_attempts 1: the failure stays where it is.
  auto& other = add_mock();
  set_failure(other, mock::failure_mode::http_500);
  auto cfg = two_providers(url_of(m), url_of(other));
  cfg.server.max_attempts = 1;
  start_gateway(cfg);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(post("/v1/chat/completions", chat_body).status, 500U);
  text = scrape();
  EXPECT_EQ(value_of(text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="alpha",status="error"})"),
            2);
  EXPECT_EQ(
      sample(text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="beta",status="error"})").value_or(0),
      0);
  EXPECT_EQ(sample(text, R"(gatewayz_failovers_total{model="gpt-4o-mini",from_provider="alpha"})").value_or(0), 0);
}

TEST_F(MetricsTest, HttpMetricsUseRouteTemplatesAndCollapseUnmatchedPaths) {
  auto& m = add_mock();
  start_gateway(priced(m));
  ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  ASSERT_EQ(post("/v1/chat/completions", "{not json").status, 400U);
  for (int i = 0; i < 25; ++i) {
    EXPECT_EQ(get("/scan/" + std::to_string(i) + "/wp-admin.php?x=" + std::to_string(i)).status, 404U);
  }
  EXPECT_EQ(get("/v1/chat/completions").status, 405U);

  const auto text = scrape();
  EXPECT_EQ(value_of(text, R"(fastapi_requests_total{method="POST",path="/v1/chat/completions",status_code="200"})"),
            1);
  EXPECT_EQ(value_of(text, R"(fastapi_requests_total{method="POST",path="/v1/chat/completions",status_code="400"})"),
            1);
  EXPECT_EQ(value_of(text, R"(fastapi_requests_total{method="GET",path="unmatched",status_code="404"})"), 25);
  EXPECT_EQ(value_of(text, R"(fastapi_requests_total{method="GET",path="/v1/chat/completions",status_code="405"})"), 1);
  EXPECT_EQ(value_of(text, R"(fastapi_requests_duration_seconds_count{method="POST",path="/v1/chat/completions"})"), 2);
  EXPECT_EQ(value_of(text, R"(fastapi_request_size_bytes_sum{method="POST",path="/v1/chat/completions"})"),
            static_cast<double>(chat_body.size() + std::string("{not json").size()));
  EXPECT_GT(value_of(text, R"(fastapi_response_size_bytes_sum{method="POST",path="/v1/chat/completions"})"), 100);
  // Nothing in flight but the scrape itself.
  EXPECT_EQ(value_of(text, R"(fastapi_requests_in_progress{method="POST",path="/v1/chat/completions"})"), 0);
  EXPECT_EQ(value_of(text, R"(fastapi_requests_in_progress{method="GET",path="/metrics"})"), 1);
  // No raw path ever becomes a label value.
  EXPECT_EQ(text.find("wp-admin"), std::string::npos);
  EXPECT_EQ(lines_starting(text, "fastapi_requests_total{").size(), 4U) << text;
}

TEST_F(MetricsTest, RequestsTheServerRejectsItselfAreCounted) {
  auto& m = add_mock();
  auto cfg = priced(m);
  cfg.server.max_body_bytes = 64;
  start_gateway(std::move(cfg));
  const std::string big(1000, 'x');
  EXPECT_EQ(post("/v1/chat/completions", big).status, 413U);
  const auto text = scrape();
  EXPECT_EQ(value_of(text, R"(fastapi_requests_total{method="POST",path="/v1/chat/completions",status_code="413"})"), 1)
      << ::testing::PrintToString(lines_starting(text, "fastapi_requests_total"));
}

// A connection reset between requests is no request; one reset in the middle
// of a request's head is a request the client gave up on (499).
TEST_F(MetricsTest, AResetBetweenRequestsIsNotCountedAsARequest) {
  auto& m = add_mock();
  start_gateway(priced(m));
  const auto reset_after = [&](std::string_view bytes, bool read_answer) {
    asio::io_context io;
    asio::ip::tcp::socket s{io};
    s.connect({asio::ip::make_address("127.0.0.1"), port()});
    asio::write(s, asio::buffer(bytes.data(), bytes.size()));
    if (read_answer) {
      beast::flat_buffer buffer;
      bhttp::response<bhttp::string_body> res;
      bhttp::read(s, buffer, res);
      EXPECT_EQ(res.result_int(), 404);
    }
    s.set_option(asio::socket_base::linger(true, 0));
    s.close();
  };
  reset_after("GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n", true);
  reset_after("GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n", true);
  reset_after("GET /half-a-he", false);
  // The server notices the last reset asynchronously.
  std::string text;
  for (int i = 0; i < 100; ++i) {
    text = scrape();
    if (value_of(text, R"(fastapi_requests_total{method="OTHER",path="unmatched",status_code="499"})") >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(value_of(text, R"(fastapi_requests_total{method="GET",path="unmatched",status_code="404"})"), 2);
  EXPECT_EQ(value_of(text, R"(fastapi_requests_total{method="OTHER",path="unmatched",status_code="499"})"), 1)
      << ::testing::PrintToString(lines_starting(text, "fastapi_requests_total"));
}

TEST_F(MetricsTest, ScrapesAreGzippedWhenTheScraperAcceptsIt) {
  auto& m = add_mock();
  start_gateway(priced(m));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);

  // Prometheus' own request headers for a scrape.
  const header_list prometheus{{"Accept-Encoding", "gzip"},
                               {"Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"}};
  const auto packed = get("/metrics", prometheus);
  ASSERT_EQ(packed.status, 200U);
  EXPECT_EQ(packed.header("content-encoding"), "gzip");
  EXPECT_EQ(packed.header("vary"), "Accept-Encoding");
  EXPECT_TRUE(packed.header("content-type").starts_with("application/openmetrics-text"));
  const auto text = gunzip(packed.body);
  ASSERT_TRUE(text.has_value()) << "not a gzip stream";
  EXPECT_TRUE(text->ends_with("# EOF\n"));
  EXPECT_EQ(value_of(*text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="alpha",status="success"})"),
            3);

  // A plain scrape stays plain (and says that the answer varies).
  const auto plain = get("/metrics", {{"Accept", "application/openmetrics-text;version=1.0.0"}});
  ASSERT_EQ(plain.status, 200U);
  EXPECT_EQ(plain.header("content-encoding"), "");
  EXPECT_EQ(plain.header("vary"), "Accept-Encoding");
  EXPECT_TRUE(plain.body.starts_with("# HELP ")) << plain.body.substr(0, 40);
  EXPECT_LT(packed.body.size() * 5, plain.body.size()) << packed.body.size() << " vs " << plain.body.size();
  // gzip refused explicitly: plain.
  const auto refused = get("/metrics", {{"Accept-Encoding", "gzip;q=0, identity"}});
  EXPECT_EQ(refused.header("content-encoding"), "");
  EXPECT_TRUE(refused.body.starts_with("# HELP "));
}

TEST_F(MetricsTest, OpenMetricsWhenTheScraperAsksForIt) {
  auto& m = add_mock();
  start_gateway(priced(m));
  ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  const header_list accept{{"Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"}};
  settled_metrics(port(), accept);
  const auto r = get("/metrics", accept);
  ASSERT_EQ(r.status, 200U);
  EXPECT_EQ(r.header("content-type"), "application/openmetrics-text; version=1.0.0; charset=utf-8");
  ASSERT_GE(r.body.size(), 6U);
  EXPECT_EQ(r.body.substr(r.body.size() - 6), "# EOF\n");
  EXPECT_EQ(lines_starting(r.body, "# TYPE model_inference_requests counter").size(), 1U);
  EXPECT_EQ(
      value_of(r.body, R"(model_inference_requests_total{model="gpt-4o-mini",provider="alpha",status="success"})"), 1);
}

TEST_F(MetricsTest, LatencyBucketsCarryTheSampledTraceAsExemplar) {
  auto& m = add_mock();
  auto cfg = priced(m);
  cfg.tracing.enabled = true;
  cfg.tracing.otlp_endpoint = "http://127.0.0.1:" + std::to_string(closed_port());  // spans are dropped: fine here
  start_gateway(std::move(cfg));
  const std::string sampled = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string unsampled = "0af7651916cd43dd8448eb211c80319c";
  ASSERT_EQ(post("/v1/chat/completions", chat_body, {{"traceparent", "00-" + sampled + "-00f067aa0ba902b7-01"}}).status,
            200U);
  ASSERT_EQ(
      post("/v1/chat/completions", chat_body, {{"traceparent", "00-" + unsampled + "-00f067aa0ba902b7-00"}}).status,
      200U);
  const header_list accept{{"Accept", "application/openmetrics-text;version=1.0.0"}};
  settled_metrics(port(), accept);
  const auto text = get("/metrics", accept).body;
  const std::string exemplar = "# {trace_id=\"" + sampled + "\"} ";
  for (const char* family : {"model_inference_duration_seconds_bucket{", "fastapi_requests_duration_seconds_bucket{",
                             "gen_ai_client_operation_duration_seconds_bucket{",
                             "provider_response_time_seconds_bucket{", "gatewayz_overhead_seconds_bucket{"}) {
    const auto lines = lines_starting(text, family);
    EXPECT_TRUE(std::any_of(lines.begin(), lines.end(),
                            [&](const std::string& line) { return line.find(exemplar) != std::string::npos; }))
        << family << " has the sampled request's trace as an exemplar";
  }
  EXPECT_EQ(text.find(unsampled), std::string::npos) << "an unsampled trace is no exemplar";
  EXPECT_EQ(scrape().find(sampled), std::string::npos) << "text format 0.0.4 has no exemplars";
}

TEST_F(MetricsTest, BearerTokenProtectsTheEndpointWhenConfigured) {
  auto& m = add_mock();
  auto cfg = priced(m);
  cfg.metrics.bearer_token = "scrape-token";
  start_gateway(std::move(cfg));
  const auto none = get("/metrics");
  EXPECT_EQ(none.status, 401U);
  EXPECT_EQ(none.header("www-authenticate"), "Bearer realm=\"metrics\"");
  expect_openai_error(none, 401, "invalid_api_key");
  EXPECT_EQ(get("/metrics", {{"Authorization", "Bearer wrong-token!"}}).status, 401U);
  const auto ok = get("/metrics", {{"Authorization", "Bearer scrape-token"}});
  EXPECT_EQ(ok.status, 200U);
  EXPECT_EQ(ok.body.find("scrape-token"), std::string::npos);
}

TEST_F(MetricsTest, DisabledMetricsRecordNothingButStillAnswer) {
  auto& m = add_mock();
  auto cfg = priced(m);
  cfg.metrics.enabled = false;
  start_gateway(std::move(cfg));
  ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  const auto text = scrape();
  EXPECT_FALSE(
      sample(text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="alpha",status="success"})"));
  EXPECT_TRUE(lines_starting(text, "fastapi_requests_total{").empty());
  EXPECT_GT(value_of(text, "process_resident_memory_bytes"), 0);
}

TEST_F(MetricsTest, SecretsNeverReachTheExposition) {
  auto& m = add_mock();
  start_gateway(priced(m));
  ASSERT_EQ(post("/v1/chat/completions", chat_body, {{"Authorization", "Bearer client-secret-key"}}).status, 200U);
  const auto text = scrape();
  EXPECT_EQ(text.find(upstream_key), std::string::npos);
  EXPECT_EQ(text.find("client-secret-key"), std::string::npos);
  EXPECT_EQ(text.find("hello there"), std::string::npos);  // prompt text
}

TEST_F(MetricsTest, PromtoolAcceptsRealOutputAfterTraffic) {
  ASSERT_EQ(access("/usr/bin/promtool", X_OK), 0) << "promtool missing: run scripts/install-deps.sh";
  auto& bad = add_mock();
  auto& good = add_mock();
  set_failure(bad, mock::failure_mode::http_429);
  start_gateway(two_providers(url_of(bad), url_of(good)));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  {
    sse_client s(port());
    ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
    s.rest();
  }
  get("/nope");
  // promtool parses the Prometheus text format only; the OpenMetrics output is
  // checked by a real Prometheus server in tests/integration (prometheus_test).
  {
    const bool openmetrics = false;
    const auto text = scrape();
    const std::string path = testing::TempDir() + "gw_metrics_" + std::to_string(getpid()) + ".prom";
    {
      std::ofstream out(path);
      out << text;
    }
    const std::string command = "/usr/bin/promtool check metrics < '" + path + "' 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string output;
    std::array<char, 512> buffer{};
    while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
    const int status = pclose(pipe);
    std::remove(path.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    // promtool lints too (e.g. counters without _total); only real errors fail it.
    EXPECT_EQ(WEXITSTATUS(status), 0) << (openmetrics ? "openmetrics: " : "text: ") << output;
  }
}

}  // namespace
}  // namespace gatewayz::test
