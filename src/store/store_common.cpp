#include "store/store_common.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "store/money.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::store::detail {

std::vector<const ledger_row*> rows_in_key_order(std::span<const ledger_row> rows) {
  std::vector<const ledger_row*> order;
  order.reserve(rows.size());
  for (const ledger_row& row : rows) order.push_back(&row);
  const auto by_id = [](const ledger_row* a, const ledger_row* b) { return a->request_id < b->request_id; };
  // Rows far from key order (slow upstreams finish in no particular order,
  // client-chosen ids, a clock stepped back) go to the merge sort early: the
  // moves may not outgrow four per row so far (plus slack), which rows in no
  // order exceed within the first fifty or so.
  std::size_t moves = 0;
  for (std::size_t i = 1; i < order.size(); ++i) {
    const ledger_row* row = order[i];
    std::size_t at = i;
    while (at > 0 && by_id(row, order[at - 1])) {
      order[at] = order[at - 1];
      --at;
      if (++moves > 4 * i + 256) {
        order[at] = row;
        // Equal ids never passed each other above, so stability holds.
        std::stable_sort(order.begin(), order.end(), by_id);
        return order;
      }
    }
    order[at] = row;
  }
  return order;
}

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void check_credit_amount(nanos_usd amount) {
  if (amount < -max_balance_nanos || amount > max_balance_nanos) {
    throw balance_out_of_range(fmt::format("the amount {} USD is outside the allowed range of -{} to {} USD",
                                           format_usd(amount), max_balance_usd, max_balance_usd));
  }
}

balance_out_of_range balance_range_error(nanos_usd balance, nanos_usd amount) {
  nanos_usd result = 0;
  // (A balance stored before the range existed may be anywhere.)
  const bool overflows = __builtin_add_overflow(balance, amount, &result);
  return balance_out_of_range(fmt::format(
      "the amount {} USD would take the balance from {} to {} USD, outside the allowed range of -{} to {} USD",
      format_usd(amount), format_usd(balance), overflows ? "beyond int64" : format_usd(result), max_balance_usd,
      max_balance_usd));
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

std::size_t batch_effects::key_hash::operator()(const key& k) const noexcept {
  const std::hash<std::string_view> h;
  std::size_t seed = std::hash<std::int64_t>{}(k.minute);
  seed ^= h(k.model) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
  seed ^= h(k.provider) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
  return seed;
}

void batch_effects::add(const ledger_row& row) {
  if (row.customer_id) debit_sums_[*row.customer_id] += row.cost;
  const auto [it, inserted] = rollup_index_.try_emplace(key{minute_of(row.unix_ms), row.model, row.provider},
                                                        static_cast<std::uint32_t>(rollups_.size()));
  if (inserted) rollups_.push_back(rollup{it->first.minute, it->first.model, it->first.provider, {}});
  const double latency_ms = storable_ms(row.latency_ms);
  rollup_sums& sums = rollups_[it->second].sums;
  sums.requests += 1;
  if (row.status == "success") {
    sums.successes += 1;
  } else {
    sums.failures += 1;
  }
  sums.latency_sum_ms += latency_ms;
  sums.tokens += row.input_tokens + row.output_tokens;
  sums.cost += row.cost;
  static_assert(latency_histogram::bucket_count <= 0x10000, "a bucket must fit the low 16 bits");
  bucket_hits_.push_back(std::uint64_t{it->second} << 16 |
                         static_cast<std::uint64_t>(latency_histogram::bucket_of(latency_ms)));
}

void batch_effects::finish() {
  debits_.clear();
  debits_.reserve(debit_sums_.size());
  for (const auto& [customer_id, cost] : debit_sums_) debits_.push_back(debit{customer_id, cost});
  std::sort(debits_.begin(), debits_.end(),
            [](const debit& a, const debit& b) { return a.customer_id < b.customer_id; });

  // Rollups in key order; `rank` maps an insertion index to its sorted place.
  std::vector<std::uint32_t> order(rollups_.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [this](std::uint32_t a, std::uint32_t b) {
    const rollup& x = rollups_[a];
    const rollup& y = rollups_[b];
    if (x.minute != y.minute) return x.minute < y.minute;
    if (x.model != y.model) return x.model < y.model;
    return x.provider < y.provider;
  });
  std::vector<std::uint32_t> rank(rollups_.size());
  std::vector<rollup> sorted;
  sorted.reserve(rollups_.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) {
    rank[order[i]] = i;
    sorted.push_back(rollups_[order[i]]);
  }
  rollups_ = std::move(sorted);
  rollup_index_.clear();  // its indexes no longer match rollups_

  for (std::uint64_t& hit : bucket_hits_) hit = std::uint64_t{rank[hit >> 16]} << 16 | (hit & 0xffff);
  std::sort(bucket_hits_.begin(), bucket_hits_.end());
  buckets_.clear();
  for (const std::uint64_t hit : bucket_hits_) {
    const std::size_t rollup = hit >> 16;
    const int bucket = static_cast<int>(hit & 0xffff);
    if (!buckets_.empty() && buckets_.back().rollup == rollup && buckets_.back().bucket == bucket) {
      ++buckets_.back().count;
    } else {
      buckets_.push_back(bucket_count{rollup, bucket, 1});
    }
  }
  bucket_hits_.clear();
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
