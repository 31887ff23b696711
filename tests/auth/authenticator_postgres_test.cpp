// The authenticator across a real PostgreSQL outage: cached keys keep
// working, unknown ones are `unavailable` (503, not 401), the store's error
// messages never carry the key, and lookups resume when the server returns.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "auth/authenticator.hpp"
#include "store/open_store.hpp"
#include "support/postgres_server.hpp"

namespace {

namespace auth = gatewayz::auth;
namespace store = gatewayz::store;
using auth::auth_status;
using namespace std::chrono_literals;

TEST(AuthenticatorWithPostgres, ADatabaseOutageServesCachedKeysAndNeverLeaksOne) {
  gatewayz::test_support::postgres_server server;  // our own: this test stops it
  auto db = store::open_store(server.create_database(), nullptr);
  db->migrate();
  const auto customer = db->create_customer("acme", store::nanos_per_usd);
  const auto cached_key = db->create_key(customer.id);
  const auto uncached_key = db->create_key(customer.id);

  std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
  std::vector<std::string> errors;
  auth::customer_balances balances;
  auth::authenticator authn{*db,
                            balances,
                            auth::auth_options{},
                            1,
                            nullptr,
                            [&] { return now; },
                            [&](std::string_view m) { errors.emplace_back(m); }};
  ASSERT_EQ(authn.authenticate(0, "Bearer " + cached_key.secret).status, auth_status::ok);

  server.stop();
  now += 31s;  // the cached entry has expired: its refresh fails
  EXPECT_EQ(authn.authenticate(0, "Bearer " + cached_key.secret).status, auth_status::ok);
  const auto refused = authn.authenticate(0, "Bearer " + uncached_key.secret);
  EXPECT_EQ(refused.status, auth_status::unavailable);
  EXPECT_EQ(auth::http_status(refused.status), 503U);
  ASSERT_GE(errors.size(), 2U);
  for (const auto& e : errors) {
    EXPECT_EQ(e.find(cached_key.secret), std::string::npos) << e;
    EXPECT_EQ(e.find(uncached_key.secret), std::string::npos) << e;
  }

  server.start();
  now += 2s;  // past the retry pause
  EXPECT_EQ(authn.authenticate(0, "Bearer " + uncached_key.secret).status, auth_status::ok);
}

}  // namespace
