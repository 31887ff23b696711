// Limits that hold under abuse, through the real gateway: connection slots
// that one address cannot take all of and idle connections that make room
// for new clients (loopback only, a handful of connections).

#include <sys/socket.h>
#include <sys/time.h>

#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

namespace gatewayz::test {
namespace {

// A blocking keep-alive HTTP connection from a chosen loopback address.
class raw_connection {
 public:
  raw_connection(std::string_view source, std::uint16_t port) : socket_(io_) {
    socket_.open(tcp::v4());
    socket_.bind(tcp::endpoint(asio::ip::make_address(source), 0));
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{};
    tv.tv_sec = 5;
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  // One GET on this connection; the response, or status 0 when the
  // connection was closed instead (ec says how).
  bhttp::response<bhttp::string_body> get(std::string_view target, boost::system::error_code& ec) {
    const std::string request = "GET " + std::string(target) + " HTTP/1.1\r\nHost: gateway.test\r\n\r\n";
    asio::write(socket_, asio::buffer(request), ec);
    bhttp::response<bhttp::string_body> res;
    if (!ec) bhttp::read(socket_, buffer_, res, ec);
    return res;
  }
  unsigned get_status(std::string_view target) {
    boost::system::error_code ec;
    return get(target, ec).result_int();
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

class ConnectionLimitTest : public GatewayTest {
 protected:
  // Opens `n` connections from `source`, each answered once and then left
  // idle (keep-alive).
  std::vector<std::unique_ptr<raw_connection>> idle_connections(std::string_view source, int n) {
    std::vector<std::unique_ptr<raw_connection>> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(std::make_unique<raw_connection>(source, port()));
      EXPECT_EQ(out.back()->get_status("/health"), 200U) << i;
    }
    return out;
  }
};

TEST_F(ConnectionLimitTest, IdleConnectionsFillingEverySlotMakeRoomForNewClients) {
  auto& m = add_mock();
  auto cfg = one_provider(m);
  cfg.server.max_connections = 8;
  cfg.server.max_connections_per_ip = 8;  // one address may take every slot
  start_gateway(std::move(cfg));
  const auto idle = idle_connections("127.0.0.1", 8);
  ASSERT_EQ(gateway_->open_connections(), 8U);

  // Every slot holds an idle connection, yet a second client is answered,
  // on new connections each time: each takes the slot of an idle one (the
  // longest-idle of its shard, or one of the other shard's).
  for (int i = 0; i < 4; ++i) {
    raw_connection fresh("127.0.0.2", port());
    EXPECT_EQ(fresh.get_status("/health"), 200U) << i;
  }
  const auto r = post("/v1/chat/completions", chat_body);
  EXPECT_EQ(r.status, 200U) << r.body;
  EXPECT_TRUE(eventually([&] { return gateway_->open_connections() <= 8U; }));
  // Idle connections were closed for them; the others still work.
  int closed = 0;
  for (const auto& c : idle) {
    boost::system::error_code ec;
    const auto res = c->get("/health", ec);
    if (ec) {
      ++closed;
    } else {
      EXPECT_EQ(res.result_int(), 200U);
    }
  }
  EXPECT_GE(closed, 1);
  EXPECT_LE(closed, 5);
}

TEST_F(ConnectionLimitTest, OneAddressCannotTakeEverySlot) {
  auto& m = add_mock();
  auto cfg = one_provider(m);
  cfg.server.max_connections = 8;  // max_connections_per_ip defaults to a quarter: 2
  start_gateway(std::move(cfg));
  const auto idle = idle_connections("127.0.0.3", 2);

  // A third connection from that address is refused with a 503 it can read.
  raw_connection third("127.0.0.3", port());
  boost::system::error_code ec;
  const auto refused = third.get("/health", ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(refused.result_int(), 503U);
  EXPECT_EQ(refused[bhttp::field::retry_after], "1");
  EXPECT_NE(refused.body().find("\"code\":\"too_many_connections\""), std::string::npos) << refused.body();
  // Its own idle connections were not closed for it ...
  for (const auto& c : idle) EXPECT_EQ(c->get_status("/health"), 200U);
  // ... and other addresses still get answers.
  raw_connection other("127.0.0.4", port());
  EXPECT_EQ(other.get_status("/health"), 200U);
  const auto r = post("/v1/chat/completions", chat_body);
  EXPECT_EQ(r.status, 200U) << r.body;
}

}  // namespace
}  // namespace gatewayz::test
