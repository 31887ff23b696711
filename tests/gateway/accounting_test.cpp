// Keys, credits, the ledger and /models/stats through the real request path,
// against a real SQLite store in a temporary directory.

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/co_spawn.hpp>

#include "harness.hpp"
#include "store/store.hpp"

namespace gatewayz::test {
namespace {

class AccountingTest : public GatewayTest {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("gw_accounting_" + std::to_string(getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    GatewayTest::TearDown();
    std::filesystem::remove_all(dir_);
  }

  // A SQLite store in the test's directory, a ledger flushed every 50 ms and
  // keys re-read after 0.2 s.
  config::gateway_config with_store(config::gateway_config cfg) {
    cfg.storage.url = "sqlite://" + (dir_ / "gatewayz.db").string();
    cfg.storage.spill_path = (dir_ / "ledger.spill").string();
    if (cfg.storage.flush_interval_ms == config::storage_config{}.flush_interval_ms) cfg.storage.flush_interval_ms = 50;
    cfg.auth.key_cache_ttl_s = 0.2;
    return cfg;
  }
  store::store& store() { return *gateway_->app().store(); }
  ledger::ledger_writer& ledger() { return *gateway_->app().ledger(); }

  // alpha serves gpt-4o-mini at $2 / $8 per million tokens (whole numbers, so
  // expected costs are exact integers of nano-dollars).
  config::gateway_config keyed(const mock::mock_provider& m) {
    auto cfg = one_provider(m);
    cfg.providers[0].models[0].input_per_million = 2;
    cfg.providers[0].models[0].output_per_million = 8;
    cfg.auth.mode = "keys";
    cfg.auth.admin_key = "admin-secret";
    cfg.storage.stats_cache_s = 0;
    return cfg;
  }
  std::string new_key(std::string_view customer, store::nanos_usd credit) {
    auto c = store().find_customer(customer);
    if (!c) c = store().create_customer(customer, credit);
    return store().create_key(c->id).secret;
  }
  static header_list bearer(const std::string& key) { return {{"Authorization", "Bearer " + key}}; }
  static std::int64_t cost_of(const reply& r) {
    const auto doc = r.json();
    const auto& usage = doc.at("usage");
    return usage.at("prompt_tokens").as_int64() * 2 * 1000 + usage.at("completion_tokens").as_int64() * 8 * 1000;
  }
  // Waits for the ledger to hold `rows` rows (the writer flushes every 50 ms).
  void wait_for_ledger(std::int64_t rows) {
    const auto deadline = clock_type::now() + 5s;
    while (store().count_ledger_rows() < rows && clock_type::now() < deadline) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(store().count_ledger_rows(), rows);
  }

  std::filesystem::path dir_;
};

TEST_F(AccountingTest, KeysAreRequiredAndRefusalsUseOpenAiErrors) {
  auto& m = add_mock();
  start_gateway(with_store(keyed(m)));
  const auto key = new_key("acme", 10 * store::nanos_per_usd);

  expect_openai_error(post("/v1/chat/completions", chat_body), 401, "invalid_api_key");
  expect_openai_error(post("/v1/chat/completions", chat_body, bearer("gwz_not_a_real_key")), 401, "invalid_api_key");
  expect_openai_error(get("/v1/models"), 401, "invalid_api_key");
  const auto ok = post("/v1/chat/completions", chat_body, bearer(key));
  EXPECT_EQ(ok.status, 200U) << ok.body;
  // x-api-key works as well (Anthropic-style clients).
  EXPECT_EQ(post("/v1/chat/completions", chat_body, {{"x-api-key", key}}).status, 200U);
  // Nothing that was refused reached the provider.
  EXPECT_EQ(m.stats().requests, 2U);

  // A key never shows up in an error or in the metrics.
  const auto wrong = post("/v1/chat/completions", chat_body, bearer(key + "x"));
  EXPECT_EQ(wrong.body.find(key), std::string::npos);
  EXPECT_EQ(get("/metrics").body.find(key), std::string::npos);
}

TEST_F(AccountingTest, RevokedKeyIsRefusedWithinTheCacheTtl) {
  auto& m = add_mock();
  start_gateway(with_store(keyed(m)));
  const auto key = new_key("acme", 10 * store::nanos_per_usd);
  ASSERT_EQ(post("/v1/chat/completions", chat_body, bearer(key)).status, 200U);

  const header_list admin{{"Authorization", "Bearer admin-secret"}};
  const auto keys = get("/admin/keys", admin);
  ASSERT_EQ(keys.status, 200U) << keys.body;
  const auto listing = keys.json();
  const auto id = listing.at("keys").as_array().at(0).at("id").as_int64();
  EXPECT_EQ(keys.body.find(key), std::string::npos) << "listings never show a key";
  ASSERT_EQ(post("/admin/keys/" + std::to_string(id) + "/revoke", "", admin).status, 200U);

  std::this_thread::sleep_for(300ms);  // > auth.key_cache_ttl_s
  expect_openai_error(post("/v1/chat/completions", chat_body, bearer(key)), 401, "invalid_api_key");
}

TEST_F(AccountingTest, CustomerWithoutCreditGets402UntilCredited) {
  auto& m = add_mock();
  start_gateway(with_store(keyed(m)));
  const auto key = new_key("broke", 0);
  const auto refused = post("/v1/chat/completions", chat_body, bearer(key));
  expect_openai_error(refused, 402, "insufficient_quota");
  EXPECT_EQ(refused.json().at("error").at("type").as_string(), "insufficient_quota");

  const header_list admin{{"Authorization", "Bearer admin-secret"}};
  const auto credited = post("/admin/customers/broke/credit", R"({"amount_usd":"0.50"})", admin);
  ASSERT_EQ(credited.status, 200U) << credited.body;
  EXPECT_EQ(credited.json().at("balance_usd").as_string(), "0.50");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(post("/v1/chat/completions", chat_body, bearer(key)).status, 200U);
}

TEST_F(AccountingTest, ACreditThroughTheAdminApiIsUsableAtOnce) {
  auto& m = add_mock();
  auto cfg = with_store(keyed(m));
  cfg.auth.key_cache_ttl_s = 600;  // no refresh from the database during the test
  start_gateway(std::move(cfg));
  const auto key = new_key("topped", 0);
  // Both server threads cache the key with no credit.
  for (int i = 0; i < 4; ++i)
    expect_openai_error(post("/v1/chat/completions", chat_body, bearer(key)), 402, "insufficient_quota");
  const header_list admin{{"Authorization", "Bearer admin-secret"}};
  const auto credited = post("/admin/customers/topped/credit", R"({"amount_usd":"1.00"})", admin);
  ASSERT_EQ(credited.status, 200U) << credited.body;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(post("/v1/chat/completions", chat_body, bearer(key)).status, 200U) << i;
  // Taking the credit away is seen at once too.
  ASSERT_EQ(post("/admin/customers/topped/credit", R"({"amount_usd":"-1.00"})", admin).status, 200U);
  wait_for_ledger(4);
  expect_openai_error(post("/v1/chat/completions", chat_body, bearer(key)), 402, "insufficient_quota");
}

TEST_F(AccountingTest, SpendingTheLastCreditRefusesTheNextRequestAtOnce) {
  auto& m = add_mock();
  auto cfg = keyed(m);
  // $1000 per million output tokens: 16 tokens cost 0.016 USD.
  cfg.providers[0].models[0].output_per_million = 1000;
  start_gateway(with_store(std::move(cfg)));
  const std::string limited =
      R"({"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hello there"}]})";
  // Exactly one reservation: 11 input tokens estimated (42 bytes of
  // messages / 4) at $2/M, and 16 output tokens at $1000/M.
  const auto key = new_key("tiny", 11 * 2000 + 16 * 1'000'000);
  ASSERT_EQ(post("/v1/chat/completions", limited, bearer(key)).status, 200U);
  // Refused at once, on either server thread, although the ledger may not
  // have debited the database yet.
  for (int i = 0; i < 4; ++i) {
    const auto refused = post("/v1/chat/completions", limited, bearer(key));
    expect_openai_error(refused, 402, "insufficient_quota");
  }
  EXPECT_EQ(m.stats().requests, 1U);
}

TEST_F(AccountingTest, EveryAcceptedRequestIsInTheLedgerAndDebitedExactly) {
  auto& m = add_mock();
  start_gateway(with_store(keyed(m)));
  const store::nanos_usd credit = 10 * store::nanos_per_usd;
  const auto key = new_key("acme", credit);

  std::set<std::string> ids;
  std::int64_t spent = 0;
  for (int i = 0; i < 6; ++i) {
    const auto r = post("/v1/chat/completions", chat_body, bearer(key));
    ASSERT_EQ(r.status, 200U) << r.body;
    ids.insert(r.header("x-request-id"));
    spent += cost_of(r);
  }
  // A streamed request with usage, and one the provider fails.
  {
    sse_client s(port());
    ASSERT_TRUE(s.start("/v1/chat/completions",
                        R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},)"
                        R"("messages":[{"role":"user","content":"hi"}]})",
                        bearer(key)));
    ids.insert(s.header("x-request-id"));
    const auto events = s.rest();
    for (const auto& e : events) {
      if (e.data.find("\"usage\":{") == std::string::npos) continue;
      const auto usage = json::parse(e.data).at("usage");
      spent += usage.at("prompt_tokens").as_int64() * 2000 + usage.at("completion_tokens").as_int64() * 8000;
    }
  }
  set_failure(m, mock::failure_mode::http_500);
  const auto failed = post("/v1/chat/completions", chat_body, bearer(key));
  ASSERT_EQ(failed.status, 500U);
  ids.insert(failed.header("x-request-id"));
  // Not accepted (malformed): not in the ledger.
  ASSERT_EQ(post("/v1/chat/completions", "{", bearer(key)).status, 400U);

  wait_for_ledger(8);
  for (const auto& id : ids) {
    const auto row = store().find_ledger_row(id);
    ASSERT_TRUE(row.has_value()) << id;
    EXPECT_EQ(row->model, "gpt-4o-mini");
    EXPECT_EQ(row->provider, "alpha");
    EXPECT_TRUE(row->customer_id.has_value());
    EXPECT_TRUE(row->key_id.has_value());
    EXPECT_EQ(row->attempts, 1U);
  }
  const auto failed_row = store().find_ledger_row(failed.header("x-request-id"));
  EXPECT_EQ(failed_row->status, "error");
  EXPECT_EQ(failed_row->http_status, 500U);
  EXPECT_EQ(failed_row->cost, 0);
  const auto customer = store().find_customer("acme");
  ASSERT_TRUE(customer.has_value());
  EXPECT_EQ(customer->balance, credit - spent);
}

TEST_F(AccountingTest, ALedgerBehindTheDatabaseRefusesRequestsInsteadOfLosingTheirRows) {
  // Queues of three rows per shard, and a database another connection holds
  // the write lock on: the writer waits on the lock, the queues fill, and the
  // gateway answers 503 rather than serve requests it could not record.
  auto& m = add_mock();
  auto cfg = one_provider(m);
  cfg.server.threads = 2;
  cfg.storage.flush_interval_ms = 20;
  cfg.storage.queue_capacity = 3;
  start_gateway(with_store(cfg));
  ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  wait_for_ledger(1);

  // Released on every exit, so a failing assertion does not leave the
  // writer waiting out its busy timeout.
  const auto release = [](sqlite3* db) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  };
  std::unique_ptr<sqlite3, decltype(release)> holder(nullptr, release);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "gatewayz.db").string().c_str(), &db), SQLITE_OK);
    holder.reset(db);
  }
  sqlite3_busy_timeout(holder.get(), 5000);  // the writer may be committing right now
  ASSERT_EQ(sqlite3_exec(holder.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::int64_t served = 1;
  std::optional<reply> refused;
  for (int i = 0; i < 40 && !refused; ++i) {
    auto r = post("/v1/chat/completions", chat_body);
    if (r.status == 200U) {
      ++served;
    } else {
      refused = std::move(r);
    }
    std::this_thread::sleep_for(5ms);  // lets the writer take a row and block on the lock
  }
  ASSERT_TRUE(refused.has_value()) << "every request was served while the ledger could not write";
  EXPECT_EQ(refused->status, 503U) << refused->body;
  const auto error = refused->json().at("error");
  EXPECT_EQ(error.at("code").as_string(), "ledger_backlog");
  EXPECT_EQ(error.at("type").as_string(), "api_error");
  {
    const std::string text = get("/metrics").body;
    const std::string name = "\ngatewayz_ledger_backlog_rejected_requests_total ";
    const auto at = text.find(name);
    ASSERT_NE(at, std::string::npos) << text;
    EXPECT_GE(std::stod(text.substr(at + name.size())), 1.0);
  }
  // At most two queues' worth in the flush the writer is stuck on, and two
  // more queued behind it.
  EXPECT_LE(served, 1 + 2 * 3 + 2 * 3);

  holder.reset();
  wait_for_ledger(served);
  EXPECT_EQ(ledger().stats().dropped, 0U);
  // Room again once the writer catches up.
  EXPECT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  wait_for_ledger(served + 1);
}

TEST_F(AccountingTest, AGatewayWithMoreThreadsThanLedgerQueuesIsRefusedAtStart) {
  // Such a thread could record nothing: it would answer every request 503.
  // The composition never builds one; the gateway refuses one handed to it.
  auto& m = add_mock();
  auto cfg = one_provider(m);
  cfg.server.threads = 2;
  app::compose_options not_started;
  not_started.start = false;
  app::gateway_app parts_for_two{with_store(cfg), std::move(not_started)};
  ledger::writer_options options;
  options.spill_path = (dir_ / "one-queue.spill").string();
  ledger::ledger_writer one_queue{*parts_for_two.store(), options, 1, &parts_for_two.metrics()};
  gateway::gateway_parts parts;
  parts.metrics = &parts_for_two.metrics();
  parts.health = &parts_for_two.health();
  parts.providers = parts_for_two.providers();
  parts.store = parts_for_two.store();
  parts.ledger = &one_queue;
  EXPECT_THROW(gateway::gateway(parts_for_two.config(), parts), std::invalid_argument);
}

TEST_F(AccountingTest, AReusedClientRequestIdCannotShadowAnotherRequestsLedgerRow) {
  auto& m = add_mock();
  start_gateway(with_store(keyed(m)));
  const store::nanos_usd credit = store::nanos_per_usd;
  const auto key = new_key("acme", credit);
  auto headers = bearer(key);
  headers.emplace_back("X-Request-ID", "client-trace-1");
  std::int64_t spent = 0;
  for (int i = 0; i < 3; ++i) {
    const auto r = post("/v1/chat/completions", chat_body, headers);
    ASSERT_EQ(r.status, 200U);
    EXPECT_EQ(r.header("x-request-id"), "client-trace-1");  // correlation for the client is kept
    spent += cost_of(r);
  }
  wait_for_ledger(3);  // three rows, not one
  EXPECT_EQ(store().find_customer("acme")->balance, credit - spent);
}

TEST_F(AccountingTest, ModelsStatsReportsTheGuidesShapeFromTheLedger) {
  auto& m = add_mock();
  auto cfg = keyed(m);
  cfg.auth.mode = "none";
  start_gateway(with_store(std::move(cfg)));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  set_failure(m, mock::failure_mode::http_500);
  ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 500U);
  wait_for_ledger(6);

  const auto r = get("/models/stats?time_window=1h");
  ASSERT_EQ(r.status, 200U) << r.body;
  const auto stats = r.json();
  EXPECT_EQ(stats.at("time_window").as_string(), "1h");
  ASSERT_EQ(stats.at("models").as_array().size(), 1U);
  const auto& row = stats.at("models").as_array()[0];
  EXPECT_EQ(row.at("model").as_string(), "gpt-4o-mini");
  EXPECT_EQ(row.at("provider").as_string(), "alpha");
  EXPECT_EQ(row.at("total_requests").to_number<double>(), 6);
  EXPECT_EQ(row.at("successful_requests").to_number<double>(), 5);
  EXPECT_EQ(row.at("failed_requests").to_number<double>(), 1);
  EXPECT_NEAR(row.at("uptime_percentage").to_number<double>(), 83.33, 0.01);
  EXPECT_GT(row.at("total_tokens").to_number<double>(), 0);
  EXPECT_GT(row.at("total_cost_usd").to_number<double>(), 0);
  for (const char* field : {"avg_latency_ms", "p95_latency_ms", "p99_latency_ms"}) {
    EXPECT_GE(row.at(field).to_number<double>(), 0) << field;
  }
  EXPECT_EQ(get("/models/stats").json().at("time_window").as_string(), "24h");
  expect_openai_error(get("/models/stats?time_window=2w"), 400, "invalid_time_window");
}

TEST_F(AccountingTest, ModelsStatsNamesRequestsRefusedByOpenBreakersProviderNone) {
  auto& m = add_mock();
  auto cfg = keyed(m);
  cfg.auth.mode = "none";
  cfg.circuit_breaker.failure_threshold = 1;  // the first 500 opens it
  cfg.circuit_breaker.open_s = 3600;
  cfg.circuit_breaker.max_open_s = 3600;
  set_failure(m, mock::failure_mode::http_500);
  start_gateway(with_store(std::move(cfg)));
  ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 500U);
  // Until the outcome is recorded a second request may still reach alpha.
  int sent = 1;
  int refused = 0;
  while (refused < 2 && sent < 20) {
    const auto r = post("/v1/chat/completions", chat_body);
    ++sent;
    if (r.status == 503U) ++refused;
  }
  ASSERT_EQ(refused, 2);
  wait_for_ledger(sent);

  const auto stats = get("/models/stats?time_window=1h").json();
  std::map<std::string, std::int64_t> requests;  // by provider
  for (const auto& row : stats.at("models").as_array()) {
    EXPECT_EQ(row.at("model").as_string(), "gpt-4o-mini");
    requests[std::string(row.at("provider").as_string())] += row.at("total_requests").to_number<std::int64_t>();
  }
  EXPECT_EQ(requests.count(""), 0U) << json::serialize(stats);
  EXPECT_EQ(requests["none"], 2) << json::serialize(stats);
  EXPECT_EQ(requests["alpha"], sent - 2) << json::serialize(stats);
}

TEST_F(AccountingTest, StatsAndDashboardNeedTheAdminKeyOrTheReadTokenWithKeys) {
  auto& m = add_mock();
  auto cfg = keyed(m);
  cfg.auth.read_token = "read-secret";
  start_gateway(with_store(cfg));
  const header_list admin{{"Authorization", "Bearer admin-secret"}};
  const header_list reader{{"Authorization", "Bearer read-secret"}};
  const auto customer_key = new_key("acme", 1'000'000'000);
  for (const char* path : {"/models/stats", "/health/dashboard"}) {
    SCOPED_TRACE(path);
    expect_openai_error(get(path), 401, "invalid_api_key");
    expect_openai_error(get(path, {{"Authorization", "Bearer nope"}}), 401, "invalid_api_key");
    // A customer's API key is not an operator's.
    expect_openai_error(get(path, bearer(customer_key)), 401, "invalid_api_key");
    EXPECT_EQ(get(path, admin).status, 200U);
    EXPECT_EQ(get(path, reader).status, 200U);
    EXPECT_EQ(get(path, {{"x-admin-key", "read-secret"}}).status, 200U);
  }
  // The read token opens nothing else.
  expect_openai_error(get("/admin/keys", reader), 401, "invalid_api_key");
  expect_openai_error(post("/v1/chat/completions", chat_body, reader), 401, "invalid_api_key");
  // /health and /metrics stay open.
  const auto health = get("/health");
  EXPECT_TRUE(health.status == 200U || health.status == 503U) << health.status;
  EXPECT_NE(health.body.find("\"status\""), std::string::npos) << health.body;
  EXPECT_EQ(get("/metrics").status, 200U);

  // Without a read token only the admin key opens them; an empty token is no token.
  cfg.auth.read_token.clear();
  start_gateway(with_store(cfg));
  expect_openai_error(get("/models/stats", {{"Authorization", "Bearer "}}), 401, "invalid_api_key");
  expect_openai_error(get("/models/stats", {{"x-admin-key", ""}}), 401, "invalid_api_key");
  expect_openai_error(get("/models/stats", reader), 401, "invalid_api_key");
  EXPECT_EQ(get("/models/stats", admin).status, 200U);
}

TEST_F(AccountingTest, AdminApiCreatesCustomersAndKeysBehindTheAdminKey) {
  auto& m = add_mock();
  start_gateway(with_store(keyed(m)));
  const header_list admin{{"Authorization", "Bearer admin-secret"}};
  expect_openai_error(post("/admin/keys", R"({"customer":"new"})"), 401, "invalid_api_key");
  expect_openai_error(post("/admin/keys", R"({"customer":"new"})", {{"Authorization", "Bearer nope"}}), 401,
                      "invalid_api_key");

  const auto created = post("/admin/customers", R"({"name":"globex","credits_usd":"12.5"})", admin);
  ASSERT_EQ(created.status, 201U) << created.body;
  EXPECT_EQ(created.json().at("balance_usd").as_string(), "12.50");
  EXPECT_EQ(post("/admin/customers", R"({"name":"globex"})", admin).status, 409U);
  expect_openai_error(post("/admin/customers", R"({"name":"x","credits_usd":"1.0000000001"})", admin), 400,
                      "invalid_request");

  const auto key = post("/admin/keys", R"({"customer":"globex"})", admin);
  ASSERT_EQ(key.status, 201U) << key.body;
  const std::string secret(key.json().at("key").as_string());
  EXPECT_TRUE(secret.starts_with("gwz_"));
  EXPECT_EQ(post("/v1/chat/completions", chat_body, bearer(secret)).status, 200U);
  const auto customers = get("/admin/customers", admin);
  EXPECT_EQ(customers.status, 200U);
  EXPECT_EQ(customers.body.find(secret), std::string::npos);
  EXPECT_EQ(get("/admin/keys/abc/revoke", admin).status, 405U);
  expect_openai_error(post("/admin/keys/999999/revoke", "", admin), 404, "key_not_found");
}

// Sends `count` copies of one request at once, each on its own connection,
// and returns the HTTP statuses (0 where the exchange failed).
std::vector<unsigned> post_all_at_once(std::uint16_t port, const std::string& body, const header_list& headers,
                                       int count) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace bhttp = boost::beast::http;
  asio::io_context io;
  std::vector<unsigned> statuses(static_cast<std::size_t>(count), 0);
  for (int i = 0; i < count; ++i) {
    auto exchange = [&, i]() -> asio::awaitable<void> {
      beast::tcp_stream stream(co_await asio::this_coro::executor);
      stream.expires_after(60s);
      const asio::ip::tcp::endpoint gateway(asio::ip::make_address("127.0.0.1"), port);
      co_await stream.async_connect(gateway, asio::use_awaitable);
      bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/v1/chat/completions", 11};
      req.set(bhttp::field::host, "127.0.0.1");
      req.set(bhttp::field::content_type, "application/json");
      for (const auto& [name, value] : headers) req.set(name, value);
      req.body() = body;
      req.prepare_payload();
      co_await bhttp::async_write(stream, req, asio::use_awaitable);
      beast::flat_buffer buffer;
      bhttp::response<bhttp::string_body> res;
      co_await bhttp::async_read(stream, buffer, res, asio::use_awaitable);
      statuses[static_cast<std::size_t>(i)] = res.result_int();
    };
    asio::co_spawn(io, exchange, [](const std::exception_ptr&) {});
  }
  io.run();
  return statuses;
}

// Issue scenario: requests that cost 26 micro-dollars (2 input tokens at
// $1/M, 16 output tokens at $1.5/M) on credit for 200: the eighth would
// take the balance below zero, and with reservations of 35 (11 input
// tokens estimated, 16 output) it is refused, so exactly seven are served,
// sequentially over fresh connections (both server threads), with
// max_tokens set and without.
TEST_F(AccountingTest, SequentialRequestsAreServedOnlyWhileTheirReservationFits) {
  auto& m = add_mock();
  auto cfg = keyed(m);
  cfg.providers[0].models[0].input_per_million = 1;
  cfg.providers[0].models[0].output_per_million = 1.5;
  cfg.providers[0].models[0].reserve_output_tokens = 16;
  cfg.storage.flush_interval_ms = 100;
  start_gateway(with_store(std::move(cfg)));
  const std::string bodies[] = {
      chat_body, R"({"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hello there"}]})"};
  int customer = 0;
  for (const auto& body : bodies) {
    const std::string name = "acme" + std::to_string(customer++);
    const auto key = new_key(name, 200'000);
    int served = 0;
    for (int i = 0; i < 12; ++i) {
      const auto r = post("/v1/chat/completions", body, bearer(key));
      if (r.status == 200U) {
        ++served;
      } else {
        expect_openai_error(r, 402, "insufficient_quota");
      }
      // Spread over the ledger's flushes and the key cache's refreshes.
      std::this_thread::sleep_for(40ms);
    }
    EXPECT_EQ(served, 7) << body;
  }
  wait_for_ledger(14);
  for (int c = 0; c < 2; ++c) {
    const auto row = store().find_customer("acme" + std::to_string(c));
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->balance, 200'000 - 7 * 26'000);
  }
  EXPECT_NE(get("/metrics").body.find("gatewayz_requests_rejected_total{reason=\"insufficient_quota\"} 10"),
            std::string::npos);
}

TEST_F(AccountingTest, FiveHundredConcurrentRequestsOnCreditForTenServeAtMostTen) {
  auto& m = add_mock();
  auto b = m.current_behaviour();
  b.latency_ms = 300;  // every admitted request is still running when the last arrives
  m.set_behaviour(b);
  auto cfg = keyed(m);
  cfg.providers[0].models[0].input_per_million = 1;
  cfg.providers[0].models[0].output_per_million = 1.5;
  start_gateway(with_store(std::move(cfg)));
  // Credit for ten requests of 26 micro-dollars; each reserves 35 (11
  // estimated input tokens, max_tokens 16) until it ends.
  const std::string body =
      R"({"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hello there"}]})";
  const auto key = new_key("crowd", 10 * 26'000);
  const auto statuses = post_all_at_once(port(), body, bearer(key), 500);
  int served = 0;
  int refused = 0;
  for (const unsigned status : statuses) {
    if (status == 200U) ++served;
    if (status == 402U) ++refused;
  }
  EXPECT_LE(served, 10);
  EXPECT_GE(served, 7) << "seven reservations fit at once";
  EXPECT_EQ(served + refused, 500);
  wait_for_ledger(served);
  const auto customer = store().find_customer("crowd");
  ASSERT_TRUE(customer.has_value());
  EXPECT_EQ(customer->balance, 10 * 26'000 - served * 26'000);
  EXPECT_GE(customer->balance, 0);
}

TEST_F(AccountingTest, AStreamTheClientCutsIsChargedForWhatItDelivered) {
  auto& m = add_mock();
  auto b = m.current_behaviour();
  b.tokens_per_s = 50;  // 200 tokens take 4 s; the client leaves after a few
  m.set_behaviour(b);
  auto cfg = keyed(m);
  cfg.providers[0].models[0].input_per_million = 1;
  cfg.providers[0].models[0].output_per_million = 1000;  // a million nano-USD per output token
  start_gateway(with_store(std::move(cfg)));
  const store::nanos_usd credit = store::nanos_per_usd;
  const auto key = new_key("quitter", credit);
  std::string request_id;
  {
    sse_client s(port());
    ASSERT_TRUE(s.start("/v1/chat/completions",
                        R"({"model":"gpt-4o-mini","stream":true,"max_tokens":200,)"
                        R"("messages":[{"role":"user","content":"hello there"}]})",
                        bearer(key)));
    request_id = s.header("x-request-id");
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(s.next().has_value());
    s.close();
  }
  wait_for_ledger(1);
  const auto row = store().find_ledger_row(request_id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->http_status, 200U) << "the client had the stream's 200 head";
  EXPECT_EQ(row->status, "error") << "but not the whole answer";
  EXPECT_GE(row->output_tokens, 4);
  EXPECT_LT(row->output_tokens, 100) << "charged for what reached the client, not what was asked";
  EXPECT_EQ(row->input_tokens, 11);
  EXPECT_EQ(row->cost, 11 * 1000 + row->output_tokens * 1'000'000);
  const auto customer = store().find_customer("quitter");
  ASSERT_TRUE(customer.has_value());
  EXPECT_EQ(customer->balance, credit - row->cost);
  // The reservation (200 output tokens) was released: the customer can
  // still spend the rest of the credit.
  const auto next = post("/v1/chat/completions",
                         R"({"model":"gpt-4o-mini","max_tokens":900,"messages":[{"role":"user","content":"x"}]})",
                         bearer(key));
  EXPECT_EQ(next.status, 200U) << next.body;
}

}  // namespace
}  // namespace gatewayz::test
