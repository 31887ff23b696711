#include "http/deadlines.hpp"

#include <array>
#include <chrono>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

namespace gatewayz::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A connected loopback pair: `a` is ours, `b` the peer.
struct socket_pair {
  explicit socket_pair(asio::io_context& io) : a(io), b(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    a.connect(acceptor.local_endpoint());
    b = acceptor.accept();
  }
  tcp::socket a;
  tcp::socket b;
};

// One io_context with one watched connection and a read buffer.
class DeadlinesTest : public ::testing::Test {
 protected:
  asio::io_context io;
  socket_pair pair{io};
  deadline_sweeper& sweeper = deadline_sweeper::of(io);
  io_deadline deadline{sweeper, pair.a};
  std::array<char, 16> buffer{};
};

TEST_F(DeadlinesTest, AnExpiredDeadlineCancelsThePendingReadAndSaysSo) {
  boost::system::error_code result;
  deadline.expires_after(40ms);
  EXPECT_EQ(sweeper.armed(), 1u);
  const auto started = std::chrono::steady_clock::now();
  pair.a.async_read_some(asio::buffer(buffer), [&](boost::system::error_code ec, std::size_t) { result = ec; });
  io.run();  // returns once the read ended and the sweeper has nothing left to watch
  const auto waited = std::chrono::steady_clock::now() - started;

  EXPECT_EQ(result, asio::error::operation_aborted);
  EXPECT_TRUE(deadline.expired());
  EXPECT_EQ(sweeper.armed(), 0u);
  EXPECT_GE(waited, 30ms);  // the coarse clock may lag by a kernel tick
  EXPECT_LT(waited, 2s);
}

TEST_F(DeadlinesTest, AClearedDeadlineNeverFires) {
  boost::system::error_code result = asio::error::would_block;
  std::size_t got = 0;
  deadline.expires_after(60ms);
  pair.a.async_read_some(asio::buffer(buffer), [&](boost::system::error_code ec, std::size_t n) {
    result = ec;
    got = n;
    deadline.clear();
  });
  asio::write(pair.b, asio::buffer("ping", 4));
  io.run_for(300ms);

  EXPECT_FALSE(result);
  EXPECT_EQ(got, 4u);
  EXPECT_FALSE(deadline.expired());
  EXPECT_EQ(sweeper.armed(), 0u);
}

TEST(DeadlinesSweep, OnlyThePassedDeadlineFiresAndRearmingClearsExpired) {
  asio::io_context io;
  socket_pair first(io);
  socket_pair second(io);
  auto& sweeper = deadline_sweeper::of(io);
  io_deadline soon(sweeper, first.a);
  io_deadline later(sweeper, second.a);

  std::array<char, 16> buffer_a{};
  std::array<char, 16> buffer_b{};
  boost::system::error_code result_a;
  boost::system::error_code result_b = asio::error::would_block;
  soon.expires_after(20ms);
  later.expires_after(10s);
  first.a.async_read_some(asio::buffer(buffer_a), [&](boost::system::error_code ec, std::size_t) {
    result_a = ec;
    // The other socket is still within its deadline: end its read normally.
    asio::write(second.b, asio::buffer("x", 1));
  });
  second.a.async_read_some(asio::buffer(buffer_b), [&](boost::system::error_code ec, std::size_t) {
    result_b = ec;
    later.clear();
  });
  io.run_for(3s);

  EXPECT_EQ(result_a, asio::error::operation_aborted);
  EXPECT_TRUE(soon.expired());
  EXPECT_FALSE(result_b);
  EXPECT_FALSE(later.expired());

  soon.expires_after(10s);
  EXPECT_FALSE(soon.expired());
  soon.clear();
  EXPECT_EQ(sweeper.armed(), 0u);
}

TEST(DeadlinesSweep, DeadlinesOutlivingTheirIoContextAreDetachedSafely) {
  auto io = std::make_unique<asio::io_context>();
  auto pair = std::make_unique<socket_pair>(*io);
  auto deadline = std::make_unique<io_deadline>(deadline_sweeper::of(*io), pair->a);
  deadline->expires_after(10s);
  // The io_context (and its sweeper) goes first, as when coroutine frames
  // are destroyed by the io_context's teardown; the deadline's later use and
  // destruction must not touch it. (The sockets must go before their
  // io_context; the deadline never touches its socket without a sweeper.)
  pair.reset();
  io.reset();
  deadline->expires_after(1s);
  deadline->clear();
  deadline.reset();
  SUCCEED();
}

TEST(DeadlinesSweep, ASweeperDestroyedWithItsSweepPendingLeavesNothingBehind) {
  asio::io_context io;
  socket_pair pair(io);
  {
    deadline_sweeper own(io, std::chrono::milliseconds(5));
    io_deadline deadline(own, pair.a);
    deadline.expires_after(1s);  // schedules the sweep timer
  }
  // The destroyed sweeper's aborted timer handler runs now; under ASan any
  // touch of the sweeper would be reported.
  io.run_for(50ms);
  SUCCEED();
}

TEST(DeadlinesSweep, CoarseNowTracksTheSteadyClock) {
  const auto coarse = coarse_now();
  const auto precise = std::chrono::steady_clock::now();
  EXPECT_LE(coarse, precise);
  EXPECT_LT(precise - coarse, 100ms);
}

}  // namespace
}  // namespace gatewayz::http
