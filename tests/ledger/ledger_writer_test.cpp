// The ledger writer against the real SQLite backend (a temporary database):
// exactly-once delivery from several shards, the flush-interval bound,
// overflow accounting, and the spill file across outages and restarts.

#include "ledger/ledger_writer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "ledger/spill_file.hpp"
#include "store/open_store.hpp"
#include "support/forwarding_store.hpp"
#include "telemetry/catalog.hpp"

namespace {

using namespace gatewayz;
using namespace std::chrono_literals;

class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "gw-ledger-XXXXXX").string();
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

store::ledger_row make_row(std::string request_id, std::optional<std::int64_t> customer_id, store::nanos_usd cost) {
  store::ledger_row row;
  row.request_id = std::move(request_id);
  row.unix_ms = 1'700'000'000'000;
  row.customer_id = customer_id;
  row.key_id = customer_id ? std::optional<std::int64_t>(7) : std::nullopt;
  row.model = "gpt-test";
  row.provider = "mock";
  row.attempts = 1;
  row.status = "success";
  row.http_status = 200;
  row.input_tokens = 10;
  row.output_tokens = 20;
  row.cost = cost;
  row.latency_ms = 12.5;
  return row;
}

// Polls `condition` until it holds or `timeout` passes.
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

std::size_t count_lines(const std::string& path) {
  std::ifstream in(path);
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) ++lines;
  }
  return lines;
}

class LedgerWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    real = store::open_store("sqlite://" + dir.file("gatewayz.db"), nullptr);
    real->migrate();
    customer = real->create_customer("acme", 1000 * store::nanos_per_usd);
  }

  ledger::writer_options options(unsigned interval_ms = 50) const {
    ledger::writer_options o;
    o.flush_interval_ms = interval_ms;
    o.spill_path = dir.file("ledger.spill");
    return o;
  }

  store::nanos_usd balance() { return real->find_customer("acme")->balance; }

  // Collects what the writer reports, for assertions and diagnostics.
  ledger::ledger_writer::error_callback collect_errors() {
    return [this](std::string_view message) {
      std::lock_guard lock{errors_mu};
      errors.emplace_back(message);
    };
  }

  temp_dir dir;
  std::unique_ptr<store::store> real;
  store::customer customer;
  std::mutex errors_mu;
  std::vector<std::string> errors;
};

TEST_F(LedgerWriterTest, RowsFromSeveralShardsAreWrittenExactlyOnceAndDebited) {
  constexpr std::size_t shards = 4;
  constexpr int rows_per_shard = 2500;
  constexpr store::nanos_usd cost = 1234;
  const store::nanos_usd before = balance();
  ledger::ledger_writer writer{*real, options(20), shards, nullptr, collect_errors()};

  std::vector<std::thread> threads;
  for (std::size_t shard = 0; shard < shards; ++shard) {
    threads.emplace_back([&, shard] {
      for (int i = 0; i < rows_per_shard; ++i) {
        EXPECT_TRUE(writer.enqueue(shard, make_row(fmt::format("req-{}-{}", shard, i), customer.id, cost)));
      }
    });
  }
  for (auto& t : threads) t.join();
  writer.stop();

  constexpr std::int64_t total = static_cast<std::int64_t>(shards) * rows_per_shard;
  EXPECT_EQ(real->count_ledger_rows(), total);
  EXPECT_EQ(balance(), before - total * cost);
  const auto stats = writer.stats();
  EXPECT_EQ(stats.enqueued, static_cast<std::uint64_t>(total));
  EXPECT_EQ(stats.written, static_cast<std::uint64_t>(total));
  EXPECT_EQ(stats.dropped, 0U);
  EXPECT_EQ(stats.spilled, 0U);
  EXPECT_TRUE(errors.empty()) << errors.front();
  const auto row = real->find_ledger_row("req-3-2499");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->customer_id, customer.id);
  EXPECT_EQ(row->cost, cost);
}

// Queue buffers are handed back to the shards from flush to flush, and a
// flush larger than batch_max is split into several transactions: across
// many flushes, one shard or several, every row lands once.
TEST_F(LedgerWriterTest, RowsOfManyFlushesAndBatchBoundariesAreWrittenExactlyOnce) {
  for (const std::size_t shards : {std::size_t{1}, std::size_t{3}}) {
    for (const std::size_t batch_max : {std::size_t{7}, std::size_t{100'000}}) {
      SCOPED_TRACE(fmt::format("{} shard(s), batch_max {}", shards, batch_max));
      const std::int64_t rows_before = real->count_ledger_rows();
      const store::nanos_usd before = balance();
      auto o = options(5);
      o.batch_max = batch_max;
      ledger::ledger_writer writer{*real, o, shards, nullptr, collect_errors()};
      constexpr int waves = 6;
      constexpr int rows_per_wave = 50;
      std::uint64_t enqueued = 0;
      for (int wave = 0; wave < waves; ++wave) {
        for (int i = 0; i < rows_per_wave; ++i) {
          const std::size_t shard = static_cast<std::size_t>(i) % shards;
          ASSERT_TRUE(writer.enqueue(
              shard, make_row(fmt::format("s{}-b{}-w{}-r{}", shards, batch_max, wave, i), customer.id, 3)));
          ++enqueued;
        }
        // Each wave is flushed before the next starts, so the queues are reused.
        ASSERT_TRUE(eventually([&] { return writer.stats().written == enqueued; }));
      }
      writer.stop();
      EXPECT_EQ(real->count_ledger_rows() - rows_before, waves * rows_per_wave);
      EXPECT_EQ(balance(), before - waves * rows_per_wave * 3);
      EXPECT_EQ(writer.stats().spilled, 0U);
    }
  }
  EXPECT_TRUE(errors.empty()) << errors.front();
}

// Shards write rows straight into queue slots that held rows of earlier
// flushes: over many flushes, every row must arrive exactly as filled in,
// never mixed with the slot's earlier row or overwritten while written.
TEST_F(LedgerWriterTest, RowsFilledInPlaceArriveIntactOverManyFlushes) {
  constexpr int rows = 3000;
  ledger::writer_options o = options(2);
  o.batch_max = 64;
  ledger::ledger_writer writer{*real, o, 1, nullptr, collect_errors()};
  for (int i = 0; i < rows; ++i) {
    const std::string id = fmt::format("fill-{:05}", i);
    const bool odd = i % 2 == 1;
    ASSERT_TRUE(writer.enqueue_with(0, [&](store::ledger_row& row) {
      row.request_id.assign(id);
      row.unix_ms = 1'700'000'000'000 + i;
      row.customer_id = odd ? std::optional<std::int64_t>(customer.id) : std::nullopt;
      row.key_id = std::nullopt;
      row.model.assign(odd ? "a-model-name-longer-than-sso" : "m");
      row.provider.assign("p");
      row.attempts = 1;
      row.status.assign("success");
      row.http_status = 200;
      row.input_tokens = i;
      row.output_tokens = 2 * i;
      row.cost = odd ? 1 : 0;
      row.latency_ms = 1.5;
      row.ttft_ms = odd ? std::optional(0.5) : std::nullopt;
      row.streamed = odd;
    }));
    if (i % 500 == 0) std::this_thread::sleep_for(5ms);  // several flushes, slots reused
  }
  writer.stop();
  EXPECT_EQ(writer.stats().written, static_cast<std::uint64_t>(rows));
  EXPECT_EQ(real->count_ledger_rows(), rows);
  for (int i = 0; i < rows; i += 7) {
    const auto row = real->find_ledger_row(fmt::format("fill-{:05}", i));
    ASSERT_TRUE(row) << i;
    const bool odd = i % 2 == 1;
    EXPECT_EQ(row->input_tokens, i);
    EXPECT_EQ(row->output_tokens, 2 * i);
    EXPECT_EQ(row->model, odd ? "a-model-name-longer-than-sso" : "m") << i;
    EXPECT_EQ(row->customer_id.has_value(), odd) << i;
    EXPECT_EQ(row->ttft_ms.has_value(), odd) << i;
    EXPECT_EQ(row->streamed, odd) << i;
  }
  EXPECT_EQ(balance(), 1000 * store::nanos_per_usd - rows / 2);
}

TEST_F(LedgerWriterTest, AQueuedRowReachesTheStoreWithinTwoFlushIntervals) {
  // The kill -9 bound: only rows younger than about one interval are ever
  // only in memory.
  constexpr unsigned interval_ms = 200;
  ledger::ledger_writer writer{*real, options(interval_ms), 1, nullptr, collect_errors()};
  std::this_thread::sleep_for(30ms);  // land somewhere inside an interval
  for (int round = 0; round < 3; ++round) {
    const std::string id = fmt::format("timed-{}", round);
    const auto enqueued_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(writer.enqueue(0, make_row(id, customer.id, 1)));
    const bool visible =
        eventually([&] { return real->find_ledger_row(id).has_value(); }, std::chrono::milliseconds(2 * interval_ms));
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - enqueued_at);
    EXPECT_TRUE(visible) << "row not in the store after " << waited.count() << " ms";
    std::this_thread::sleep_for(std::chrono::milliseconds(70 * (round + 1)));
  }
}

TEST_F(LedgerWriterTest, AHalfFullQueueIsFlushedWithoutWaitingForTheInterval) {
  auto o = options(60'000);
  o.queue_capacity = 100;
  ledger::ledger_writer writer{*real, o, 1, nullptr, collect_errors()};
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(writer.enqueue(0, make_row(fmt::format("half-{}", i), customer.id, 1)));
  // Reaching half the capacity wakes the writer long before the 60 s interval.
  // (Not necessarily all 50 rows: if the writer happened to wake earlier and
  // took some, the rest are below half and wait for the next trigger.)
  EXPECT_TRUE(eventually([&] { return real->count_ledger_rows() >= 1; }, 5s));
}

TEST_F(LedgerWriterTest, AFullQueueDropsAndCountsInsteadOfBlocking) {
  test::forwarding_store gated{*real};
  telemetry::registry reg{2};  // one server shard + the background shard
  telemetry::catalog metrics{reg, "test"};
  auto o = options(60'000);
  o.queue_capacity = 4;
  ledger::ledger_writer writer{gated, o, 1, &metrics, collect_errors()};

  gated.hold_writes();
  // Two rows reach half the capacity: the writer takes them and blocks in the store.
  ASSERT_TRUE(writer.enqueue(0, make_row("first-0", customer.id, 5)));
  ASSERT_TRUE(writer.enqueue(0, make_row("first-1", customer.id, 5)));
  ASSERT_TRUE(gated.wait_for_blocked_write(5s));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(writer.enqueue(0, make_row(fmt::format("fill-{}", i), customer.id, 5)));
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(writer.enqueue(0, make_row(fmt::format("over-{}", i), customer.id, 5)));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s) << "enqueue must not wait for the writer";
  EXPECT_EQ(metrics.telemetry_dropped.series({"ledger"}).value(), 3.0);

  gated.release_writes();
  writer.stop();
  EXPECT_FALSE(writer.enqueue(0, make_row("after-stop", customer.id, 5)));
  const auto stats = writer.stats();
  EXPECT_EQ(stats.enqueued, 6U);
  EXPECT_EQ(stats.dropped, 4U);
  EXPECT_EQ(stats.written, 6U);
  EXPECT_EQ(real->count_ledger_rows(), 6);
  EXPECT_FALSE(real->find_ledger_row("over-0").has_value());
  EXPECT_EQ(metrics.telemetry_dropped.series({"ledger"}).value(), 4.0);
}

TEST_F(LedgerWriterTest, RejectsARegistryWithoutABackgroundShard) {
  telemetry::registry reg{2};
  telemetry::catalog metrics{reg, "test"};
  EXPECT_THROW((ledger::ledger_writer{*real, options(), 2, &metrics}), std::invalid_argument);
}

TEST_F(LedgerWriterTest, RowsSpilledDuringAnOutageAreReplayedWhenTheStoreReturns) {
  test::forwarding_store flaky{*real};
  const store::nanos_usd before = balance();
  ledger::ledger_writer writer{flaky, options(20), 2, nullptr, collect_errors()};

  flaky.down = true;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(writer.enqueue(static_cast<std::size_t>(i % 2), make_row(fmt::format("out-{}", i), customer.id, 10)));
    if (i % 50 == 0) std::this_thread::sleep_for(30ms);  // spread over several flushes
  }
  ASSERT_TRUE(eventually([&] { return writer.stats().spilled == 200; }));
  EXPECT_EQ(count_lines(writer.spill_path()), 200U);
  EXPECT_EQ(real->count_ledger_rows(), 0);
  {
    std::lock_guard lock{errors_mu};
    ASSERT_FALSE(errors.empty());
    EXPECT_NE(errors.front().find("spilled"), std::string::npos) << errors.front();
  }

  flaky.down = false;
  ASSERT_TRUE(eventually([&] { return real->count_ledger_rows() == 200; }));
  ASSERT_TRUE(eventually([&] { return !std::filesystem::exists(writer.spill_path()); }));
  // Traffic after the outage goes straight to the store.
  ASSERT_TRUE(writer.enqueue(0, make_row("after", customer.id, 10)));
  writer.stop();
  EXPECT_EQ(real->count_ledger_rows(), 201);
  EXPECT_EQ(balance(), before - 201 * 10);
  const auto stats = writer.stats();
  EXPECT_EQ(stats.replayed, 200U);
  EXPECT_EQ(stats.written, 1U);
  EXPECT_EQ(stats.dropped, 0U);
}

TEST_F(LedgerWriterTest, ALongOutageSpillsIntoSegmentsThatAreReplayedOnePieceAtATime) {
  test::forwarding_store flaky{*real};
  auto o = options(20);
  o.spill_segment_bytes = 4096;  // about 15 rows a segment
  ledger::ledger_writer writer{flaky, o, 1, nullptr, collect_errors()};
  ledger::spill_file view{writer.spill_path()};

  flaky.down = true;
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(writer.enqueue(0, make_row(fmt::format("seg-{:04}", i), customer.id, 10)));
    if (i % 20 == 0) std::this_thread::sleep_for(25ms);  // spread over several flushes
  }
  ASSERT_TRUE(eventually([&] { return writer.stats().spilled == 300; }));
  const auto segments = view.sealed_segments();
  EXPECT_GE(segments.size(), 5U);
  std::size_t spilled_lines = count_lines(writer.spill_path());
  for (const auto& segment : segments) spilled_lines += count_lines(segment);
  EXPECT_EQ(spilled_lines, 300U);

  flaky.down = false;
  ASSERT_TRUE(eventually([&] { return real->count_ledger_rows() == 300; }));
  ASSERT_TRUE(eventually([&] { return !view.has_data(); }));
  writer.stop();
  EXPECT_EQ(writer.stats().replayed, 300U);
  EXPECT_EQ(writer.stats().dropped, 0U);
}

TEST_F(LedgerWriterTest, StopSpillsWhatTheStoreCannotTakeAndANewWriterReplaysIt) {
  test::forwarding_store flaky{*real};
  const store::nanos_usd before = balance();
  {
    flaky.down = true;
    ledger::ledger_writer writer{flaky, options(60'000), 1, nullptr, collect_errors()};
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(writer.enqueue(0, make_row(fmt::format("kept-{}", i), customer.id, 3)));
    writer.stop();  // the SIGTERM path while the database is down
    EXPECT_EQ(writer.stats().spilled, 50U);
  }
  EXPECT_EQ(count_lines(dir.file("ledger.spill")), 50U);
  EXPECT_EQ(real->count_ledger_rows(), 0);

  flaky.down = false;
  ledger::ledger_writer restarted{flaky, options(60'000), 1, nullptr, collect_errors()};
  // Nothing enqueued: the writer replays on start, without waiting an interval.
  ASSERT_TRUE(eventually([&] { return real->count_ledger_rows() == 50; }, 5s));
  restarted.stop();
  EXPECT_EQ(restarted.stats().replayed, 50U);
  EXPECT_EQ(balance(), before - 50 * 3);
  EXPECT_FALSE(std::filesystem::exists(dir.file("ledger.spill")));
}

TEST_F(LedgerWriterTest, ReplayingRowsAlreadyCommittedDebitsThemOnlyOnce) {
  // A crash between committing a replay and truncating the spill file leaves
  // rows in both places.
  const store::nanos_usd before = balance();
  std::vector<store::ledger_row> rows;
  for (int i = 0; i < 10; ++i) rows.push_back(make_row(fmt::format("dup-{}", i), customer.id, 100));
  const std::vector<store::ledger_row> committed(rows.begin(), rows.begin() + 6);
  real->write_ledger(committed);
  ledger::spill_file{dir.file("ledger.spill")}.append(rows);

  ledger::ledger_writer writer{*real, options(), 1, nullptr, collect_errors()};
  ASSERT_TRUE(eventually([&] { return !std::filesystem::exists(dir.file("ledger.spill")); }));
  writer.stop();
  EXPECT_EQ(real->count_ledger_rows(), 10);
  EXPECT_EQ(balance(), before - 10 * 100);
}

TEST_F(LedgerWriterTest, ATornLastLineFromACrashIsSkippedAndTheRestReplayed) {
  const std::string path = dir.file("ledger.spill");
  ledger::spill_file spill{path};
  spill.append(std::vector{make_row("torn-0", customer.id, 1), make_row("torn-1", customer.id, 1)});
  {
    std::ofstream out(path, std::ios::app);
    const std::string whole = ledger::encode_row(make_row("torn-2", customer.id, 1));
    out << whole.substr(0, whole.size() / 2);  // the crash happened mid-write
  }
  // An append after the crash must start on a new line.
  spill.append(std::vector{make_row("torn-3", customer.id, 1)});

  ledger::ledger_writer writer{*real, options(), 1, nullptr, collect_errors()};
  ASSERT_TRUE(eventually([&] { return !std::filesystem::exists(path); }));
  writer.stop();
  EXPECT_EQ(real->count_ledger_rows(), 3);
  EXPECT_TRUE(real->find_ledger_row("torn-3").has_value());
  std::lock_guard lock{errors_mu};
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors.front().find("1 unreadable line"), std::string::npos) << errors.front();
}

TEST_F(LedgerWriterTest, ARowTheHealthyStoreRefusesIsSetAsideWithoutBlockingOthers) {
  test::forwarding_store picky{*real};
  picky.refuse_request_id("poison");
  auto o = options(20);
  o.batch_max = 8;
  ledger::ledger_writer writer{picky, o, 1, nullptr, collect_errors()};
  int sent = 0;
  // Steady traffic: the rows around the poisoned one keep being accepted,
  // which is what tells a bad row from a store that refuses everything.
  const bool set_aside = eventually([&] {
    const std::string id = sent == 11 ? "poison" : fmt::format("ok-{}", sent);
    EXPECT_TRUE(writer.enqueue(0, make_row(id, customer.id, 1)));
    ++sent;
    return writer.stats().rejected == 1;
  });
  writer.stop();
  ASSERT_TRUE(set_aside);
  EXPECT_EQ(real->count_ledger_rows(), sent - 1);
  EXPECT_FALSE(real->find_ledger_row("poison").has_value());
  const auto stats = writer.stats();
  EXPECT_EQ(stats.rejected, 1U);
  EXPECT_EQ(stats.dropped, 0U);
  EXPECT_EQ(count_lines(dir.file("ledger.spill.rejected")), 1U);
  EXPECT_FALSE(std::filesystem::exists(dir.file("ledger.spill")));
}

// At the default chunk size the failure budget must still reach the bad row
// (bisecting 256 rows takes 9 failed writes) and every other row gets written.
TEST_F(LedgerWriterTest, ABadRowInAFullSizeChunkIsIsolatedAndTheRestOfTheFlushWritten) {
  test::forwarding_store picky{*real};
  picky.refuse_request_id("poison");
  auto o = options(20);
  o.batch_max = 256;
  ledger::ledger_writer writer{picky, o, 1, nullptr, collect_errors()};
  ASSERT_TRUE(writer.enqueue(0, make_row("warm-up", customer.id, 1)));
  ASSERT_TRUE(eventually([&] { return writer.stats().written == 1; }));
  for (int i = 0; i < 1000; ++i) {
    const std::string id = i == 300 ? "poison" : fmt::format("row-{:04}", i);
    ASSERT_TRUE(writer.enqueue(0, make_row(id, customer.id, 1)));
  }
  ASSERT_TRUE(eventually([&] { return writer.stats().rejected == 1 && real->count_ledger_rows() == 1000; }));
  writer.stop();
  const auto stats = writer.stats();
  EXPECT_EQ(stats.rejected, 1U);
  EXPECT_FALSE(real->find_ledger_row("poison").has_value());
}

TEST_F(LedgerWriterTest, AStoreRefusingEveryWriteWhileAnsweringPingsLosesNothing) {
  test::forwarding_store busy{*real};
  const store::nanos_usd before = balance();
  auto o = options(20);
  o.batch_max = 16;
  ledger::ledger_writer writer{busy, o, 1, nullptr, collect_errors()};
  ASSERT_TRUE(writer.enqueue(0, make_row("before", customer.id, 2)));
  ASSERT_TRUE(eventually([&] { return writer.stats().written == 1; }));

  busy.refuse_writes = true;  // e.g. lock timeouts: ping() still succeeds
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(writer.enqueue(0, make_row(fmt::format("busy-{}", i), customer.id, 2)));
  ASSERT_TRUE(eventually([&] { return writer.stats().spilled >= 100; }));
  std::this_thread::sleep_for(100ms);  // several flushes retry the spill file
  EXPECT_EQ(writer.stats().rejected, 0U) << "a store refusing everything is not a poison row";

  busy.refuse_writes = false;
  ASSERT_TRUE(eventually([&] { return real->count_ledger_rows() == 101; }));
  writer.stop();
  EXPECT_EQ(balance(), before - 101 * 2);
  EXPECT_EQ(writer.stats().rejected, 0U);
  EXPECT_FALSE(std::filesystem::exists(dir.file("ledger.spill.rejected")));
}

TEST(SpillFormat, RowsRoundTripThroughJsonLines) {
  store::ledger_row full = make_row("r\"1\n", 42, 9'007'199'254'740'993);  // above 2^53: stays exact
  full.ttft_ms = 3.25;
  full.streamed = true;
  full.latency_ms = 0.1 + 0.2;
  store::ledger_row anonymous = make_row("r2", std::nullopt, 0);
  for (const auto& row : {full, anonymous}) {
    const std::string line = ledger::encode_row(row);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    store::ledger_row back;
    ASSERT_TRUE(ledger::decode_row(line, back)) << line;
    EXPECT_EQ(back.request_id, row.request_id);
    EXPECT_EQ(back.customer_id, row.customer_id);
    EXPECT_EQ(back.key_id, row.key_id);
    EXPECT_EQ(back.cost, row.cost);
    EXPECT_EQ(back.latency_ms, row.latency_ms);
    EXPECT_EQ(back.ttft_ms, row.ttft_ms);
    EXPECT_EQ(back.streamed, row.streamed);
    EXPECT_EQ(back.model, row.model);
    EXPECT_EQ(back.http_status, row.http_status);
  }
  store::ledger_row ignored;
  EXPECT_FALSE(ledger::decode_row(R"({"request_id":"x"})", ignored));
  EXPECT_FALSE(ledger::decode_row("{\"request_id\":\"x\",\"unix", ignored));
}

TEST(SpillSegments, ReplayTakesTheOldestPieceFirstAndKeepsWhatItHandsBack) {
  temp_dir dir;
  const std::string path = dir.file("ledger.spill");
  const std::size_t row_bytes = ledger::encode_row(make_row("id-0000", 1, 1)).size() + 1;
  ledger::spill_file spill{path, 10 * row_bytes};  // sealed at ten rows
  for (int batch = 0; batch < 7; ++batch) {
    std::vector<store::ledger_row> rows;
    for (int i = 0; i < 4; ++i) rows.push_back(make_row(fmt::format("id-{:04}", batch * 4 + i), 1, 1));
    spill.append(rows);
  }
  // 28 rows: sealed after 12 and after 24 (an append seals once it crosses
  // the size), 4 left in the open file.
  ASSERT_EQ(spill.sealed_segments().size(), 2U);
  EXPECT_EQ(count_lines(path), 4U);
  // A segment that another spill file's name merely starts with is not ours.
  std::ofstream(path + ".rejected.seg-0000000001") << "x\n";

  std::vector<std::string> seen;
  bool handed_back = false;
  for (int call = 0; call < 10 && spill.has_data(); ++call) {
    spill.replay([&](std::vector<store::ledger_row> rows) {
      EXPECT_LE(rows.size(), 12U);
      std::vector<store::ledger_row> keep;
      for (auto& row : rows) {
        // The first piece hands its last row back once: it comes first next time.
        if (!handed_back && &row == &rows.back()) {
          handed_back = true;
          keep.push_back(row);
          continue;
        }
        seen.push_back(row.request_id);
      }
      return keep;
    });
  }
  EXPECT_FALSE(spill.has_data());
  ASSERT_EQ(seen.size(), 28U);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));  // oldest first
  EXPECT_TRUE(spill.sealed_segments().empty());
  EXPECT_TRUE(std::filesystem::exists(path + ".rejected.seg-0000000001"));
}

TEST(SpillPath, SitsNextToAnSqliteDatabaseElseInTheWorkingDirectory) {
  EXPECT_EQ(ledger::default_spill_path("sqlite:///var/lib/gw/gatewayz.db"), "/var/lib/gw/gatewayz.db-ledger.spill");
  EXPECT_EQ(ledger::default_spill_path("sqlite://./gatewayz.db"), "./gatewayz.db-ledger.spill");
  EXPECT_EQ(ledger::default_spill_path("postgres://u:p@db:5432/gw"), "./gatewayz-ledger.spill");
}

}  // namespace
