#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "logging/log.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::logging {
namespace {

// A temporary file the logger writes to, read back as lines.
class log_file {
 public:
  log_file() {
    path_ = std::filesystem::temp_directory_path() /
            ("gatewayz-log-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fd_ = ::open(path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
  }
  ~log_file() {
    ::close(fd_);
    std::filesystem::remove(path_);
  }
  int fd() const { return fd_; }
  std::vector<std::string> lines() const {
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
  int fd_;
};

TEST(Logger, WritesEveryLevelAtOrAboveTheMinimumRedacted) {
  log_file file;
  logger_options options;
  options.fd = file.fd();
  options.min_level = level::info;
  options.shards = 2;
  logger log{options};
  log.write(event{level::debug, "hidden"});
  event e{level::info, "request completed"};
  e.text("auth", "Bearer sk-abcdefghijklmnopqrstuvwx").text("card", "4111111111111111");
  log.write(e, 0);
  log.write(event{level::error, "from shard 1"}, 1);
  log.flush();
  const auto lines = file.lines();
  ASSERT_EQ(lines.size(), 2U);
  for (const auto& line : lines) {
    EXPECT_FALSE(boost::json::parse(line).as_object().empty());
    EXPECT_EQ(line.find("sk-abcdefgh"), std::string::npos) << line;
    EXPECT_EQ(line.find("4111111111111111"), std::string::npos) << line;
  }
  EXPECT_NE(lines[0].find("\"level\":\"info\""), std::string::npos);
  EXPECT_EQ(log.stats().written, 2U);
}

// Each thread's lines keep their order and their timestamps never go back.
// Across threads only each writer batch is sorted by time: a thread stopped
// between stamping a line and queuing it (TSan's scheduling does that for
// 20 ms) can land its line after later ones of other threads, which Loki's
// per-stream ordering absorbs (loki.hpp) and stdout readers sort by field.
TEST(Logger, LinesFromManyThreadsAreAllWrittenEachThreadsInOrder) {
  log_file file;
  logger_options options;
  options.fd = file.fd();
  options.shards = 4;
  logger log{options};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 500; ++i) {
        event e{level::info, "line"};
        e.integer("thread", static_cast<std::int64_t>(t)).integer("i", i);
        log.write(e, t);
      }
    });
  }
  for (auto& t : threads) t.join();
  log.stop();
  const auto lines = file.lines();
  ASSERT_EQ(lines.size(), 2000U);
  std::array<std::int64_t, 4> next{};
  std::array<std::string, 4> previous;
  for (const auto& line : lines) {
    const auto record = boost::json::parse(line).as_object();
    const auto t = static_cast<std::size_t>(record.at("thread").as_int64());
    ASSERT_LT(t, 4U);
    EXPECT_EQ(record.at("i").as_int64(), next[t]++) << line;
    const auto ts = std::string(record.at("timestamp").as_string());
    EXPECT_LE(previous[t], ts) << line;
    previous[t] = ts;
  }
  for (const auto n : next) EXPECT_EQ(n, 500);
}

TEST(Logger, AFullQueueDropsItsOldestLinesAndCountsThem) {
  // The writer is stuck behind a pipe nobody reads.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::fcntl(fds[1], F_SETPIPE_SZ, 4096);
  telemetry::registry registry{2};
  telemetry::catalog metrics{registry, "test"};
  logger_options options;
  options.fd = fds[1];
  options.queue_capacity = 16;
  options.shards = 1;
  auto log = std::make_unique<logger>(options);
  log->attach_metrics(metrics);
  const std::string big(1000, 'x');
  for (int i = 0; i < 2000; ++i) {
    event e{level::info, "line"};
    e.text("pad", big).integer("i", i);
    log->write(e, 0);  // never blocks, whatever the pipe does
  }
  // Unblock the writer: read everything it wrote, then let it finish.
  std::thread reader([fd = fds[0]] {
    char buf[65536];
    while (::read(fd, buf, sizeof buf) > 0) {
    }
  });
  log->stop();
  const auto stats = log->stats();
  EXPECT_GT(stats.dropped_queue, 0U);
  EXPECT_EQ(stats.written + stats.dropped_queue, 2000U);
  EXPECT_EQ(metrics.log_records_dropped.series({"queue_full"}).value(), static_cast<double>(stats.dropped_queue));
  log->detach_metrics();
  log.reset();
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
}

}  // namespace
}  // namespace gatewayz::logging
