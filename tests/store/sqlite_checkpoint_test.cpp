// WAL checkpoints of the SQLite store: run by the low-priority checkpointer
// thread, and by a committing connection only once the WAL passes the
// backstop. Each test writes one transaction per round and watches the WAL
// file: without checkpoints it grows by a round's pages every round; with
// them a fully copied WAL starts again from its beginning.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/ledger_rows.hpp"
#include "store/sqlite_store.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::store {
namespace {

namespace fs = std::filesystem;

class SqliteCheckpoints : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = (fs::temp_directory_path() / "gwz-checkpoint-XXXXXX").string();
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    db_ = dir_ + "/ledger.db";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The schema is created first by another store, closed before the one
  // under test opens, so that no checkpoint is pending when a test starts
  // (closing the last connection checkpoints and removes the WAL).
  std::unique_ptr<store> open(const sqlite_options& options) {
    open_sqlite_store("sqlite://" + db_, nullptr, {.thread_checkpoint_pages = 0})->migrate();
    auto s = open_sqlite_store("sqlite://" + db_, &catalog_, options);
    s->migrate();  // nothing left to do: no commit, no checkpoint
    return s;
  }

  // One transaction of `count` ledger rows (about 100 bytes each).
  void write_round(store& s, int round, int count = 1000) {
    std::vector<ledger_row> rows;
    rows.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
      rows.push_back(test_rows::make_row("req_" + std::to_string(round) + "_" + std::to_string(100000 + i),
                                         std::nullopt, 0, 1'790'000'000'000 + round, 1.5, "gpt-4o-mini", "mock"));
    }
    ASSERT_EQ(s.write_ledger(rows), rows.size());
  }

  std::uintmax_t wal_bytes() const {
    std::error_code ec;
    const auto size = fs::file_size(db_ + "-wal", ec);
    return ec ? 0 : size;
  }
  std::uintmax_t db_bytes() const { return fs::file_size(db_); }
  std::uint64_t checkpoints(const char* operation) {
    return catalog_.database_query_duration.series({operation}).count();
  }

  // Waits (up to 20 s: the checkpointer runs at the lowest priority, and the
  // test suite keeps both cores busy) for the checkpoint count to pass `before`.
  bool wait_for_thread_checkpoint(std::uint64_t before) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (checkpoints("wal_checkpoint") <= before) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  std::string dir_;
  std::string db_;
  telemetry::registry registry_{2};
  telemetry::catalog catalog_{registry_, "test"};
};

// Field `wanted` of /proc/self/task/<tid>/stat of this process's thread named
// `name` (19 is the nice value, 41 the scheduling policy), or -1 if there is
// no such thread.
int stat_field_of_thread(const std::string& name, int wanted) {
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string thread_name;
    std::getline(comm, thread_name);
    if (thread_name != name) continue;
    std::ifstream stat_file(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    // Fields after the ")" that ends the command name start at field 3.
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    for (int index = 3; rest >> field; ++index) {
      if (index == wanted) return std::stoi(field);
    }
  }
  return -1;
}

int policy_of_thread(const std::string& name) { return stat_field_of_thread(name, 41); }
int nice_of_thread(const std::string& name) { return stat_field_of_thread(name, 19); }

TEST_F(SqliteCheckpoints, TheCheckpointerThreadKeepsTheWalShortWhileWritersNeverCheckpoint) {
  // A backstop that is never reached: only the checkpointer can copy pages.
  auto s = open({.thread_checkpoint_pages = 20, .backstop_checkpoint_pages = 0});
  // The thread names itself and lowers its priority as it starts: the
  // lowest there is short of SCHED_IDLE, whose share of a saturated core is
  // too small for the checkpoints to keep up (see sqlite_internal.hpp).
  const auto started = std::chrono::steady_clock::now();
  while (nice_of_thread("gw-checkpoint") != 19 &&
         std::chrono::steady_clock::now() - started < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(policy_of_thread("gw-checkpoint"), SCHED_BATCH);
  EXPECT_EQ(nice_of_thread("gw-checkpoint"), 19);

  const std::uintmax_t empty_db = db_bytes();
  const std::uintmax_t migrated_wal = wal_bytes();
  std::uintmax_t round_wal = 0;
  for (int round = 0; round < 12; ++round) {
    const std::uint64_t before = checkpoints("wal_checkpoint");
    write_round(*s, round);
    if (round == 0) round_wal = wal_bytes() - migrated_wal;
    ASSERT_TRUE(wait_for_thread_checkpoint(before)) << "round " << round;
  }
  // Twelve rounds without a checkpoint would leave 12 rounds in the WAL (see
  // the control below); checkpointed after each, every round starts it again
  // from the beginning, so it never holds more than the first round did.
  EXPECT_GT(round_wal, 20u * 4096);
  EXPECT_LE(wal_bytes(), migrated_wal + 2 * round_wal) << "one round " << round_wal;
  // The pages are in the database file (12,000 rows of ~100 bytes), copied
  // there by the checkpointer, since no commit checkpointed.
  EXPECT_GT(db_bytes(), empty_db + 12'000 * 60);
  EXPECT_EQ(checkpoints("wal_checkpoint_backstop"), 0u);
}

TEST_F(SqliteCheckpoints, WithoutTheThreadTheBackstopBoundsTheWalOnTheCommittingConnection) {
  // No checkpointer thread (as if it could not keep up); a round is
  // about 30 pages, so every second commit passes the 40-page backstop.
  auto s = open({.thread_checkpoint_pages = 0, .backstop_checkpoint_pages = 40});
  EXPECT_EQ(policy_of_thread("gw-checkpoint"), -1);

  const std::uintmax_t migrated_wal = wal_bytes();
  std::uintmax_t round_wal = 0;
  for (int round = 0; round < 12; ++round) {
    write_round(*s, round);
    if (round == 0) round_wal = wal_bytes() - migrated_wal;
  }
  EXPECT_GT(round_wal, 20u * 4096);
  EXPECT_LE(wal_bytes(), migrated_wal + 3 * round_wal) << "one round " << round_wal;
  EXPECT_GE(checkpoints("wal_checkpoint_backstop"), 4u);
  EXPECT_EQ(checkpoints("wal_checkpoint"), 0u);
}

TEST_F(SqliteCheckpoints, CommitsBelowBothThresholdsLeaveTheWalToGrowPastSqlitesOwnAutocheckpoint) {
  // The control for the two tests above: the same rounds with thresholds
  // never reached grow the WAL, also past the 1000 pages at which SQLite's
  // own autocheckpoint (which the hook replaces) would have copied it.
  auto s = open({.thread_checkpoint_pages = 100'000, .backstop_checkpoint_pages = 100'000});
  const std::uintmax_t migrated_wal = wal_bytes();
  std::uintmax_t round_wal = 0;
  constexpr int rounds = 40;
  for (int round = 0; round < rounds; ++round) {
    write_round(*s, round);
    if (round == 0) round_wal = wal_bytes() - migrated_wal;
  }
  EXPECT_GT(wal_bytes(), 1000u * 4096);
  EXPECT_GE(wal_bytes(), migrated_wal + (rounds - 1) * round_wal) << "one round " << round_wal;
  EXPECT_EQ(checkpoints("wal_checkpoint") + checkpoints("wal_checkpoint_backstop"), 0u);
}

}  // namespace
}  // namespace gatewayz::store
