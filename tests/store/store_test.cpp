// The store contract, run against both backends: a temporary SQLite file and
// a real PostgreSQL server started by the test (tests/support).

#include "store/open_store.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

#include "store/latency_histogram.hpp"
#include "store/ledger_rows.hpp"
#include "support/postgres_server.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::store {
namespace {

using rows_t = std::vector<std::vector<std::string>>;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string sha256_hex_of(std::string_view s) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  std::string out;
  for (const unsigned char b : digest) {
    static constexpr char hex[] = "0123456789abcdef";
    out += hex[b >> 4];
    out += hex[b & 0xf];
  }
  return out;
}

// Reads the database behind a store URL without going through the store, to
// check what is actually persisted. NULL reads as "<null>".
rows_t raw_query(const std::string& url, const std::string& sql) {
  rows_t rows;
  if (url.starts_with("sqlite://")) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(url.substr(std::string_view("sqlite://").size()).c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        const auto* text = sqlite3_column_text(stmt, c);
        row.emplace_back(text == nullptr ? "<null>" : reinterpret_cast<const char*>(text));
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rows;
  }
  PGconn* conn = PQconnectdb(url.c_str());
  EXPECT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PGresult* result = PQexec(conn, sql.c_str());
  EXPECT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  for (int r = 0; r < PQntuples(result); ++r) {
    std::vector<std::string> row;
    for (int c = 0; c < PQnfields(result); ++c) {
      row.emplace_back(PQgetisnull(result, r, c) ? "<null>" : PQgetvalue(result, r, c));
    }
    rows.push_back(std::move(row));
  }
  PQclear(result);
  PQfinish(conn);
  return rows;
}

using test_rows::make_row;

std::string fmt_request_id(int writer, int batch, int row) {
  return "w" + std::to_string(writer) + "-b" + std::to_string(batch) + "-r" + std::to_string(row);
}

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      std::string dir_template = (std::filesystem::temp_directory_path() / "gwz-store-test-XXXXXX").string();
      ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
      sqlite_dir_ = dir_template;
      url_ = "sqlite://" + sqlite_dir_ + "/store.db";
    } else {
      // Throws (failing the test, never skipping it) when PostgreSQL is not installed.
      url_ = test_support::postgres_server::shared().create_database();
    }
    store_ = open_store(url_, nullptr);
    ASSERT_EQ(store_->backend(), GetParam());
    store_->migrate();
  }

  void TearDown() override {
    store_.reset();
    if (!sqlite_dir_.empty()) std::filesystem::remove_all(sqlite_dir_);
  }

  // Another store on the same database: a second gateway instance.
  std::unique_ptr<store> open_second_instance() {
    auto second = open_store(url_, nullptr);
    second->migrate();
    return second;
  }

  std::string url_;
  std::string sqlite_dir_;
  std::unique_ptr<store> store_;
};

TEST_P(StoreTest, MigrateIsIdempotentAndRecordsTheSchemaVersion) {
  store_->migrate();
  auto second = open_second_instance();
  second->migrate();
  const rows_t versions = raw_query(url_, "SELECT version FROM schema_version ORDER BY version");
  ASSERT_FALSE(versions.empty());
  EXPECT_EQ(versions.front()[0], "1");
  // Each version appears once however often migrate() ran.
  for (std::size_t i = 1; i < versions.size(); ++i) EXPECT_NE(versions[i][0], versions[i - 1][0]);
  // The schema works after the repeated migrations.
  const customer c = second->create_customer("acme", 5);
  EXPECT_EQ(store_->find_customer("acme")->id, c.id);
}

TEST_P(StoreTest, ConcurrentMigrationsByTwoInstancesOfAFreshDatabaseBothSucceed) {
  // The fixture migrated already; a fresh database is needed to race the first migration.
  std::string url;
  std::string dir;
  if (GetParam() == "sqlite") {
    dir = sqlite_dir_ + "/fresh";
    std::filesystem::create_directory(dir);
    url = "sqlite://" + dir + "/store.db";
  } else {
    url = test_support::postgres_server::shared().create_database();
  }
  auto a = open_store(url, nullptr);
  auto b = open_store(url, nullptr);
  std::atomic<int> failures{0};
  std::thread ta([&] {
    try {
      a->migrate();
    } catch (const store_error& e) {
      ADD_FAILURE() << e.what();
      ++failures;
    }
  });
  std::thread tb([&] {
    try {
      b->migrate();
    } catch (const store_error& e) {
      ADD_FAILURE() << e.what();
      ++failures;
    }
  });
  ta.join();
  tb.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(raw_query(url, "SELECT COUNT(*) FROM schema_version WHERE version = 1")[0][0], "1");
}

TEST_P(StoreTest, CustomersAndCredit) {
  const customer acme = store_->create_customer("acme", 10 * nanos_per_usd);
  EXPECT_GT(acme.id, 0);
  EXPECT_EQ(acme.balance, 10 * nanos_per_usd);
  EXPECT_THROW(store_->create_customer("acme", 0), store_error);
  const customer beta = store_->create_customer("beta", 0);

  const auto found = store_->find_customer("acme");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, acme.id);
  EXPECT_EQ(found->balance, 10 * nanos_per_usd);
  EXPECT_FALSE(store_->find_customer("nobody"));

  EXPECT_EQ(store_->credit(acme.id, 7), 10 * nanos_per_usd + 7);
  EXPECT_EQ(store_->credit(acme.id, -10 * nanos_per_usd), 7);
  EXPECT_THROW(store_->credit(acme.id + beta.id + 1000, 1), store_error);

  const auto all = store_->list_customers();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "acme");
  EXPECT_EQ(all[0].balance, 7);
  EXPECT_EQ(all[1].name, "beta");
}

TEST_P(StoreTest, CreditsOutsideTheBalanceRangeAreRefusedAndChangeNothing) {
  const customer acme = store_->create_customer("acme", 0);
  // The issue's sequence: -9223372036 USD fits int64 nanos but not the range.
  EXPECT_THROW(store_->credit(acme.id, -9'223'372'036 * nanos_per_usd), balance_out_of_range);
  EXPECT_THROW(store_->create_customer("rich", max_balance_nanos + 1), balance_out_of_range);
  EXPECT_FALSE(store_->find_customer("rich"));

  // Up to the bound is fine; one nano past it, from either side, is not.
  EXPECT_EQ(store_->credit(acme.id, -max_balance_nanos), -max_balance_nanos);
  try {
    store_->credit(acme.id, -1);
    ADD_FAILURE() << "a balance below the range was accepted";
  } catch (const balance_out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("-1000000000.00 to -1000000000.000000001"), std::string::npos) << e.what();
  }
  EXPECT_THROW(store_->credit(acme.id, -1000 * nanos_per_usd), balance_out_of_range);
  EXPECT_EQ(store_->credit(acme.id, max_balance_nanos), 0);
  EXPECT_EQ(store_->credit(acme.id, max_balance_nanos), max_balance_nanos);
  EXPECT_THROW(store_->credit(acme.id, 1), balance_out_of_range);
  // The stored value is still an exact integer (SQLite would have stored an
  // overflowing sum as a REAL).
  const std::string type_query = GetParam() == "sqlite" ? "SELECT typeof(balance_nanos), balance_nanos FROM customers"
                                                        : "SELECT 'integer', balance_nanos FROM customers";
  const rows_t stored = raw_query(url_, type_query + " WHERE name = 'acme'");
  ASSERT_EQ(stored.size(), 1U);
  EXPECT_EQ(stored[0][0], "integer");
  EXPECT_EQ(stored[0][1], "1000000000000000000");
}

TEST_P(StoreTest, ConcurrentCreditsFromTwoInstancesCannotPassTheRangeTogether) {
  // Each credit fits on its own; together they would not. Whatever the
  // interleaving, the balance never leaves the range.
  const customer c = store_->create_customer("race", max_balance_nanos - 10 * nanos_per_usd);
  auto second = open_second_instance();
  std::atomic<int> accepted{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      store& target = t % 2 == 0 ? *store_ : *second;
      for (int i = 0; i < 5; ++i) {
        try {
          target.credit(c.id, nanos_per_usd);
          ++accepted;
        } catch (const balance_out_of_range&) {
          ++refused;
        } catch (const store_error& e) {
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(accepted.load(), 10);
  EXPECT_EQ(refused.load(), 10);
  EXPECT_EQ(store_->find_customer("race")->balance, max_balance_nanos);
}

TEST_P(StoreTest, KeysAreCreatedFoundAndRevoked) {
  const customer acme = store_->create_customer("acme", 42);
  const created_key key = store_->create_key(acme.id);
  EXPECT_TRUE(key.secret.starts_with("gwz_"));
  EXPECT_EQ(key.secret.size(), 4u + 43u);  // 32 random bytes in unpadded base64url
  EXPECT_EQ(key.secret.find_first_not_of("gwz_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  EXPECT_TRUE(key.secret.starts_with(key.info.prefix));
  EXPECT_EQ(key.info.customer_name, "acme");
  EXPECT_NE(store_->create_key(acme.id).secret, key.secret);

  const auto lookup = store_->find_key(key.secret);
  ASSERT_TRUE(lookup);
  EXPECT_EQ(lookup->key_id, key.info.id);
  EXPECT_EQ(lookup->customer_id, acme.id);
  EXPECT_FALSE(lookup->revoked);
  EXPECT_EQ(lookup->balance, 42);
  EXPECT_FALSE(store_->find_key(key.secret + "x"));
  EXPECT_FALSE(store_->find_key(""));

  EXPECT_TRUE(store_->revoke_key(key.info.id));
  EXPECT_FALSE(store_->revoke_key(key.info.id));
  EXPECT_FALSE(store_->revoke_key(key.info.id + 1000));
  EXPECT_TRUE(store_->find_key(key.secret)->revoked);

  const auto keys = store_->list_keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].id, key.info.id);
  EXPECT_TRUE(keys[0].revoked);
  EXPECT_FALSE(keys[1].revoked);
  EXPECT_EQ(keys[0].customer_name, "acme");
  EXPECT_EQ(keys[0].prefix, key.info.prefix);

  EXPECT_THROW(store_->create_key(acme.id + 1000), store_error);
}

TEST_P(StoreTest, KeysAreStoredOnlyAsHashes) {
  const customer acme = store_->create_customer("acme", 0);
  const created_key key = store_->create_key(acme.id);
  const rows_t stored = raw_query(url_, "SELECT * FROM api_keys");
  ASSERT_EQ(stored.size(), 1u);
  bool hash_found = false;
  for (const std::string& column : stored[0]) {
    EXPECT_EQ(column.find(key.secret.substr(12)), std::string::npos) << "key material stored: " << column;
    hash_found = hash_found || column == sha256_hex_of(key.secret);
  }
  EXPECT_TRUE(hash_found);
}

TEST_P(StoreTest, LedgerRowsRoundTripAndReplayIsIdempotent) {
  const customer acme = store_->create_customer("acme", 1 * nanos_per_usd);
  const std::int64_t t = now_ms();
  std::vector<ledger_row> batch{make_row("req-1", acme.id, 1'000'001, t), make_row("req-2", acme.id, 2, t),
                                make_row("req-3", std::nullopt, 5, t)};
  batch[0].key_id = 9;
  batch[0].attempts = 3;
  batch[0].ttft_ms = 12.5;
  batch[0].streamed = true;
  batch[0].latency_ms = 321.25;
  batch[0].input_tokens = 1234;
  batch[0].output_tokens = 56;
  batch[0].model = "anthropic/claude-opus-4.5";
  batch[0].provider = "anthropic";
  batch[2].status = "error";
  batch[2].http_status = 503;

  EXPECT_EQ(store_->write_ledger(batch), 3u);
  EXPECT_EQ(store_->write_ledger(batch), 0u);  // the writer retrying the same batch
  EXPECT_EQ(store_->count_ledger_rows(), 3);
  EXPECT_EQ(store_->find_customer("acme")->balance, nanos_per_usd - 1'000'003);

  // A batch mixing replayed and new rows debits only the new ones.
  EXPECT_EQ(store_->write_ledger({batch[1], make_row("req-4", acme.id, 10, t)}), 1u);
  EXPECT_EQ(store_->find_customer("acme")->balance, nanos_per_usd - 1'000'013);
  EXPECT_EQ(store_->write_ledger({}), 0u);

  const auto row = store_->find_ledger_row("req-1");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->request_id, "req-1");
  EXPECT_EQ(row->unix_ms, t);
  EXPECT_EQ(row->customer_id, acme.id);
  EXPECT_EQ(row->key_id, 9);
  EXPECT_EQ(row->model, "anthropic/claude-opus-4.5");
  EXPECT_EQ(row->provider, "anthropic");
  EXPECT_EQ(row->attempts, 3u);
  EXPECT_EQ(row->status, "success");
  EXPECT_EQ(row->http_status, 200u);
  EXPECT_EQ(row->input_tokens, 1234);
  EXPECT_EQ(row->output_tokens, 56);
  EXPECT_EQ(row->cost, 1'000'001);
  EXPECT_DOUBLE_EQ(row->latency_ms, 321.25);
  EXPECT_EQ(row->ttft_ms, 12.5);
  EXPECT_TRUE(row->streamed);

  const auto anonymous = store_->find_ledger_row("req-3");
  ASSERT_TRUE(anonymous);
  EXPECT_FALSE(anonymous->customer_id);
  EXPECT_FALSE(anonymous->key_id);
  EXPECT_FALSE(anonymous->ttft_ms);
  EXPECT_FALSE(anonymous->streamed);
  EXPECT_EQ(anonymous->status, "error");
  EXPECT_FALSE(store_->find_ledger_row("req-404"));

  // Replays changed the rollups no more than the balances.
  const auto stats = store_->stats(std::chrono::hours(1));
  std::int64_t total = 0;
  for (const auto& s : stats) total += s.total_requests;
  EXPECT_EQ(total, 4);
}

TEST_P(StoreTest, OfTwoRowsWithOneRequestIdInABatchTheFirstWins) {
  const customer acme = store_->create_customer("acme", 1000);
  const std::int64_t t = now_ms();
  // "req-b" sorts after "req-a" but comes first: the write order must not decide.
  EXPECT_EQ(store_->write_ledger({make_row("req-b", acme.id, 5, t), make_row("req-a", acme.id, 1, t),
                                  make_row("req-b", acme.id, 99, t)}),
            2u);
  EXPECT_EQ(store_->find_ledger_row("req-b")->cost, 5);
  EXPECT_EQ(store_->find_customer("acme")->balance, 1000 - 6);
}

// Large batches are inserted many rows per statement (SQLite); replayed rows
// and repeated ids inside such a group must still count exactly once.
TEST_P(StoreTest, LargeBatchesCountReplayedAndRepeatedRowsOnce) {
  // SQLite takes 64 rows per statement: these batches span several groups.
  const customer acme = store_->create_customer("acme", 1'000'000);
  const std::int64_t t = now_ms();
  const auto id = [](int i) {
    std::string text = std::to_string(i);
    return "req-" + std::string(3 - text.size(), '0') + text;
  };
  std::vector<ledger_row> first;
  for (int i = 0; i < 150; ++i) first.push_back(make_row(id(i), acme.id, 1, t));
  EXPECT_EQ(store_->write_ledger(first), 150u);

  // 30 replayed rows (inside the first group), 170 new ones, and one new id
  // twice within a group: the first of the two wins.
  std::vector<ledger_row> second;
  for (int i = 120; i < 320; ++i) second.push_back(make_row(id(i), acme.id, 1, t));
  second.insert(second.begin() + 90, make_row(id(200), acme.id, 1000, t));  // after id 200 itself
  EXPECT_EQ(store_->write_ledger(second), 170u);

  EXPECT_EQ(store_->count_ledger_rows(), 320);
  EXPECT_EQ(store_->find_customer("acme")->balance, 1'000'000 - 320);
  EXPECT_EQ(store_->find_ledger_row(id(200))->cost, 1);
  std::int64_t total = 0;
  for (const auto& s : store_->stats(std::chrono::hours(1))) total += s.total_requests;
  EXPECT_EQ(total, 320);
}

// The ledger writer gives its core away between groups of rows without
// committing: the pause sees the rows written so far, none of them visible
// to other connections until the transaction commits.
TEST_P(StoreTest, WriteLedgerPausesBetweenGroupsInsideItsTransaction) {
  const customer acme = store_->create_customer("acme", 1'000'000);
  const std::int64_t t = now_ms();
  std::vector<ledger_row> rows;
  for (int i = 0; i < 200; ++i) rows.push_back(make_row("req-" + std::to_string(1000 + i), acme.id, 1, t));
  std::vector<std::size_t> paused_at;
  std::vector<std::int64_t> visible_at_pause;
  const std::size_t inserted = store_->write_ledger(rows, [&](std::size_t written) {
    paused_at.push_back(written);
    visible_at_pause.push_back(store_->count_ledger_rows());
  });
  EXPECT_EQ(inserted, 200u);
  EXPECT_EQ(store_->count_ledger_rows(), 200);
  if (GetParam() == "sqlite") {
    EXPECT_EQ(paused_at, (std::vector<std::size_t>{64, 128, 192}));  // 64 rows per statement
    EXPECT_EQ(visible_at_pause, (std::vector<std::int64_t>{0, 0, 0}));
  } else {
    EXPECT_TRUE(paused_at.empty());  // one statement, run by the server
  }
}

TEST_P(StoreTest, ABatchMixingManyPairsAndMinutesRollsUpExactlyAsRowByRow) {
  // The same rows, written as one batch to one database and one row per
  // write_ledger call to another, must leave identical rollups and balances.
  std::string other_url;
  if (GetParam() == "sqlite") {
    other_url = "sqlite://" + sqlite_dir_ + "/row-by-row.db";
  } else {
    other_url = test_support::postgres_server::shared().create_database();
  }
  auto row_by_row = open_store(other_url, nullptr);
  row_by_row->migrate();
  std::vector<std::int64_t> customers;
  for (const char* name : {"a", "b", "c"}) {
    customers.push_back(store_->create_customer(name, 10 * nanos_per_usd).id);
    ASSERT_EQ(row_by_row->create_customer(name, 10 * nanos_per_usd).id, customers.back());
  }

  const std::int64_t minute_ms = (now_ms() / 60'000 - 3) * 60'000;
  std::mt19937_64 rng{7};
  std::vector<ledger_row> rows;
  for (int i = 0; i < 900; ++i) {
    const auto pick = [&](std::uint64_t n) { return static_cast<int>(rng() % n); };
    const int customer = pick(4);
    ledger_row row = make_row(
        // Ids in no particular order, some repeated within the batch.
        "req-" + std::to_string(rng() % 850), customer == 3 ? std::nullopt : std::optional(customers[customer]),
        pick(5000), minute_ms + pick(4) * 60'000 + pick(60'000), 0.05 + std::exp(pick(1400) / 100.0),
        "vendor/model-" + std::to_string(pick(7)), "provider-" + std::to_string(pick(3)),
        pick(10) == 0 ? "error" : "success");
    row.input_tokens = pick(1000);
    row.output_tokens = pick(300);
    rows.push_back(std::move(row));
  }
  // One row already stored by both: replayed, it changes nothing.
  ASSERT_EQ(store_->write_ledger({rows[5]}), 1u);
  ASSERT_EQ(row_by_row->write_ledger({rows[5]}), 1u);

  const std::size_t inserted = store_->write_ledger(rows);
  std::size_t inserted_one_by_one = 0;
  for (const ledger_row& row : rows) inserted_one_by_one += row_by_row->write_ledger({row});
  EXPECT_EQ(inserted, inserted_one_by_one);
  EXPECT_EQ(store_->count_ledger_rows(), row_by_row->count_ledger_rows());

  for (const char* name : {"a", "b", "c"}) {
    EXPECT_EQ(store_->find_customer(name)->balance, row_by_row->find_customer(name)->balance) << name;
  }
  const std::string exact_sums =
      "SELECT minute, model, provider, requests, successes, failures, tokens, cost_nanos FROM rollup_minutes"
      " ORDER BY minute, model, provider";
  const rows_t sums = raw_query(url_, exact_sums);
  EXPECT_GE(sums.size(), 50u);
  EXPECT_EQ(sums, raw_query(other_url, exact_sums));
  const std::string buckets =
      "SELECT minute, model, provider, bucket, count FROM rollup_latency_buckets ORDER BY minute, model, provider,"
      " bucket";
  EXPECT_EQ(raw_query(url_, buckets), raw_query(other_url, buckets));
  // Latency sums are doubles added in another order: equal up to rounding.
  const std::string latency = "SELECT latency_sum_ms FROM rollup_minutes ORDER BY minute, model, provider";
  const rows_t latency_batch = raw_query(url_, latency);
  const rows_t latency_rows = raw_query(other_url, latency);
  ASSERT_EQ(latency_batch.size(), latency_rows.size());
  for (std::size_t i = 0; i < latency_batch.size(); ++i) {
    const double a = std::stod(latency_batch[i][0]);
    const double b = std::stod(latency_rows[i][0]);
    EXPECT_NEAR(a, b, 1e-9 * std::max(1.0, std::abs(b))) << i;
  }
}

// Runs SQL (several statements allowed) on the database behind a store URL.
void raw_exec(const std::string& url, const std::string& sql) {
  if (url.starts_with("sqlite://")) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(url.substr(std::string_view("sqlite://").size()).c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
    return;
  }
  PGconn* conn = PQconnectdb(url.c_str());
  EXPECT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PGresult* result = PQexec(conn, sql.c_str());
  EXPECT_EQ(PQresultStatus(result), PGRES_COMMAND_OK) << PQerrorMessage(conn);
  PQclear(result);
  PQfinish(conn);
}

// The schema exactly as the first release created it (schema version 1).
std::string version_1_schema(bool postgres) {
  const std::string big = postgres ? "BIGINT" : "INTEGER";
  const std::string serial = postgres ? "BIGSERIAL" : "INTEGER";
  const std::string real = postgres ? "DOUBLE PRECISION" : "REAL";
  const std::string boolean = postgres ? "BOOLEAN" : "INTEGER";
  return "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_unix_ms " + big +
         " NOT NULL);"
         "INSERT INTO schema_version VALUES (1, 0);"
         "CREATE TABLE customers (id " +
         serial + " PRIMARY KEY, name TEXT NOT NULL UNIQUE, balance_nanos " + big + " NOT NULL, created_unix_ms " +
         big +
         " NOT NULL);"
         "CREATE TABLE api_keys (id " +
         serial + " PRIMARY KEY, customer_id " + big +
         " NOT NULL REFERENCES customers(id), key_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, revoked " + boolean +
         " NOT NULL DEFAULT " + (postgres ? "false" : "0") + ", created_unix_ms " + big +
         " NOT NULL);"
         "CREATE TABLE ledger (request_id TEXT PRIMARY KEY, unix_ms " +
         big + " NOT NULL, customer_id " + big + ", key_id " + big +
         ", model TEXT NOT NULL, provider TEXT NOT NULL, attempts INTEGER NOT NULL,"
         " status TEXT NOT NULL, http_status INTEGER NOT NULL, input_tokens " +
         big + " NOT NULL, output_tokens " + big + " NOT NULL, cost_nanos " + big + " NOT NULL, latency_ms " + real +
         " NOT NULL, ttft_ms " + real + ", streamed " + boolean +
         " NOT NULL);"
         "CREATE INDEX ledger_customer_time ON ledger (customer_id, unix_ms);"
         "CREATE TABLE rollup_minutes (minute " +
         big +
         " NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL,"
         " requests " +
         big + " NOT NULL, successes " + big + " NOT NULL, failures " + big + " NOT NULL, latency_sum_ms " + real +
         " NOT NULL, tokens " + big + " NOT NULL, cost_nanos " + big +
         " NOT NULL, PRIMARY KEY (minute, model, provider));"
         "CREATE TABLE rollup_latency_buckets (minute " +
         big +
         " NOT NULL, model TEXT NOT NULL, provider TEXT NOT"
         " NULL, bucket INTEGER NOT NULL, count " +
         big + " NOT NULL, PRIMARY KEY (minute, model, provider, bucket));";
}

TEST_P(StoreTest, ADatabaseCreatedBySchemaVersion1MigratesAndKeepsItsData) {
  std::string url;
  if (GetParam() == "sqlite") {
    url = "sqlite://" + sqlite_dir_ + "/version-1.db";
  } else {
    url = test_support::postgres_server::shared().create_database();
  }
  const std::int64_t t = now_ms();
  const std::string minute = std::to_string(t / 60'000);
  const bool postgres = GetParam() == "postgres";
  raw_exec(url, version_1_schema(postgres) +
                    "INSERT INTO customers (name, balance_nanos, created_unix_ms) VALUES ('old', 1000, 0);"
                    "INSERT INTO ledger VALUES ('req-old', " +
                    std::to_string(t) + ", 1, NULL, 'm', 'p', 1, 'success', 200, 1, 2, 30, 10.0, NULL, " +
                    (postgres ? "false" : "0") +
                    ");"
                    "INSERT INTO rollup_minutes VALUES (" +
                    minute +
                    ", 'm', 'p', 1, 1, 0, 10.0, 3, 30);"
                    "INSERT INTO rollup_latency_buckets VALUES (" +
                    minute + ", 'm', 'p', " + std::to_string(latency_histogram::bucket_of(10.0)) + ", 1);");

  auto db = open_store(url, nullptr);
  db->migrate();
  db->migrate();
  const rows_t versions = raw_query(url, "SELECT version FROM schema_version ORDER BY version");
  ASSERT_GE(versions.size(), 2u);
  EXPECT_EQ(versions[0][0], "1");
  EXPECT_EQ(versions[1][0], "2");
  const std::string index_query = postgres ? "SELECT indexname FROM pg_indexes WHERE indexname = 'ledger_customer_time'"
                                           : "SELECT name FROM sqlite_master WHERE name = 'ledger_customer_time'";
  EXPECT_TRUE(raw_query(url, index_query).empty());

  ASSERT_TRUE(db->find_ledger_row("req-old"));
  EXPECT_EQ(db->find_ledger_row("req-old")->cost, 30);
  // The old row still deduplicates a replay; new rows add to the old rollup.
  EXPECT_EQ(
      db->write_ledger({make_row("req-old", 1, 30, t, 10.0, "m", "p"), make_row("req-new", 1, 70, t, 10.0, "m", "p")}),
      1u);
  EXPECT_EQ(db->find_customer("old")->balance, 1000 - 70);
  const auto stats = db->stats(std::chrono::hours(1));
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].total_requests, 2);
  EXPECT_EQ(stats[0].total_cost, 100);
}

TEST_P(StoreTest, DebitsAreExactInNanos) {
  const customer a = store_->create_customer("a", 3 * nanos_per_usd);
  const customer b = store_->create_customer("b", 0);
  std::vector<ledger_row> batch;
  nanos_usd sum_a = 0;
  nanos_usd sum_b = 0;
  const std::int64_t t = now_ms();
  for (int i = 0; i < 200; ++i) {
    // Prices like $0.15 / 1M tokens give fractional cents; nanos keep them exact.
    const nanos_usd cost = 150 * (i + 1) + (i % 7);
    const bool to_a = i % 3 != 0;
    batch.push_back(make_row("r" + std::to_string(i), to_a ? a.id : b.id, cost, t));
    (to_a ? sum_a : sum_b) += cost;
  }
  EXPECT_EQ(store_->write_ledger(batch), 200u);
  EXPECT_EQ(store_->find_customer("a")->balance, 3 * nanos_per_usd - sum_a);
  EXPECT_EQ(store_->find_customer("b")->balance, -sum_b);  // balances may go negative; auth decides
}

TEST_P(StoreTest, ConcurrentDebitsFromThreadsAndInstancesLoseNoUpdate) {
  const nanos_usd initial = 1000 * nanos_per_usd;
  const customer c = store_->create_customer("shared", initial);
  auto second = open_second_instance();  // a second gateway process on the same database
  constexpr int writers = 4;
  constexpr int batches_per_writer = 25;
  constexpr int rows_per_batch = 20;
  std::atomic<nanos_usd> debited{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  const std::int64_t t = now_ms();
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      store& target = w % 2 == 0 ? *store_ : *second;
      for (int b = 0; b < batches_per_writer; ++b) {
        std::vector<ledger_row> batch;
        nanos_usd batch_cost = 0;
        for (int r = 0; r < rows_per_batch; ++r) {
          const nanos_usd cost = 1'000 + w * 100 + r;
          batch.push_back(make_row(fmt_request_id(w, b, r), c.id, cost, t));
          batch_cost += cost;
        }
        try {
          if (target.write_ledger(batch) != batch.size()) ++errors;
          debited += batch_cost;
        } catch (const store_error& e) {
          ADD_FAILURE() << e.what();
          ++errors;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(store_->count_ledger_rows(), writers * batches_per_writer * rows_per_batch);
  EXPECT_EQ(second->find_customer("shared")->balance, initial - debited.load());
}

TEST_P(StoreTest, RollupsMergeAcrossInstancesWritingTheSameMinute) {
  auto second = open_second_instance();
  const std::int64_t t = now_ms();
  constexpr int per_instance = 300;
  auto write = [&](store& target, std::string tag) {
    for (int b = 0; b < per_instance / 10; ++b) {
      std::vector<ledger_row> batch;
      for (int r = 0; r < 10; ++r) {
        const int i = b * 10 + r;
        batch.push_back(make_row(tag + std::to_string(i), std::nullopt, 7, t, 50.0 + i, "m", "p",
                                 i % 10 == 0 ? "error" : "success"));
      }
      target.write_ledger(batch);
    }
  };
  std::thread a([&] { write(*store_, "a"); });
  std::thread b([&] { write(*second, "b"); });
  a.join();
  b.join();
  const auto stats = store_->stats(std::chrono::hours(1));
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].total_requests, 2 * per_instance);
  EXPECT_EQ(stats[0].failed_requests, 2 * per_instance / 10);
  EXPECT_EQ(stats[0].successful_requests, 2 * per_instance * 9 / 10);
  EXPECT_EQ(stats[0].total_tokens, 2 * per_instance * 15);
  EXPECT_EQ(stats[0].total_cost, 2 * per_instance * 7);
  EXPECT_NEAR(stats[0].avg_latency_ms, 50.0 + (per_instance - 1) / 2.0, 1e-9);
  EXPECT_DOUBLE_EQ(stats[0].uptime_percentage, 90.0);
  // Histogram counts merged too: every sample is below the p99 estimate's bucket top.
  EXPECT_NEAR(stats[0].p99_latency_ms, 50.0 + per_instance * 0.99 - 1, (50.0 + per_instance) * 0.02);
  // Exactly one rollup row for the minute, whichever instance wrote first.
  EXPECT_EQ(raw_query(url_, "SELECT COUNT(*) FROM rollup_minutes")[0][0], "1");
}

double exact_percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::max<std::size_t>(rank, 1) - 1];
}

TEST_P(StoreTest, StatsPercentilesAreWithinTwoPercentOfExact) {
  std::mt19937_64 rng(20251223);
  std::lognormal_distribution<double> latency(std::log(900.0), 0.8);
  std::uniform_int_distribution<std::int64_t> age_ms(0, 10 * 60'000);
  const std::int64_t t = now_ms();
  constexpr int total = 12'000;
  std::map<std::string, std::vector<double>> latencies_by_model;
  std::vector<ledger_row> batch;
  int failures = 0;
  for (int i = 0; i < total; ++i) {
    const std::string model = i % 4 == 0 ? "small" : "large";
    const double ms = latency(rng);
    const bool failed = i % 50 == 0;
    failures += failed ? 1 : 0;
    latencies_by_model[model].push_back(ms);
    batch.push_back(make_row("p" + std::to_string(i), std::nullopt, 1, t - age_ms(rng), ms, model, "prov",
                             failed ? "error" : "success"));
    if (batch.size() == 500) {
      store_->write_ledger(batch);
      batch.clear();
    }
  }
  store_->write_ledger(batch);

  const auto stats = store_->stats(std::chrono::hours(1));
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].model, "large");  // more requests first
  EXPECT_EQ(stats[0].total_requests + stats[1].total_requests, total);
  EXPECT_EQ(stats[0].failed_requests + stats[1].failed_requests, failures);
  double worst_error = 0.0;
  for (const model_stats& s : stats) {
    const auto& raw = latencies_by_model[s.model];
    ASSERT_EQ(static_cast<std::size_t>(s.total_requests), raw.size());
    double sum = 0.0;
    for (const double v : raw) sum += v;
    EXPECT_NEAR(s.avg_latency_ms, sum / static_cast<double>(raw.size()), 1e-6 * s.avg_latency_ms);
    for (const auto& [q, estimate] : {std::pair{0.95, s.p95_latency_ms}, std::pair{0.99, s.p99_latency_ms}}) {
      const double exact = exact_percentile(raw, q);
      const double error = std::abs(estimate - exact) / exact;
      worst_error = std::max(worst_error, error);
      EXPECT_LT(error, 0.02) << s.model << " p" << q * 100 << " exact " << exact << " estimate " << estimate;
    }
  }
  RecordProperty("worst_percentile_error", std::to_string(worst_error));
  std::printf("[ info ] %s: worst percentile relative error %.4f%%\n", GetParam().c_str(), worst_error * 100);
}

TEST_P(StoreTest, StatsWindowExcludesOldMinutesAndSortsByVolume) {
  const std::int64_t t = now_ms();
  std::vector<ledger_row> batch;
  batch.push_back(make_row("old-1", std::nullopt, 1, t - 2 * 3'600'000, 100.0, "old-model", "p"));
  batch.push_back(make_row("old-2", std::nullopt, 1, t - 61 * 60'000, 100.0, "b-model", "p"));
  batch.push_back(make_row("new-1", std::nullopt, 1, t - 30 * 60'000, 100.0, "b-model", "p"));
  batch.push_back(make_row("new-2", std::nullopt, 1, t, 100.0, "a-model", "z"));
  batch.push_back(make_row("new-3", std::nullopt, 1, t, 100.0, "a-model", "y"));
  batch.push_back(make_row("new-4", std::nullopt, 1, t, 100.0, "c-model", "p"));
  batch.push_back(make_row("new-5", std::nullopt, 1, t, 100.0, "c-model", "p"));
  store_->write_ledger(batch);

  const auto hour = store_->stats(std::chrono::hours(1));
  ASSERT_EQ(hour.size(), 4u);
  EXPECT_EQ(hour[0].model, "c-model");  // 2 requests
  EXPECT_EQ(hour[0].total_requests, 2);
  EXPECT_EQ(hour[1].model, "a-model");  // then 1 request each, by model then provider
  EXPECT_EQ(hour[1].provider, "y");
  EXPECT_EQ(hour[2].model, "a-model");
  EXPECT_EQ(hour[2].provider, "z");
  EXPECT_EQ(hour[3].model, "b-model");
  EXPECT_EQ(hour[3].total_requests, 1);

  const auto day = store_->stats(std::chrono::hours(24));
  ASSERT_EQ(day.size(), 5u);
  EXPECT_EQ(day[0].model, "b-model");
  EXPECT_EQ(day[0].total_requests, 2);
  EXPECT_TRUE(std::any_of(day.begin(), day.end(), [](const model_stats& s) { return s.model == "old-model"; }));
  EXPECT_DOUBLE_EQ(day[0].uptime_percentage, 100.0);

  EXPECT_TRUE(store_->stats(std::chrono::hours(1)).size() == 4u);
  EXPECT_TRUE(store_->ping());
}

TEST_P(StoreTest, QueriesAreCountedPerOperationOnTheBackgroundShard) {
  telemetry::registry reg(3);
  telemetry::catalog catalog(reg, "test");
  auto measured = open_store(url_, &catalog);
  const customer c = measured->create_customer("m", 5);
  measured->find_key("gwz_unknown");
  measured->find_key("gwz_unknown");
  measured->credit(c.id, 1);
  EXPECT_EQ(catalog.database_queries.series({"find_key"}).value(), 2.0);
  EXPECT_EQ(catalog.database_queries.series({"credit"}).value(), 1.0);
  EXPECT_EQ(catalog.database_query_duration.series({"find_key"}).count(), 2u);
  const std::string text = reg.render_text();
  EXPECT_NE(text.find("database_queries_total{operation=\"create_customer\"} 1"), std::string::npos);
}

std::string backend_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("sqlite", "postgres"), backend_name);

TEST(OpenStore, RejectsUnknownSchemesWithoutEchoingTheUrl) {
  try {
    open_store("mysql://root:hunter2@db/x", nullptr);
    FAIL() << "expected store_error";
  } catch (const store_error& e) {
    EXPECT_NE(std::string(e.what()).find("mysql"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
  }
  try {
    open_store("root:hunter2@db://x", nullptr);
    FAIL() << "expected store_error";
  } catch (const store_error& e) {
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(open_store("sqlite://", nullptr), store_error);
  EXPECT_THROW(open_store("sqlite:///nonexistent-dir/x/y.db", nullptr), store_error);
}

TEST(OpenStore, PostgresConnectionErrorsNameTheSchemeButNotThePassword) {
  // Nothing listens on port 1: the connection is refused at once.
  for (const char* url : {"postgres://gw:s3cr3t-pw@127.0.0.1:1/gw", "postgresql://gw:s3cr3t-pw@127.0.0.1:1/gw"}) {
    const auto start = std::chrono::steady_clock::now();
    try {
      open_store(url, nullptr);
      FAIL() << "expected store_error";
    } catch (const store_error& e) {
      const std::string message = e.what();
      EXPECT_TRUE(message.starts_with("postgres")) << message;
      EXPECT_EQ(message.find("s3cr3t-pw"), std::string::npos) << message;
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  }
}

TEST(OpenStore, SqliteRelativePathIsRelativeToTheWorkingDirectory) {
  const std::string name = "gwz-relative-" + std::to_string(::getpid()) + ".db";
  {
    auto relative = open_store("sqlite://./" + name, nullptr);
    relative->migrate();
    relative->create_customer("x", 1);
  }
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::current_path() / name));
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(name + suffix);
}

TEST(OpenStore, SqliteInMemoryWorksForThrowawayRuns) {
  auto mem = open_store("sqlite://:memory:", nullptr);
  mem->migrate();
  const customer c = mem->create_customer("x", 10);
  mem->write_ledger({make_row("r", c.id, 3, now_ms())});
  EXPECT_EQ(mem->find_customer("x")->balance, 7);
}

// A database written by a gateway at schema version 2 (ledger as a rowid
// table) keeps its rows when migration 3 re-keys the ledger by request id.
TEST(OpenStore, SqliteLedgerRekeyingMigrationKeepsExistingRows) {
  std::string dir = (std::filesystem::temp_directory_path() / "gwz-migrate-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/old.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* old_schema = R"sql(
      CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_unix_ms INTEGER NOT NULL);
      INSERT INTO schema_version VALUES (1, 0), (2, 0);
      CREATE TABLE ledger (request_id TEXT PRIMARY KEY, unix_ms INTEGER NOT NULL, customer_id INTEGER,
        key_id INTEGER, model TEXT NOT NULL, provider TEXT NOT NULL, attempts INTEGER NOT NULL,
        status TEXT NOT NULL, http_status INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL, cost_nanos INTEGER NOT NULL, latency_ms REAL NOT NULL,
        ttft_ms REAL, streamed INTEGER NOT NULL);
      INSERT INTO ledger VALUES ('req_old', 1700000000000, 7, 9, 'gpt-4o-mini', 'openai', 2, 'success',
        200, 11, 22, 33, 44.5, 5.5, 1);)sql";
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(db, old_schema, nullptr, nullptr, &error), SQLITE_OK) << (error ? error : "");
    sqlite3_close(db);
  }
  {
    auto migrated = open_store("sqlite://" + path, nullptr);
    migrated->migrate();
    const auto row = migrated->find_ledger_row("req_old");
    ASSERT_TRUE(row);
    EXPECT_EQ(row->customer_id, 7);
    EXPECT_EQ(row->key_id, 9);
    EXPECT_EQ(row->attempts, 2u);
    EXPECT_EQ(row->output_tokens, 22);
    EXPECT_EQ(row->cost, 33);
    EXPECT_DOUBLE_EQ(row->latency_ms, 44.5);
    ASSERT_TRUE(row->ttft_ms);
    EXPECT_DOUBLE_EQ(*row->ttft_ms, 5.5);
    EXPECT_TRUE(row->streamed);
  }
  const rows_t schema = raw_query("sqlite://" + path, "SELECT sql FROM sqlite_master WHERE name = 'ledger'");
  ASSERT_EQ(schema.size(), 1u);
  EXPECT_NE(schema[0][0].find("WITHOUT ROWID"), std::string::npos);
  EXPECT_EQ(raw_query("sqlite://" + path, "SELECT MAX(version) FROM schema_version")[0][0], "3");
  std::filesystem::remove_all(dir);
}

TEST(PostgresStore, RestartMakesCallsFailPromptlyThenTheSameStoreRecovers) {
  auto& server = test_support::postgres_server::shared();
  const std::string url = server.create_database();
  auto db = open_store(url, nullptr);
  db->migrate();
  const customer c = db->create_customer("r", 100);
  ASSERT_TRUE(db->ping());

  const auto stop_started = std::chrono::steady_clock::now();
  server.stop();
  const auto stopped_after = std::chrono::steady_clock::now() - stop_started;
  const auto call_started = std::chrono::steady_clock::now();
  EXPECT_THROW(db->credit(c.id, 1), store_error);
  EXPECT_THROW(db->write_ledger({make_row("down-1", c.id, 5, now_ms())}), store_error);
  EXPECT_FALSE(db->ping());
  EXPECT_LT(std::chrono::steady_clock::now() - call_started, std::chrono::seconds(10));
  std::printf("[ info ] pg_ctl stop took %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(stopped_after).count()));

  server.start();
  // The same store object: its broken connections are replaced.
  EXPECT_TRUE(db->ping());
  EXPECT_EQ(db->credit(c.id, 1), 101);
  EXPECT_EQ(db->write_ledger({make_row("down-1", c.id, 5, now_ms())}), 1u);
  EXPECT_EQ(db->find_customer("r")->balance, 96);

  // A restart while the store is idle: its pooled connections were closed by
  // the server, and the first call after the restart must not fail on them.
  server.stop();
  server.start();
  EXPECT_EQ(db->credit(c.id, 4), 100);
  EXPECT_EQ(db->count_ledger_rows(), 1);
}

}  // namespace
}  // namespace gatewayz::store
