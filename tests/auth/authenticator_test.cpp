// The authenticator against the real SQLite store (a temporary database),
// with an injected clock for the cache lifetimes.

#include "auth/authenticator.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "store/open_store.hpp"
#include "support/forwarding_store.hpp"
#include "telemetry/catalog.hpp"

namespace {

using namespace gatewayz;
using namespace std::chrono_literals;
using auth::auth_status;

class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "gw-auth-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    real = store::open_store("sqlite://" + dir.file("gatewayz.db"), nullptr);
    real->migrate();
    counting = std::make_unique<test::forwarding_store>(*real);
    customer = real->create_customer("acme", 5 * store::nanos_per_usd);
    key = real->create_key(customer.id);
  }

  auth::authenticator make(std::size_t shards = 1, telemetry::catalog* metrics = nullptr) {
    auth::auth_options options;
    options.cache_ttl_s = 30;
    options.negative_ttl_s = 5;
    return auth::authenticator{*counting,
                               balances,
                               options,
                               shards,
                               metrics,
                               [this] { return now; },
                               [this](std::string_view m) { store_errors.emplace_back(m); }};
  }

  // A ledger row of this run: what the ledger writer reports once committed.
  store::ledger_row committed_row(std::int64_t customer_id, store::nanos_usd cost) const {
    store::ledger_row row;
    row.customer_id = customer_id;
    row.cost = cost;
    row.unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    return row;
  }
  // Charges `cost` as a served request does: reserve nothing, settle the cost.
  static void charge(const auth::auth_result& caller, store::nanos_usd cost) {
    ASSERT_NE(caller.account, nullptr);
    auth::customer_balances::settle(*caller.account, 0, cost);
  }

  temp_dir dir;
  auth::customer_balances balances;
  std::unique_ptr<store::store> real;
  std::unique_ptr<test::forwarding_store> counting;
  store::customer customer;
  store::created_key key;
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  std::vector<std::string> store_errors;
};

TEST_F(AuthenticatorTest, AValidKeyIsAcceptedAsBearerOrBare) {
  auto authn = make();
  const auto result = authn.authenticate(0, "Bearer " + key.secret);
  ASSERT_EQ(result.status, auth_status::ok) << auth::to_string(result.status);
  EXPECT_EQ(result.key_id, key.info.id);
  EXPECT_EQ(result.customer_id, customer.id);
  EXPECT_EQ(result.balance, 5 * store::nanos_per_usd);
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(authn.authenticate(0, key.secret).status, auth_status::ok);  // x-api-key
  EXPECT_EQ(authn.authenticate(0, "bearer   " + key.secret + "  ").status, auth_status::ok);
}

TEST_F(AuthenticatorTest, MissingMalformedAndUnknownKeysAreRefused) {
  auto authn = make();
  EXPECT_EQ(authn.authenticate(0, "").status, auth_status::missing);
  EXPECT_EQ(authn.authenticate(0, "Bearer ").status, auth_status::missing);
  EXPECT_EQ(authn.authenticate(0, "Basic dXNlcjpwYXNz").status, auth_status::invalid);
  EXPECT_EQ(authn.authenticate(0, "Bearer two words").status, auth_status::invalid);
  EXPECT_EQ(authn.authenticate(0, "Bearer gwz_not_a_real_key").status, auth_status::invalid);
  // A key differing in its last character only is a different key.
  std::string near_miss = key.secret;
  near_miss.back() = near_miss.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(authn.authenticate(0, near_miss).status, auth_status::invalid);
  EXPECT_EQ(auth::http_status(auth_status::invalid), 401U);
  EXPECT_EQ(auth::http_status(auth_status::insufficient_quota), 402U);
  EXPECT_EQ(auth::http_status(auth_status::unavailable), 503U);
}

TEST_F(AuthenticatorTest, ACacheHitDoesNotQueryTheStore) {
  telemetry::registry reg{2};
  telemetry::catalog metrics{reg, "test"};
  auto authn = make(2, &metrics);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(authn.authenticate(0, "Bearer " + key.secret).status, auth_status::ok);
  EXPECT_EQ(counting->find_key_calls.load(), 1);
  EXPECT_EQ(authn.store_lookups(), 1U);
  EXPECT_EQ(metrics.api_key_cache_hits.series().value(), 99.0);
  EXPECT_EQ(metrics.api_key_cache_misses.series().value(), 1.0);
  // Each shard has its own cache.
  ASSERT_EQ(authn.authenticate(1, "Bearer " + key.secret).status, auth_status::ok);
  EXPECT_EQ(counting->find_key_calls.load(), 2);
  // Unknown keys are cached too, for the shorter negative lifetime.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(authn.authenticate(0, "gwz_unknown").status, auth_status::invalid);
  EXPECT_EQ(counting->find_key_calls.load(), 3);
  now += 6s;
  EXPECT_EQ(authn.authenticate(0, "gwz_unknown").status, auth_status::invalid);
  EXPECT_EQ(counting->find_key_calls.load(), 4);
}

TEST_F(AuthenticatorTest, ARevokedKeyIsRefusedOnceTheCacheEntryExpires) {
  auto authn = make();
  ASSERT_EQ(authn.authenticate(0, key.secret).status, auth_status::ok);
  ASSERT_TRUE(real->revoke_key(key.info.id));
  now += 29s;
  EXPECT_EQ(authn.authenticate(0, key.secret).status, auth_status::ok) << "still within the cache lifetime";
  now += 2s;
  const auto result = authn.authenticate(0, key.secret);
  EXPECT_EQ(result.status, auth_status::revoked);
  EXPECT_EQ(auth::http_status(result.status), 401U);
  // A fresh authenticator sees the revocation at once.
  EXPECT_EQ(make().authenticate(0, key.secret).status, auth_status::revoked);
}

TEST_F(AuthenticatorTest, AnEmptyBalanceIsInsufficientQuota) {
  const auto broke = real->create_customer("broke", 0);
  const auto broke_key = real->create_key(broke.id);
  auto authn = make();
  const auto result = authn.authenticate(0, "Bearer " + broke_key.secret);
  EXPECT_EQ(result.status, auth_status::insufficient_quota);
  EXPECT_EQ(result.customer_id, broke.id);
  // Credit arrives: seen after the entry expires.
  real->credit(broke.id, store::nanos_per_usd);
  now += 31s;
  EXPECT_EQ(authn.authenticate(0, "Bearer " + broke_key.secret).status, auth_status::ok);
}

TEST_F(AuthenticatorTest, LocalChargesRefuseACustomerBeforeTheDatabaseIsDebited) {
  auto authn = make(2);
  const auto first = authn.authenticate(0, key.secret);
  ASSERT_EQ(first.status, auth_status::ok);
  ASSERT_EQ(authn.authenticate(1, key.secret).status, auth_status::ok);
  charge(first, 3 * store::nanos_per_usd);
  auto result = authn.authenticate(1, key.secret);  // another shard sees the charge
  ASSERT_EQ(result.status, auth_status::ok);
  EXPECT_EQ(result.balance, 2 * store::nanos_per_usd);
  charge(result, 2 * store::nanos_per_usd);
  result = authn.authenticate(0, key.secret);
  EXPECT_EQ(result.status, auth_status::insufficient_quota);
  EXPECT_EQ(result.balance, 0);
  EXPECT_EQ(counting->find_key_calls.load(), 2) << "refused from the cache, without a store round trip";
  EXPECT_EQ(real->find_customer("acme")->balance, 5 * store::nanos_per_usd) << "the database is the ledger's job";
}

TEST_F(AuthenticatorTest, ARefreshNeverForgetsChargesTheLedgerHasNotCommitted) {
  auto authn = make(2);
  const auto caller = authn.authenticate(0, key.secret);
  ASSERT_TRUE(caller.ok());
  charge(caller, 3 * store::nanos_per_usd);
  // The other shard's first lookup, and a refresh after the TTL, read the
  // database, which does not hold the charge yet (the ledger's lag).
  EXPECT_EQ(authn.authenticate(1, key.secret).balance, 2 * store::nanos_per_usd);
  now += 31s;
  EXPECT_EQ(authn.authenticate(0, key.secret).balance, 2 * store::nanos_per_usd);

  // The ledger commits the row: the database and the report agree again.
  real->credit(customer.id, -3 * store::nanos_per_usd);
  const std::vector<store::ledger_row> rows{committed_row(customer.id, 3 * store::nanos_per_usd)};
  balances.committed(rows);
  EXPECT_EQ(authn.authenticate(0, key.secret).balance, 2 * store::nanos_per_usd) << "cached: unchanged";
  now += 31s;
  EXPECT_EQ(authn.authenticate(1, key.secret).balance, 2 * store::nanos_per_usd) << "not subtracted twice";

  // Credit added by an operator is seen at the next refresh.
  real->credit(customer.id, store::nanos_per_usd);
  now += 31s;
  EXPECT_EQ(authn.authenticate(0, key.secret).balance, 3 * store::nanos_per_usd);
}

TEST_F(AuthenticatorTest, AChargeCommittedDuringARefreshsReadIsNotCountedAsRead) {
  auto authn = make(1);
  const auto caller = authn.authenticate(0, key.secret);
  ASSERT_TRUE(caller.ok());
  charge(caller, store::nanos_per_usd);
  // The ledger commits while the store lookup runs: the read may or may not
  // hold the row, so the refresh keeps the estimate rather than guess.
  counting->on_find_key = [&] {
    real->credit(customer.id, -store::nanos_per_usd);
    const std::vector<store::ledger_row> rows{committed_row(customer.id, store::nanos_per_usd)};
    balances.committed(rows);
  };
  now += 31s;
  EXPECT_EQ(authn.authenticate(0, key.secret).balance, 4 * store::nanos_per_usd);
  counting->on_find_key = nullptr;
  now += 31s;
  EXPECT_EQ(authn.authenticate(0, key.secret).balance, 4 * store::nanos_per_usd);
}

TEST_F(AuthenticatorTest, AnEarlierRunsSpilledRowsAreNotTakenForThisRunsCharges) {
  auto authn = make(1);
  ASSERT_TRUE(authn.authenticate(0, key.secret).ok());
  // A row from before this process started, replayed from a spill file:
  // the database is debited, and the next read shows it.
  real->credit(customer.id, -store::nanos_per_usd);
  auto old = committed_row(customer.id, store::nanos_per_usd);
  old.unix_ms -= 3'600'000;
  balances.committed(std::vector<store::ledger_row>{old});
  now += 31s;
  EXPECT_EQ(authn.authenticate(0, key.secret).balance, 4 * store::nanos_per_usd);
}

TEST_F(AuthenticatorTest, AStoreOutageServesCachedKeysAndRefusesUnknownOnesAsUnavailable) {
  auto authn = make();
  ASSERT_EQ(authn.authenticate(0, key.secret).status, auth_status::ok);
  counting->down = true;
  now += 31s;  // expired: a refresh is attempted and fails
  EXPECT_EQ(authn.authenticate(0, key.secret).status, auth_status::ok);
  const int calls = counting->find_key_calls.load();
  EXPECT_EQ(authn.authenticate(0, key.secret).status, auth_status::ok);
  EXPECT_EQ(counting->find_key_calls.load(), calls) << "the failing store is given a rest";

  const auto other = real->create_key(customer.id);
  EXPECT_EQ(authn.authenticate(0, other.secret).status, auth_status::unavailable);
  ASSERT_FALSE(store_errors.empty());
  counting->down = false;
  now += 2s;
  EXPECT_EQ(authn.authenticate(0, other.secret).status, auth_status::ok);
}

TEST_F(AuthenticatorTest, KeysNeverAppearInMessages) {
  auto authn = make();
  counting->down = true;
  EXPECT_EQ(authn.authenticate(0, "Bearer " + key.secret).status, auth_status::unavailable);
  counting->down = false;
  std::vector<std::string> texts = store_errors;
  for (auto status : {auth_status::ok, auth_status::missing, auth_status::invalid, auth_status::revoked,
                      auth_status::insufficient_quota, auth_status::unavailable}) {
    texts.emplace_back(auth::message(status));
    texts.emplace_back(auth::error_code(status));
    texts.emplace_back(auth::to_string(status));
  }
  ASSERT_FALSE(store_errors.empty());
  const std::string random_part = key.secret.substr(key.info.prefix.size());
  for (const auto& text : texts) {
    EXPECT_EQ(text.find(key.secret), std::string::npos) << text;
    EXPECT_EQ(text.find(random_part.substr(0, 12)), std::string::npos) << text;
  }
}

TEST_F(AuthenticatorTest, ShardsAuthenticateConcurrently) {
  constexpr std::size_t shards = 4;
  auto authn = make(shards);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (std::size_t shard = 0; shard < shards; ++shard) {
    threads.emplace_back([&, shard] {
      for (int i = 0; i < 2000; ++i) {
        const auto caller = authn.authenticate(shard, "Bearer " + key.secret);
        if (!caller.ok() || !auth::customer_balances::reserve(*caller.account, 2)) {
          ++failures;
          continue;
        }
        auth::customer_balances::settle(*caller.account, 2, 1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(authn.authenticate(0, key.secret).balance, 5 * store::nanos_per_usd - 8000);
  EXPECT_EQ(counting->find_key_calls.load(), static_cast<int>(shards));
}

}  // namespace
