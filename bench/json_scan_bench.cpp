// gw_json_scan_bench: the proxy path's JSON work per request, in isolation.
//
// Every proxied chat completion scans the client's body (to find `model`,
// `stream` and to reject malformed JSON) and the provider's response (to
// validate it and read `usage`). These benchmarks time exactly those scans on
// the bodies bench/run.sh sends and receives, plus a longer conversation, so
// a scanner change can be judged in nanoseconds instead of through wrk's noise.
//
//   build-release/bench/gw_json_scan_bench --benchmark_repetitions=5

#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/json_scan.hpp"

namespace {

using namespace gatewayz;

// bench/run.sh's request body (bench/chat.lua sends BENCH_BODY).
const std::string request_body =
    R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},)"
    R"({"role":"user","content":"Hello, benchmark"}]})";

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The fixed answer of the bench's upstream.
const std::string& response_body() {
  static const std::string body = read_file(GATEWAYZ_BENCH_DIR "/chat-response.json");
  return body;
}

// A 20-turn conversation with some escapes and non-ASCII text: the shape of
// real chat traffic, where the message contents dominate the bytes.
const std::string& conversation_body() {
  static const std::string body = [] {
    std::string text = R"({"model":"gpt-4o-mini","temperature":0.7,"max_tokens":512,"messages":[)";
    for (int turn = 0; turn < 20; ++turn) {
      if (turn > 0) text += ',';
      text += turn % 2 == 0 ? R"({"role":"user","content":")" : R"({"role":"assistant","content":")";
      text += "Could you explain step ";
      text += std::to_string(turn);
      text += R"( of the \"plan\" again? Voil\u00e0 \u2014 naïve café, 東京, emoji 🚀.\nThanks in advance; )";
      text += "the previous answer was long and detailed and I would like a shorter one.\"}";
    }
    text += "]}";
    return text;
  }();
  return body;
}

void scan_body(benchmark::State& state, const std::string& body) {
  json_scan::object_scan scan;
  json_scan::scan_error error;
  for (auto _ : state) {
    const bool ok = json_scan::scan_object(body, scan, error);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(scan.members.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}

void BM_ScanRequest(benchmark::State& state) { scan_body(state, request_body); }
void BM_ScanResponse(benchmark::State& state) { scan_body(state, response_body()); }
void BM_ScanConversation(benchmark::State& state) { scan_body(state, conversation_body()); }

// The response as the OpenAI adapter reads it: the whole body, then `usage`.
void BM_ScanResponseAndUsage(benchmark::State& state) {
  const std::string& body = response_body();
  json_scan::object_scan scan;
  json_scan::object_scan usage;
  json_scan::scan_error error;
  for (auto _ : state) {
    bool ok = json_scan::scan_object(body, scan, error);
    const json_scan::member* m = scan.find("usage");
    if (m != nullptr) {
      ok = ok && json_scan::scan_object(std::string_view(body).substr(m->value_span.begin, m->value_span.size()), usage,
                                        error);
    }
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(usage.members.data());
  }
}

}  // namespace

BENCHMARK(BM_ScanRequest);
BENCHMARK(BM_ScanResponse);
BENCHMARK(BM_ScanResponseAndUsage);
BENCHMARK(BM_ScanConversation);
BENCHMARK_MAIN();
