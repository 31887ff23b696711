// Limits that hold under abuse, through the real gateway: connection slots
// that one address cannot take all of and idle connections that make room
// for new clients (loopback only, a handful of connections), and credits
// whose amount and resulting balance are range-checked on both stores.

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"
#include "store/store.hpp"
#include "support/postgres_server.hpp"

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

// ---- credits within a documented range (store.hpp: max_balance_nanos) ----------

class CreditRangeTest : public GatewayTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      std::string dir_template = (std::filesystem::temp_directory_path() / "gw-credit-range-XXXXXX").string();
      ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
      dir_ = dir_template;
      url_ = "sqlite://" + dir_ + "/gatewayz.db";
    } else {
      url_ = test_support::postgres_server::shared().create_database();
    }
  }
  void TearDown() override {
    GatewayTest::TearDown();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void start(const mock::mock_provider& m) {
    auto cfg = one_provider(m);
    cfg.auth.mode = "keys";
    cfg.auth.admin_key = "admin-secret";
    cfg.storage.url = url_;
    if (!dir_.empty()) cfg.storage.spill_path = dir_ + "/ledger.spill";
    start_gateway(std::move(cfg));
  }
  reply admin_post(std::string_view target, std::string_view body) {
    return post(target, body, {{"Authorization", "Bearer admin-secret"}});
  }
  static void expect_names(const reply& r, std::string_view member) {
    EXPECT_NE(error_message(r).find("'" + std::string(member) + "'"), std::string::npos) << r.body;
    EXPECT_NE(error_message(r).find("1000000000 USD"), std::string::npos) << r.body;
  }

  std::string dir_;
  std::string url_;
};

TEST_P(CreditRangeTest, AmountsAndBalancesOutsideTheRangeGet400NamingTheField) {
  auto& m = add_mock();
  start(m);
  ASSERT_EQ(admin_post("/admin/customers", R"({"name":"acme"})").status, 201U);

  // The issue's sequence: -9223372036 USD, then -1000 USD.
  auto r = admin_post("/admin/customers/acme/credit", R"({"amount_usd":"-9223372036"})");
  expect_openai_error(r, 400, "invalid_request");
  expect_names(r, "amount_usd");
  r = admin_post("/admin/customers/acme/credit", R"({"amount_usd":-1000000000})");
  ASSERT_EQ(r.status, 200U) << r.body;
  EXPECT_EQ(r.json().at("balance_usd").as_string(), "-1000000000.00");
  r = admin_post("/admin/customers/acme/credit", R"({"amount_usd":"-1000"})");
  expect_openai_error(r, 400, "amount_out_of_range");
  expect_names(r, "amount_usd");
  EXPECT_NE(error_message(r).find("to -1000001000.00 USD"), std::string::npos) << r.body;

  // Creation with credits: the amount alone, and the balance it would leave.
  r = admin_post("/admin/customers", R"({"name":"whale","credits_usd":"1000000000.000000001"})");
  expect_openai_error(r, 400, "invalid_request");
  expect_names(r, "credits_usd");
  ASSERT_EQ(admin_post("/admin/keys", R"({"customer":"big","credits_usd":"999999999"})").status, 201U);
  r = admin_post("/admin/keys", R"({"customer":"big","credits_usd":"2"})");
  expect_openai_error(r, 400, "amount_out_of_range");
  expect_names(r, "credits_usd");

  // Nothing the refused calls asked for happened; balances are exact integers.
  auto& db = *gateway_->app().store();
  EXPECT_EQ(db.find_customer("acme")->balance, -store::max_balance_nanos);
  EXPECT_EQ(db.find_customer("big")->balance, 999'999'999 * store::nanos_per_usd);
  EXPECT_FALSE(db.find_customer("whale"));
  EXPECT_EQ(db.list_keys().size(), 1U);
}

std::string store_name(const ::testing::TestParamInfo<std::string>& param) { return param.param; }

INSTANTIATE_TEST_SUITE_P(Stores, CreditRangeTest, ::testing::Values("sqlite", "postgres"), store_name);

}  // namespace
}  // namespace gatewayz::test
