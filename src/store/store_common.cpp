#include "store/store_common.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>

#include "telemetry/catalog.hpp"

namespace gatewayz::store::detail {

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string generate_key_secret() {
  std::array<unsigned char, 32> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    throw store_error("could not generate an API key: the random generator failed");
  }
  // Standard base64 of 32 bytes is 44 characters with one '=' of padding.
  std::array<unsigned char, 4 * ((random.size() + 2) / 3) + 1> encoded{};
  const int length = EVP_EncodeBlock(encoded.data(), random.data(), static_cast<int>(random.size()));
  std::string secret = "gwz_";
  for (int i = 0; i < length; ++i) {
    const char c = static_cast<char>(encoded[static_cast<std::size_t>(i)]);
    if (c == '=') break;
    secret += c == '+' ? '-' : c == '/' ? '_' : c;  // base64url: safe in headers and URLs
  }
  return secret;
}

std::string key_display_prefix(std::string_view secret) { return std::string(secret.substr(0, 12)); }

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (const unsigned char b : digest) {
    out += hex[b >> 4];
    out += hex[b & 0x0f];
  }
  return out;
}

std::int64_t first_minute_of_window(std::int64_t now_ms, std::chrono::seconds window) {
  const auto window_ms = std::chrono::duration_cast<std::chrono::milliseconds>(window).count();
  return minute_of(now_ms - window_ms);
}

void batch_effects::add(const ledger_row& row) {
  if (row.customer_id) debits[*row.customer_id] += row.cost;
  rollup_key key{minute_of(row.unix_ms), row.model, row.provider};
  const double latency_ms = storable_ms(row.latency_ms);
  const int bucket = latency_histogram::bucket_of(latency_ms);
  auto& sums = rollups[key];
  sums.requests += 1;
  if (row.status == "success") {
    sums.successes += 1;
  } else {
    sums.failures += 1;
  }
  sums.latency_sum_ms += latency_ms;
  sums.tokens += row.input_tokens + row.output_tokens;
  sums.cost += row.cost;
  buckets[{std::move(key), bucket}] += 1;
}

std::vector<model_stats> finish_stats(const stats_by_model& merged) {
  std::vector<model_stats> out;
  out.reserve(merged.size());
  for (const auto& [name, acc] : merged) {
    model_stats s;
    s.model = name.first;
    s.provider = name.second;
    s.total_requests = acc.sums.requests;
    s.successful_requests = acc.sums.successes;
    s.failed_requests = acc.sums.failures;
    s.avg_latency_ms = acc.sums.requests > 0 ? acc.sums.latency_sum_ms / static_cast<double>(acc.sums.requests) : 0.0;
    s.p95_latency_ms = latency_histogram::percentile_ms(acc.buckets, 0.95);
    s.p99_latency_ms = latency_histogram::percentile_ms(acc.buckets, 0.99);
    s.total_tokens = acc.sums.tokens;
    s.total_cost = acc.sums.cost;
    s.uptime_percentage = acc.sums.requests > 0
                              ? 100.0 * static_cast<double>(acc.sums.successes) / static_cast<double>(acc.sums.requests)
                              : 100.0;
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const model_stats& a, const model_stats& b) {
    if (a.total_requests != b.total_requests) return a.total_requests > b.total_requests;
    if (a.model != b.model) return a.model < b.model;
    return a.provider < b.provider;
  });
  return out;
}

void query_metrics::record(std::string_view operation, std::chrono::steady_clock::duration elapsed) {
  if (catalog_ == nullptr) return;
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const std::size_t background_shard = catalog_->reg.shards() - 1;
  std::lock_guard lock(mu_);
  auto it = resolved_.find(operation);
  if (it == resolved_.end()) {
    handles h{catalog_->database_queries.series({operation}), catalog_->database_query_duration.series({operation})};
    it = resolved_.emplace(std::string(operation), h).first;
  }
  it->second.queries.inc(background_shard);
  it->second.duration.observe(background_shard, seconds);
}

}  // namespace gatewayz::store::detail
