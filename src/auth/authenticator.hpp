#pragma once
// API-key authentication with a short-lived in-memory cache.
//
// The gateway calls authenticate(shard, credentials) on every request from
// the server thread of `shard`. Each shard has its own cache, so the hit path
// takes no lock and shares no cache line with other shards: hash the key
// (SHA-256; the cache never holds a plaintext key), one hash-map lookup,
// one relaxed load of the customer's balance.
//
// A miss calls store.find_key, which is blocking I/O on the shard thread.
// That is deliberate and bounded: a key is looked up at most once per shard
// per cache_ttl_s (30 s), an unknown key at most once per negative_ttl_s, and
// while the store is failing at most once per store_retry_s per key. Entries
// expire after cache_ttl_s, so a revoked key (or a changed balance) is seen
// within that time. When the store fails, an expired entry is served stale
// (and retried after store_retry_s); only a key never seen yields
// `unavailable`.
//
// Balances: the customer's balance lives in customer_balances (balances.hpp),
// shared by all shards and owned by the app. A store lookup refreshes it
// without forgetting charges the ledger has not committed yet; the result
// carries the customer's account, against which the gateway reserves a
// request's worst-case cost before proxying it and settles the real cost
// after.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "auth/balances.hpp"
#include "store/store.hpp"
#include "telemetry/catalog.hpp"

struct evp_md_st;      // OpenSSL's EVP_MD
struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace gatewayz::auth {

enum class auth_status {
  ok,
  missing,             // no credentials                      → 401
  invalid,             // unknown key or malformed header     → 401
  revoked,             // the key was revoked                 → 401
  insufficient_quota,  // the customer's balance is ≤ 0       → 402
  unavailable,         // the store failed, nothing cached    → 503
};

struct auth_result {
  auth_status status = auth_status::missing;
  // Set for ok and insufficient_quota (and revoked: the key's ids).
  std::int64_t key_id = 0;
  std::int64_t customer_id = 0;
  store::nanos_usd balance = 0;  // available when looked up
  // The customer's account, for reservations (ok and insufficient_quota).
  customer_balances::account* account = nullptr;

  bool ok() const { return status == auth_status::ok; }
};

// The HTTP status a refusal maps to (200 for ok).
unsigned http_status(auth_status status);
// A fixed, client-safe message for a refusal (never contains the key), and
// the OpenAI error code ("invalid_api_key", "insufficient_quota", ...).
std::string_view message(auth_status status);
std::string_view error_code(auth_status status);
std::string_view to_string(auth_status status);

// The key in an `Authorization` value ("Bearer <key>", scheme
// case-insensitive) or a bare key (the `x-api-key` value). Surrounding
// whitespace is ignored. Returns an empty view when there is no key, and
// nullopt when the value is malformed (another scheme, or spaces in the key).
std::optional<std::string_view> extract_key(std::string_view credentials);

struct auth_options {
  double cache_ttl_s = 30;            // a known key (valid or revoked) is re-read after this long
  double negative_ttl_s = 5;          // an unknown key is re-read after this long
  double store_retry_s = 1;           // after a store failure, the next lookup of that key waits this long
  std::size_t max_entries = 100'000;  // per shard; beyond it expired entries, then arbitrary ones, go
};

using steady_clock_fn = std::function<std::chrono::steady_clock::time_point()>;

class authenticator {
 public:
  // `metrics` (optional) receives gatewayz_api_key_cache_{hits,misses}_total on
  // the calling shard's index (reg.shards() must be >= shard_count).
  // `clock` defaults to std::chrono::steady_clock::now (tests inject one).
  // `on_store_error` (optional) is told why a store lookup failed; store
  // errors never contain the key being looked up.
  // `balances` must outlive the authenticator.
  authenticator(store::store& store, customer_balances& balances, auth_options options, std::size_t shard_count,
                telemetry::catalog* metrics = nullptr, steady_clock_fn clock = {},
                std::function<void(std::string_view)> on_store_error = {});
  ~authenticator();
  authenticator(const authenticator&) = delete;
  authenticator& operator=(const authenticator&) = delete;

  // Only the thread of `shard` (< shard_count) may call these with `shard`.
  auth_result authenticate(std::size_t shard, std::string_view credentials);

  // The customer balances it refreshes (for the admin API's credits).
  customer_balances& balances() { return balances_; }

  // Store lookups made so far (all shards), for tests and diagnostics.
  std::uint64_t store_lookups() const;

 private:
  using digest = std::array<unsigned char, 32>;

  struct digest_hash {
    std::size_t operator()(const digest& d) const noexcept;
  };
  // SHA-256 digests of secrets are compared in constant time.
  struct digest_equal {
    bool operator()(const digest& a, const digest& b) const noexcept;
  };

  enum class entry_kind { key, unknown, store_failed };

  struct entry {
    entry_kind kind = entry_kind::unknown;
    std::int64_t key_id = 0;
    std::int64_t customer_id = 0;
    bool revoked = false;
    customer_balances::account* account = nullptr;
    std::chrono::steady_clock::time_point expires;
  };

  struct alignas(64) shard_cache {
    std::unordered_map<digest, entry, digest_hash, digest_equal> entries;
    std::atomic<std::uint64_t> lookups{0};  // written by this shard only
    // Reused for every key this shard hashes: a one-shot EVP_Digest allocates
    // and frees a context (and the provider's) on every request.
    evp_md_ctx_st* sha256_ctx = nullptr;
    telemetry::counter_handle hits;
    telemetry::counter_handle misses;
  };

  digest hash_key(shard_cache& cache, std::string_view key) const;
  auth_result from_entry(const entry& e) const;
  void free_digest_contexts() noexcept;
  void insert(shard_cache& cache, const digest& d, entry e, std::chrono::steady_clock::time_point now);
  std::chrono::steady_clock::duration seconds(double s) const;

  store::store& store_;
  customer_balances& balances_;
  auth_options options_;
  std::size_t shard_count_;
  bool has_metrics_ = false;
  steady_clock_fn clock_;
  std::function<void(std::string_view)> on_store_error_;
  std::unique_ptr<shard_cache[]> shards_;
  evp_md_st* sha256_ = nullptr;  // fetched once: no algorithm lookup (and its lock) per call
};

}  // namespace gatewayz::auth
