#include "auth/authenticator.hpp"

#include "core/text.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace gatewayz::auth {

namespace {

using text::iequals;
using text::trim;

}  // namespace

unsigned http_status(auth_status status) {
  switch (status) {
    case auth_status::ok: return 200;
    case auth_status::missing:
    case auth_status::invalid:
    case auth_status::revoked: return 401;
    case auth_status::insufficient_quota: return 402;
    case auth_status::unavailable: return 503;
  }
  return 500;
}

std::string_view message(auth_status status) {
  switch (status) {
    case auth_status::ok: return "OK";
    case auth_status::missing:
      return "You didn't provide an API key. Provide it in the Authorization header as 'Bearer <key>'.";
    case auth_status::invalid: return "Incorrect API key provided.";
    case auth_status::revoked: return "This API key has been revoked.";
    case auth_status::insufficient_quota: return "You exceeded your current quota: add credits to continue.";
    case auth_status::unavailable: return "API keys cannot be verified right now; retry shortly.";
  }
  return "Authentication failed.";
}

std::string_view error_code(auth_status status) {
  switch (status) {
    case auth_status::ok: return "";
    case auth_status::missing:
    case auth_status::invalid:
    case auth_status::revoked: return "invalid_api_key";
    case auth_status::insufficient_quota: return "insufficient_quota";
    case auth_status::unavailable: return "auth_unavailable";
  }
  return "invalid_api_key";
}

std::string_view to_string(auth_status status) {
  switch (status) {
    case auth_status::ok: return "ok";
    case auth_status::missing: return "missing";
    case auth_status::invalid: return "invalid";
    case auth_status::revoked: return "revoked";
    case auth_status::insufficient_quota: return "insufficient_quota";
    case auth_status::unavailable: return "unavailable";
  }
  return "invalid";
}

std::optional<std::string_view> extract_key(std::string_view credentials) {
  credentials = trim(credentials);
  // "Bearer" with nothing after it (the trailing space trimmed away).
  if (credentials.empty() || iequals(credentials, "bearer")) return std::string_view{};
  const auto space = credentials.find_first_of(" \t");
  if (space == std::string_view::npos) return credentials;  // a bare key (x-api-key)
  if (!iequals(credentials.substr(0, space), "bearer")) return std::nullopt;
  const std::string_view key = trim(credentials.substr(space + 1));
  if (key.find_first_of(" \t") != std::string_view::npos) return std::nullopt;
  return key;
}

std::size_t authenticator::digest_hash::operator()(const digest& d) const noexcept {
  // The digest is uniformly distributed already: its first bytes are a hash.
  std::size_t h = 0;
  std::memcpy(&h, d.data(), sizeof h);
  return h;
}

bool authenticator::digest_equal::operator()(const digest& a, const digest& b) const noexcept {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

authenticator::authenticator(store::store& store, customer_balances& balances, auth_options options,
                             std::size_t shard_count, telemetry::catalog* metrics, steady_clock_fn clock,
                             std::function<void(std::string_view)> on_store_error)
    : store_(store),
      balances_(balances),
      options_(options),
      shard_count_(shard_count),
      clock_(clock ? std::move(clock) : steady_clock_fn{[] { return std::chrono::steady_clock::now(); }}),
      on_store_error_(std::move(on_store_error)) {
  if (shard_count == 0) throw std::invalid_argument("authenticator: shard_count must be at least 1");
  if (options_.max_entries == 0) throw std::invalid_argument("authenticator: max_entries must be at least 1");
  if (metrics != nullptr && metrics->reg.shards() < shard_count) {
    throw std::invalid_argument(fmt::format("authenticator: the metric registry has {} shard(s), fewer than {}",
                                            metrics->reg.shards(), shard_count));
  }
  sha256_ = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (sha256_ == nullptr) throw std::runtime_error("authenticator: OpenSSL has no SHA-256");
  shards_ = std::make_unique<shard_cache[]>(shard_count);
  for (std::size_t i = 0; i < shard_count; ++i) {
    shards_[i].sha256_ctx = EVP_MD_CTX_new();
    if (shards_[i].sha256_ctx == nullptr) {
      free_digest_contexts();
      throw std::bad_alloc();
    }
  }
  if (metrics != nullptr) {
    has_metrics_ = true;
    for (std::size_t i = 0; i < shard_count; ++i) {
      shards_[i].hits = metrics->api_key_cache_hits.series();
      shards_[i].misses = metrics->api_key_cache_misses.series();
    }
  }
}

authenticator::~authenticator() { free_digest_contexts(); }

void authenticator::free_digest_contexts() noexcept {
  if (shards_) {
    for (std::size_t i = 0; i < shard_count_; ++i) {
      EVP_MD_CTX_free(shards_[i].sha256_ctx);
      shards_[i].sha256_ctx = nullptr;
    }
  }
  EVP_MD_free(sha256_);
  sha256_ = nullptr;
}

authenticator::digest authenticator::hash_key(shard_cache& cache, std::string_view key) const {
  digest d{};
  unsigned int size = 0;
  // Re-initialising with the same digest keeps the context's state buffers.
  if (EVP_DigestInit_ex2(cache.sha256_ctx, sha256_, nullptr) != 1 ||
      EVP_DigestUpdate(cache.sha256_ctx, key.data(), key.size()) != 1 ||
      EVP_DigestFinal_ex(cache.sha256_ctx, d.data(), &size) != 1 || size != d.size()) {
    throw std::runtime_error("authenticator: SHA-256 failed");
  }
  return d;
}

std::chrono::steady_clock::duration authenticator::seconds(double s) const {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
}

auth_result authenticator::from_entry(const entry& e) const {
  auth_result result;
  switch (e.kind) {
    case entry_kind::unknown: result.status = auth_status::invalid; return result;
    case entry_kind::store_failed: result.status = auth_status::unavailable; return result;
    case entry_kind::key: break;
  }
  result.key_id = e.key_id;
  result.customer_id = e.customer_id;
  result.account = e.account;
  result.balance = customer_balances::available(*e.account);
  if (e.revoked) {
    result.status = auth_status::revoked;
  } else if (result.balance <= 0) {
    result.status = auth_status::insufficient_quota;
  } else {
    result.status = auth_status::ok;
  }
  return result;
}

void authenticator::insert(shard_cache& cache, const digest& d, entry e, std::chrono::steady_clock::time_point now) {
  auto it = cache.entries.find(d);
  if (it != cache.entries.end()) {
    it->second = std::move(e);
    return;
  }
  if (cache.entries.size() >= options_.max_entries) {
    // Bounded memory under a flood of made-up keys: drop what has expired,
    // and if that is not enough, anything (it is only a cache).
    std::erase_if(cache.entries, [now](const auto& item) { return item.second.expires <= now; });
    while (cache.entries.size() >= options_.max_entries) cache.entries.erase(cache.entries.begin());
  }
  cache.entries.emplace(d, std::move(e));
}

auth_result authenticator::authenticate(std::size_t shard, std::string_view credentials) {
  if (shard >= shard_count_) throw std::out_of_range("authenticator: shard index out of range");
  const auto key = extract_key(credentials);
  if (!key) return auth_result{auth_status::invalid};
  if (key->empty()) return auth_result{auth_status::missing};

  shard_cache& cache = shards_[shard];
  const digest d = hash_key(cache, *key);
  const auto now = clock_();
  auto cached = cache.entries.find(d);
  if (cached != cache.entries.end() && now < cached->second.expires) {
    if (has_metrics_) cache.hits.inc(shard);
    return from_entry(cached->second);
  }
  if (has_metrics_) cache.misses.inc(shard);

  // Miss: blocking store I/O on this shard's thread (see the header).
  // Only this shard writes its counter: a load and a store, no locked add.
  cache.lookups.store(cache.lookups.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::optional<store::key_lookup> found;
  // Before the read: charges the ledger commits from here on are not
  // assumed to be in the balance it returns (balances.hpp).
  const auto before_read = balances_.mark();
  try {
    found = store_.find_key(*key);
  } catch (const std::exception& e) {
    if (on_store_error_) on_store_error_(fmt::format("API key lookup failed: {}", e.what()));
    if (cached != cache.entries.end() && cached->second.kind != entry_kind::store_failed) {
      // Serve what we knew, and give the store a rest before asking again.
      cached->second.expires = now + seconds(options_.store_retry_s);
      return from_entry(cached->second);
    }
    entry failed;
    failed.kind = entry_kind::store_failed;
    failed.expires = now + seconds(options_.store_retry_s);
    insert(cache, d, std::move(failed), now);
    return auth_result{auth_status::unavailable};
  }

  entry fresh;
  if (!found) {
    fresh.kind = entry_kind::unknown;
    fresh.expires = now + seconds(options_.negative_ttl_s);
  } else {
    fresh.kind = entry_kind::key;
    fresh.key_id = found->key_id;
    fresh.customer_id = found->customer_id;
    fresh.revoked = found->revoked;
    fresh.account = &balances_.find_or_add(found->customer_id);
    balances_.refresh(*fresh.account, found->balance, before_read);
    fresh.expires = now + seconds(options_.cache_ttl_s);
  }
  auth_result result = from_entry(fresh);
  insert(cache, d, std::move(fresh), now);
  return result;
}

std::uint64_t authenticator::store_lookups() const {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) total += shards_[i].lookups.load(std::memory_order_relaxed);
  return total;
}

}  // namespace gatewayz::auth
