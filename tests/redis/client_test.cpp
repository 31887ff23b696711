// The Redis client against a real redis-server (tests/support/redis_server).

#include "redis/client.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "redis/client_set.hpp"
#include "redis/url.hpp"
#include "support/redis_server.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::redis {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test_support::redis_server;
using test_support::redis_server_options;

// Runs `work` on `io` until it finishes (the client keeps timers armed, so
// io.run() would not return by itself).
template <class T>
T run(asio::io_context& io, asio::awaitable<T> work, std::chrono::milliseconds limit = 10s) {
  std::optional<T> out;
  asio::co_spawn(io, std::move(work), [&](std::exception_ptr e, T value) {
    if (e) std::rethrow_exception(e);
    out = std::move(value);
  });
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!out && std::chrono::steady_clock::now() < give_up) io.run_one_for(10ms);
  if (!out) throw std::runtime_error("the coroutine did not finish in time");
  return std::move(*out);
}

void spin(asio::io_context& io, std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) io.run_one_for(5ms);
}

// Spins the io_context until `ready` holds (or fails the test after `limit`).
template <class F>
bool spin_until(asio::io_context& io, F ready, std::chrono::milliseconds limit = 10s) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!ready()) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    io.run_one_for(5ms);
  }
  return true;
}

asio::awaitable<result> cmd(client& c, std::vector<std::string> args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  const std::span<const std::string_view> span(views);
  result r = co_await c.command(span);
  co_return r;
}

std::string fmt_url(const std::string& user, const std::string& password, std::uint16_t port) {
  std::string escaped;
  for (const char ch : password) escaped += ch == ' ' ? std::string("%20") : std::string(1, ch);
  return "redis://" + user + ":" + escaped + "@127.0.0.1:" + std::to_string(port) + "/0";
}

client_options options_for(const std::string& url, std::chrono::milliseconds timeout = 500ms) {
  client_options o;
  std::string error;
  EXPECT_TRUE(parse_url(url, o.server, error)) << error;
  o.timeout = timeout;
  o.reconnect_min = 20ms;
  o.reconnect_max = 200ms;
  return o;
}

TEST(RedisUrl, ParsesEveryPart) {
  endpoint e;
  std::string error;
  ASSERT_TRUE(parse_url("redis://cache.internal", e, error)) << error;
  EXPECT_EQ(e.host, "cache.internal");
  EXPECT_EQ(e.port, 6379);
  EXPECT_EQ(e.database, 0);
  EXPECT_TRUE(e.password.empty());

  ASSERT_TRUE(parse_url("redis://:s%40cret@10.0.0.5:6380/3", e, error)) << error;
  EXPECT_EQ(e.host, "10.0.0.5");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.password, "s@cret");
  EXPECT_TRUE(e.username.empty());
  EXPECT_EQ(e.database, 3);

  ASSERT_TRUE(parse_url("redis://app:pa:ss@[::1]:7000/12", e, error)) << error;
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, 7000);
  EXPECT_EQ(e.username, "app");
  EXPECT_EQ(e.password, "pa:ss");
  EXPECT_EQ(e.database, 12);

  ASSERT_TRUE(parse_url("redis://pass@host/", e, error)) << error;
  EXPECT_EQ(e.password, "pass");
  EXPECT_EQ(e.database, 0);
}

TEST(RedisUrl, RejectsBadUrlsWithoutEchoingThePassword) {
  const char* bad[] = {"http://host",
                       "rediss://:topsecret@host",
                       "redis://:topsecret@",
                       "redis://:topsecret@host:0",
                       "redis://:topsecret@host:99999",
                       "redis://:topsecret@host:abc",
                       "redis://:topsecret@host/x",
                       "redis://:topsecret@host/-1",
                       "redis://:top%zzsecret@host",
                       "redis://user:@host",
                       "redis://:topsecret@[::1/0"};
  for (const char* url : bad) {
    endpoint e;
    std::string error;
    EXPECT_FALSE(parse_url(url, e, error)) << url;
    EXPECT_FALSE(error.empty()) << url;
    EXPECT_EQ(error.find("topsecret"), std::string::npos) << error;
  }
}

class RedisClient : public ::testing::Test {
 protected:
  telemetry::registry reg{2};
  telemetry::catalog metrics{reg, "test"};
  asio::io_context io{1};
};

TEST_F(RedisClient, SetsAndGetsBinaryValuesAndEveryReplyKind) {
  redis_server server;
  client c(io, options_for(server.url()), &metrics, 1);
  const std::string value("a\0b\r\n$3\r\nzz", 12);
  result set = run(io, cmd(c, {"SET", "k", value}));
  ASSERT_EQ(set.status, outcome::ok);
  EXPECT_EQ(set.value.type, reply::kind::status);
  EXPECT_EQ(set.value.text, "OK");

  result get = run(io, cmd(c, {"get", "k"}));
  ASSERT_EQ(get.status, outcome::ok);
  EXPECT_EQ(get.value.type, reply::kind::string);
  EXPECT_EQ(get.value.text, value);

  result missing = run(io, cmd(c, {"GET", "nope"}));
  ASSERT_EQ(missing.status, outcome::ok);
  EXPECT_EQ(missing.value.type, reply::kind::nil);

  result incr = run(io, cmd(c, {"INCRBY", "n", "41"}));
  ASSERT_EQ(incr.status, outcome::ok);
  EXPECT_EQ(incr.value.type, reply::kind::integer);
  EXPECT_EQ(incr.value.integer, 41);

  ASSERT_TRUE(run(io, cmd(c, {"HSET", "h", "f1", "v1", "f2", "v2"})).ok());
  result all = run(io, cmd(c, {"HGETALL", "h"}));
  ASSERT_EQ(all.status, outcome::ok);
  ASSERT_EQ(all.value.type, reply::kind::array);
  ASSERT_EQ(all.value.elements.size(), 4U);
  EXPECT_EQ(all.value.elements[0].text, "f1");

  result wrong = run(io, cmd(c, {"INCR", "k"}));
  EXPECT_EQ(wrong.status, outcome::server_error);
  EXPECT_EQ(wrong.value.type, reply::kind::error);
  EXPECT_NE(wrong.value.text.find("ERR"), std::string::npos);
  EXPECT_TRUE(c.connected());

  // Both metric name sets: the operation label is the command in lower case.
  EXPECT_EQ(metrics.redis_operations.series({"set", "success"}).value(), 1);
  EXPECT_EQ(metrics.redis_operations.series({"get", "success"}).value(), 2);
  EXPECT_EQ(metrics.redis_operations.series({"incr", "error"}).value(), 1);
  EXPECT_EQ(metrics.redis_get_operations.series({"success"}).value(), 2);
  EXPECT_EQ(metrics.redis_set_operations.series({"success"}).value(), 1);
  EXPECT_EQ(metrics.redis_hset_operations.series({"success"}).value(), 1);
  EXPECT_EQ(metrics.redis_operation_duration.series({"get"}).count(), 2U);
  EXPECT_EQ(metrics.redis_duration_plain.series({"hgetall"}).count(), 1U);
  EXPECT_EQ(metrics.redis_pool_max.series().value(), 2);
  ASSERT_TRUE(spin_until(io, [&] { return metrics.redis_pool_connections.series({"idle"}).value() == 2; }));
  EXPECT_EQ(metrics.redis_pool_connections.series({"idle"}).value() +
                metrics.redis_pool_connections.series({"active"}).value(),
            2);
  EXPECT_EQ(metrics.redis_pool_current.series({"active"}).value(), 0);
  const std::string text = reg.render_text();
  EXPECT_NE(text.find("gatewayz_redis_operations_total{operation=\"get\",status=\"success\"} 2"), std::string::npos);
  EXPECT_NE(text.find("redis_pool_connections_max 2"), std::string::npos);
}

TEST_F(RedisClient, PipelinesCommandsAndKeepsTheirOrder) {
  redis_server server;
  client c(io, options_for(server.url()), &metrics, 0);
  std::vector<std::vector<std::string_view>> commands;
  for (int i = 0; i < 200; ++i) commands.push_back({"INCR", "counter"});
  commands.push_back({"GET", "counter"});
  auto replies = run(io, c.pipeline(commands));
  ASSERT_EQ(replies.size(), 201U);
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(replies[i].status, outcome::ok);
    EXPECT_EQ(replies[i].value.integer, i + 1);
  }
  EXPECT_EQ(replies[200].value.text, "200");

  // Many coroutines at once share the two connections.
  int done = 0;
  for (int i = 0; i < 100; ++i) {
    asio::co_spawn(io, cmd(c, {"INCR", "many"}), [&](std::exception_ptr, result r) { done += r.ok() ? 1 : 0; });
  }
  ASSERT_TRUE(spin_until(io, [&] { return done == 100; }));
  EXPECT_EQ(server.cli("GET many"), "100");
}

TEST_F(RedisClient, AuthenticatesAndSelectsTheDatabase) {
  redis_server server(redis_server_options{"s3cret pass"});
  {
    auto o = options_for(server.url(5));
    client c(io, o, &metrics, 0);
    ASSERT_TRUE(run(io, cmd(c, {"SET", "where", "db5"})).ok());
    EXPECT_EQ(server.cli("-n 5 GET where"), "db5");
    EXPECT_EQ(server.cli("-n 0 EXISTS where"), "0");
  }
  {
    // redis://user:password@... sends AUTH user password (the default user here).
    auto o = options_for(fmt_url("default", "s3cret pass", server.port()));
    client c(io, o, &metrics, 0);
    result r = run(io, cmd(c, {"GET", "where"}));
    ASSERT_EQ(r.status, outcome::ok);
    EXPECT_EQ(r.value.type, reply::kind::nil);  // database 0
  }
  {
    auto o = options_for(fmt_url("", "wrong", server.port()), 300ms);
    client c(io, o, &metrics, 0);
    result r = run(io, cmd(c, {"GET", "where"}));
    EXPECT_NE(r.status, outcome::ok);
    spin(io, 100ms);
    EXPECT_FALSE(c.connected());
  }
}

TEST_F(RedisClient, FailsFastWhileDownAndReconnects) {
  redis_server server;
  client c(io, options_for(server.url(), 300ms), &metrics, 0);
  ASSERT_TRUE(run(io, cmd(c, {"SET", "a", "1"})).ok());
  server.stop();
  // The first command may find the connection just reset or still open.
  for (int i = 0; i < 5; ++i) {
    const auto started = std::chrono::steady_clock::now();
    result r = run(io, cmd(c, {"GET", "a"}));
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_NE(r.status, outcome::ok);
    EXPECT_LT(took, 300ms + 100ms);
    spin(io, 20ms);
  }
  EXPECT_FALSE(c.connected());
  EXPECT_GE(metrics.redis_operations.series({"get", "error"}).value(), 5);
  EXPECT_EQ(metrics.redis_pool_connections.series({"idle"}).value(), 0);

  server.start();
  ASSERT_TRUE(spin_until(
      io, [&] { return c.connected(); }, 5s));
  EXPECT_TRUE(run(io, cmd(c, {"SET", "a", "2"})).ok());
  EXPECT_EQ(server.cli("GET a"), "2");
}

TEST_F(RedisClient, TimesOutOnAFrozenServerAndRecovers) {
  redis_server server;
  client c(io, options_for(server.url(), 150ms), &metrics, 0);
  ASSERT_TRUE(run(io, cmd(c, {"SET", "a", "1"})).ok());
  server.pause();
  const auto started = std::chrono::steady_clock::now();
  result r = run(io, cmd(c, {"GET", "a"}));
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(r.status, outcome::timeout);
  EXPECT_GE(took, 140ms);
  EXPECT_LT(took, 150ms + 60ms);
  // Reconnecting to a frozen server times out too, within the same bound.
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    result again = run(io, cmd(c, {"GET", "a"}));
    EXPECT_NE(again.status, outcome::ok);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 150ms + 60ms);
  }
  server.resume();
  ASSERT_TRUE(spin_until(
      io, [&] { return c.connected(); }, 5s));
  result back = run(io, cmd(c, {"GET", "a"}));
  ASSERT_EQ(back.status, outcome::ok);
  EXPECT_EQ(back.value.text, "1");
}

TEST_F(RedisClient, CloseCompletesPendingCommandsAsUnavailable) {
  redis_server server;
  auto c = std::make_unique<client>(io, options_for(server.url(), 2000ms), &metrics, 0);
  ASSERT_TRUE(run(io, cmd(*c, {"SET", "a", "1"})).ok());
  server.pause();
  std::optional<result> pending;
  asio::co_spawn(io, cmd(*c, {"GET", "a"}), [&](std::exception_ptr, result r) { pending = std::move(r); });
  spin(io, 30ms);
  ASSERT_FALSE(pending);
  c.reset();
  ASSERT_TRUE(spin_until(
      io, [&] { return pending.has_value(); }, 1s));
  EXPECT_EQ(pending->status, outcome::unavailable);
  server.resume();
}

TEST_F(RedisClient, ClientSetGivesEachShardItsOwnClientForTheLeaseLifetime) {
  redis_server server;
  client_set set(options_for(server.url()), &metrics, 2);
  EXPECT_EQ(set.for_shard(0), nullptr);
  auto lease = set.attach(1, io);
  ASSERT_EQ(set.for_shard(1), lease.get());
  EXPECT_EQ(set.for_shard(0), nullptr);
  ASSERT_TRUE(run(io, cmd(*set.for_shard(1), {"PING"})).ok());
  EXPECT_EQ(metrics.redis_operations.series({"ping", "success"}).value(), 1);
  lease.reset();
  EXPECT_EQ(set.for_shard(1), nullptr);
  EXPECT_THROW((void)set.attach(2, io), std::out_of_range);
}

}  // namespace
}  // namespace gatewayz::redis
