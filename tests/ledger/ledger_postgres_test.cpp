// A real outage: the ledger writer in front of a PostgreSQL server that is
// stopped in the middle of traffic and started again. Every request must end
// up in the ledger exactly once and be debited exactly once.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "ledger/ledger_writer.hpp"
#include "store/open_store.hpp"
#include "support/postgres_server.hpp"

namespace {

namespace ledger = gatewayz::ledger;
namespace store = gatewayz::store;
using namespace std::chrono_literals;

template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

TEST(LedgerWithPostgres, TrafficAcrossADatabaseRestartIsLedgeredExactlyOnce) {
  gatewayz::test_support::postgres_server server;  // our own: this test stops it
  const std::string url = server.create_database();
  auto db = store::open_store(url, nullptr);
  db->migrate();
  const auto customer = db->create_customer("acme", 100 * store::nanos_per_usd);
  constexpr store::nanos_usd cost = 777;

  const std::string spill =
      (std::filesystem::temp_directory_path() / fmt::format("gw-ledger-pg-{}.spill", ::getpid())).string();
  std::filesystem::remove(spill);
  struct remove_on_exit {
    std::string path;
    ~remove_on_exit() {
      std::error_code ec;
      for (const char* suffix : {"", ".lock", ".tmp", ".rejected"}) std::filesystem::remove(path + suffix, ec);
    }
  } cleanup{spill};
  std::mutex errors_mu;
  std::vector<std::string> errors;
  ledger::writer_options options;
  options.flush_interval_ms = 50;
  options.spill_path = spill;
  ledger::ledger_writer writer{*db, options, 2, nullptr, [&](std::string_view m) {
                                 std::lock_guard lock{errors_mu};
                                 errors.emplace_back(m);
                               }};

  // Two shards send requests until told to stop.
  std::atomic<bool> sending{true};
  std::atomic<int> accepted{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> shards;
  for (std::size_t shard = 0; shard < 2; ++shard) {
    shards.emplace_back([&, shard] {
      for (int i = 0; sending.load(); ++i) {
        store::ledger_row row;
        row.request_id = fmt::format("pg-{}-{}", shard, i);
        row.unix_ms = 1'700'000'000'000 + i;
        row.customer_id = customer.id;
        row.model = "m";
        row.provider = "p";
        row.attempts = 1;
        row.status = "success";
        row.http_status = 200;
        row.cost = cost;
        row.latency_ms = 1.0;
        if (writer.enqueue(shard, std::move(row))) {
          ++accepted;
        } else {
          ++refused;
        }
        std::this_thread::sleep_for(1ms);
      }
    });
  }

  std::this_thread::sleep_for(300ms);
  ASSERT_GT(db->count_ledger_rows(), 0) << "rows flow while the database is up";
  server.stop();
  const bool spilled = eventually([&] { return writer.stats().spilled > 0; }, 10s);
  std::this_thread::sleep_for(300ms);  // more traffic while it is down
  const auto during_outage = writer.stats();
  server.start();
  std::this_thread::sleep_for(500ms);
  sending = false;
  for (auto& t : shards) t.join();
  writer.stop();

  ASSERT_TRUE(spilled) << "the outage should have sent rows to the spill file";
  EXPECT_GT(during_outage.spilled, 0U);
  EXPECT_EQ(refused.load(), 0);
  const auto stats = writer.stats();
  EXPECT_EQ(stats.enqueued, static_cast<std::uint64_t>(accepted.load()));
  EXPECT_EQ(stats.dropped, 0U);
  EXPECT_GT(stats.replayed, 0U);
  EXPECT_EQ(db->count_ledger_rows(), accepted.load());
  EXPECT_EQ(db->find_customer("acme")->balance, 100 * store::nanos_per_usd - accepted.load() * cost);
  EXPECT_FALSE(std::filesystem::exists(spill)) << "a fully replayed spill file is removed";
  std::lock_guard lock{errors_mu};
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors.front().find("spilled to " + spill), std::string::npos) << errors.front();
}

}  // namespace
