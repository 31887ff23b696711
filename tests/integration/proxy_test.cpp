// End-to-end tests of the gateway over real loopback sockets: a gatewayz
// server (the same wiring as `gatewayz serve`) in front of in-process mock
// providers. They pin the error contract, byte forwarding, failover,
// cancellation of upstream calls, and HTTPS verification of upstreams.

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "app/compose.hpp"
#include "config/config.hpp"
#include "http/server.hpp"
#include "mock/mock_provider.hpp"

namespace gatewayz {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

constexpr std::string_view chat_body =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]})";

// A mock provider running on background threads for the duration of a test.
std::unique_ptr<mock::mock_provider> start_mock(std::optional<http::tls_files> tls = std::nullopt) {
  mock::mock_options options;
  options.server.host = "127.0.0.1";
  options.server.port = 0;
  options.server.threads = 1;
  options.server.tls = std::move(tls);
  options.required_api_key = "upstream-secret";
  auto m = std::make_unique<mock::mock_provider>(std::move(options));
  m->start();
  return m;
}

// A port nothing listens on: bind one, then close it.
std::uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor a{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  const auto port = a.local_endpoint().port();
  a.close();
  return port;
}

config::provider_config provider(std::string name, std::string base_url,
                                 config::provider_kind kind = config::provider_kind::openai) {
  config::provider_config p;
  p.name = std::move(name);
  p.kind = kind;
  p.base_url = std::move(base_url);
  p.api_key = "upstream-secret";
  p.timeout_s = 5;
  p.connect_timeout_s = 2;
  return p;
}

config::model_config model(std::string id, std::string upstream = {}) {
  config::model_config m;
  m.id = id;
  m.upstream = upstream.empty() ? id : std::move(upstream);
  return m;
}

std::string http_url(const mock::mock_provider& m) { return "http://127.0.0.1:" + std::to_string(m.port()) + "/v1"; }

struct reply {
  unsigned status = 0;
  bhttp::fields headers;
  std::string body;
  json::value json() const { return json::parse(body); }
  std::string error_code() const { return std::string(json::parse(body).at("error").at("code").as_string()); }
};

// The gateway, served exactly as `gatewayz serve` does, on background threads.
class gateway_under_test {
 public:
  explicit gateway_under_test(config::gateway_config cfg) {
    cfg.server.threads = 2;
    cfg.storage.url = "none";
    app_ = std::make_unique<app::gateway_app>(std::move(cfg));
    http::server_options options = app_->server_options();
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<http::server>(options, app_->handler_factory());
    server_->listen();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~gateway_under_test() {
    server_->shutdown(1s);
    thread_.join();
  }

  std::uint16_t port() const { return server_->port(); }

  tcp::socket connect(std::chrono::milliseconds recv_timeout = 10s) {
    tcp::socket s{io_};
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()));
    timeval tv{};
    tv.tv_sec = recv_timeout.count() / 1000;
    tv.tv_usec = (recv_timeout.count() % 1000) * 1000;
    setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
  }

  reply request(bhttp::verb method, std::string_view target, std::string_view body = {},
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto s = connect();
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "gateway");
    for (auto& [k, v] : headers) req.set(k, v);
    if (!body.empty()) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = std::string(body);
    }
    req.prepare_payload();
    bhttp::write(s, req);
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    bhttp::read(s, buffer, parser);
    reply r;
    r.status = parser.get().result_int();
    r.headers = parser.get().base();
    r.body = parser.get().body();
    return r;
  }

  reply post(std::string_view target, std::string_view body,
             std::vector<std::pair<std::string, std::string>> headers = {}) {
    return request(bhttp::verb::post, target, body, std::move(headers));
  }

 private:
  std::unique_ptr<app::gateway_app> app_;
  std::unique_ptr<http::server> server_;
  std::thread thread_;
  asio::io_context io_;
};

config::gateway_config one_provider(const mock::mock_provider& m) {
  config::gateway_config cfg;
  auto p = provider("alpha", http_url(m));
  p.models = {model("gpt-4o-mini", "upstream-mini"), model("text-embedding-3-small")};
  cfg.providers.push_back(p);
  return cfg;
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 3s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

void expect_openai_error(const reply& r, unsigned status, std::string_view code) {
  EXPECT_EQ(r.status, status) << r.body;
  const auto body = json::parse(r.body);
  const auto& error = body.at("error").as_object();
  EXPECT_TRUE(error.contains("message"));
  EXPECT_TRUE(error.contains("type"));
  EXPECT_EQ(error.at("code").as_string(), code) << r.body;
  EXPECT_FALSE(r.headers["x-request-id"].empty());
}

// ---------------------------------------------------------------------------

TEST(proxy, forwards_the_clients_bytes_with_only_the_model_rewritten) {
  auto mock = start_mock();
  gateway_under_test gw{one_provider(*mock)};
  const std::string body =
      R"({ "model" : "gpt-4o-mini",  "messages":[{"role":"user","content":"hi \u00e9"}], "temperature": 0.25 })";
  auto r = gw.post("/v1/chat/completions", body,
                   {{"authorization", "Bearer client-key-must-not-leak"}, {"x-request-id", "client-req-1"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.headers["x-request-id"], "client-req-1");
  EXPECT_EQ(r.headers["x-gatewayz-provider"], "alpha");
  EXPECT_EQ(r.json().at("object").as_string(), "chat.completion");

  const auto seen = mock->recent_requests();
  ASSERT_FALSE(seen.empty());
  const auto& upstream = seen.back();
  std::string expected = body;
  expected.replace(expected.find("\"gpt-4o-mini\""), 13, "\"upstream-mini\"");
  EXPECT_EQ(upstream.body, expected);  // byte for byte, whitespace and escapes kept
  std::string auth;
  for (const auto& [k, v] : upstream.headers) {
    if (k == "authorization") auth = v;
  }
  EXPECT_EQ(auth, "Bearer upstream-secret");
}

TEST(proxy, stream_asks_upstream_for_usage_but_only_forwards_it_when_asked) {
  auto mock = start_mock();
  gateway_under_test gw{one_provider(*mock)};
  const auto plain = gw.post("/v1/chat/completions",
                             R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(plain.status, 200u);
  EXPECT_EQ(plain.headers[bhttp::field::content_type], "text/event-stream");
  EXPECT_NE(plain.body.find("data: [DONE]\n\n"), std::string::npos);
  EXPECT_EQ(plain.body.find("\"usage\":{"), std::string::npos) << "usage chunk leaked";
  EXPECT_NE(mock->recent_requests().back().body.find(R"("stream_options":{"include_usage":true})"), std::string::npos);

  const auto asked = gw.post(
      "/v1/chat/completions",
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(asked.status, 200u);
  EXPECT_NE(asked.body.find("\"usage\":{"), std::string::npos);
}

TEST(proxy, every_endpoint_answers) {
  auto mock = start_mock();
  gateway_under_test gw{one_provider(*mock)};
  EXPECT_EQ(gw.post("/v1/completions", R"({"model":"gpt-4o-mini","prompt":"say"})").status, 200u);
  const auto emb = gw.post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":"abc"})");
  ASSERT_EQ(emb.status, 200u) << emb.body;
  EXPECT_EQ(emb.json().at("object").as_string(), "list");
  const auto models = gw.request(bhttp::verb::get, "/v1/models");
  ASSERT_EQ(models.status, 200u);
  const auto list = models.json();
  const auto& data = list.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[0].at("id").as_string(), "gpt-4o-mini");
  EXPECT_EQ(data[0].at("object").as_string(), "model");
}

TEST(proxy, bad_requests_get_openai_shaped_errors) {
  auto mock = start_mock();
  auto cfg = one_provider(*mock);
  cfg.server.max_body_bytes = 4096;
  gateway_under_test gw{cfg};
  expect_openai_error(gw.post("/v1/chat/completions", "{\"model\": nope"), 400, "invalid_json");
  expect_openai_error(gw.post("/v1/chat/completions", "[1,2]"), 400, "invalid_json");
  expect_openai_error(gw.post("/v1/chat/completions", R"({"messages":[]})"), 400, "missing_model");
  expect_openai_error(gw.post("/v1/chat/completions", R"({"model":"gpt-4o-mini"})"), 400, "missing_messages");
  expect_openai_error(gw.post("/v1/chat/completions", R"({"model":"gpt-4o-mini","messages":"hi"})"), 400,
                      "invalid_messages");
  expect_openai_error(gw.post("/v1/chat/completions", R"({"model":"gpt-4o-mini","messages":[],"stream":"yes"})"), 400,
                      "invalid_stream");
  expect_openai_error(gw.post("/v1/chat/completions", R"({"model":"no-such-model","messages":[]})"), 404,
                      "model_not_found");
  expect_openai_error(gw.post("/v1/chat/completions", std::string(5000, ' ')), 413, "request_too_large");
  const auto wrong_method = gw.request(bhttp::verb::get, "/v1/chat/completions");
  expect_openai_error(wrong_method, 405, "method_not_allowed");
  EXPECT_EQ(wrong_method.headers[bhttp::field::allow], "POST");
  expect_openai_error(gw.request(bhttp::verb::get, "/v2/nothing"), 404, "not_found");
  EXPECT_EQ(mock->stats().requests, 0u) << "a rejected request reached the provider";
}

TEST(proxy, unreachable_upstream_is_502) {
  config::gateway_config cfg;
  auto p = provider("down", "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1");
  p.models = {model("gpt-4o-mini")};
  cfg.providers.push_back(p);
  gateway_under_test gw{cfg};
  expect_openai_error(gw.post("/v1/chat/completions", chat_body), 502, "upstream_unreachable");
}

TEST(proxy, upstream_timeout_is_504) {
  auto mock = start_mock();
  auto b = mock->current_behaviour();
  b.error_rate = 1.0;
  b.failure = mock::failure_mode::hang;
  mock->set_behaviour(b);
  auto cfg = one_provider(*mock);
  cfg.providers[0].timeout_s = 0.5;
  gateway_under_test gw{cfg};
  const auto t0 = std::chrono::steady_clock::now();
  expect_openai_error(gw.post("/v1/chat/completions", chat_body), 504, "upstream_timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST(proxy, upstream_errors_are_passed_on_with_their_status) {
  auto mock = start_mock();
  gateway_under_test gw{one_provider(*mock)};
  auto b = mock->current_behaviour();
  b.error_rate = 1.0;
  for (auto [mode, status] :
       {std::pair{mock::failure_mode::http_500, 500u}, std::pair{mock::failure_mode::http_429, 429u}}) {
    b.failure = mode;
    mock->set_behaviour(b);
    const auto r = gw.post("/v1/chat/completions", chat_body);
    expect_openai_error(r, status, "upstream_" + std::to_string(status));
    EXPECT_NE(r.body.find("alpha"), std::string::npos) << "the message names the provider";
  }
  b.error_rate = 0;
  mock->set_behaviour(b);
  // A request the provider rejects (Anthropic-style validation: max_tokens 0).
  const auto bad = gw.post("/v1/chat/completions",
                           R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"max_tokens":0})");
  expect_openai_error(bad, 400, "upstream_400");
}

TEST(proxy, malformed_upstream_body_is_502) {
  auto mock = start_mock();
  auto b = mock->current_behaviour();
  b.error_rate = 1.0;
  b.failure = mock::failure_mode::malformed_body;
  mock->set_behaviour(b);
  gateway_under_test gw{one_provider(*mock)};
  expect_openai_error(gw.post("/v1/chat/completions", chat_body), 502, "upstream_bad_response");
}

TEST(proxy, reset_mid_stream_ends_the_stream_with_an_in_band_error) {
  auto mock = start_mock();
  auto b = mock->current_behaviour();
  b.error_rate = 1.0;
  b.failure = mock::failure_mode::reset_mid_stream;
  b.output_tokens = 50;
  mock->set_behaviour(b);
  gateway_under_test gw{one_provider(*mock)};
  const auto r = gw.post("/v1/chat/completions",
                         R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find("\"content\":\"tok0\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("data: {\"error\":"), std::string::npos) << r.body;
}

config::gateway_config two_providers(const std::string& a_url, const std::string& b_url) {
  config::gateway_config cfg;
  auto a = provider("alpha", a_url);
  a.models = {model("gpt-4o-mini")};
  auto b = provider("beta", b_url);
  b.models = {model("gpt-4o-mini")};
  cfg.providers = {a, b};
  return cfg;
}

TEST(proxy, failover_to_the_next_provider_on_5xx_and_connection_errors) {
  auto a = start_mock();
  auto b = start_mock();
  auto failing = a->current_behaviour();
  failing.error_rate = 1.0;
  failing.failure = mock::failure_mode::http_500;
  a->set_behaviour(failing);
  gateway_under_test gw{two_providers(http_url(*a), http_url(*b))};
  for (int i = 0; i < 3; ++i) {
    const auto r = gw.post("/v1/chat/completions", chat_body);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.headers["x-gatewayz-provider"], "beta");
  }
  const auto stream = gw.post("/v1/chat/completions",
                              R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(stream.status, 200u);
  EXPECT_EQ(stream.headers["x-gatewayz-provider"], "beta");
  EXPECT_NE(stream.body.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(a->stats().failures, 4u);

  gateway_under_test gw2{two_providers("http://127.0.0.1:" + std::to_string(closed_port()) + "/v1", http_url(*b))};
  const auto r = gw2.post("/v1/chat/completions", chat_body);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.headers["x-gatewayz-provider"], "beta");
}

TEST(proxy, client_errors_are_not_failed_over) {
  auto a = start_mock();
  auto b = start_mock();
  gateway_under_test gw{two_providers(http_url(*a), http_url(*b))};
  const auto r = gw.post("/v1/chat/completions",
                         R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"max_tokens":0})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(b->stats().requests, 0u);
}

TEST(proxy, max_attempts_bounds_failover) {
  auto a = start_mock();
  auto b = start_mock();
  auto failing = a->current_behaviour();
  failing.error_rate = 1.0;
  a->set_behaviour(failing);
  auto cfg = two_providers(http_url(*a), http_url(*b));
  cfg.server.max_attempts = 1;
  gateway_under_test gw{cfg};
  EXPECT_EQ(gw.post("/v1/chat/completions", chat_body).status, 500u);
  EXPECT_EQ(b->stats().requests, 0u);
}

TEST(proxy, a_client_that_leaves_cancels_the_upstream_call) {
  auto mock = start_mock();
  auto slow = mock->current_behaviour();
  slow.tokens_per_s = 5;
  slow.output_tokens = 50;
  mock->set_behaviour(slow);
  gateway_under_test gw{one_provider(*mock)};
  {
    auto s = gw.connect();
    const std::string body = R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"x"}]})";
    const std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
    asio::write(s, asio::buffer(req));
    char buf[4096];
    std::string got;
    while (got.find("tok0") == std::string::npos) {
      const auto n = s.read_some(asio::buffer(buf));
      got.append(buf, n);
    }
  }  // the client leaves mid-stream
  EXPECT_TRUE(eventually([&] { return mock->stats().cancelled >= 1; })) << "upstream stream kept running";

  auto hang = mock->current_behaviour();
  hang.error_rate = 1.0;
  hang.failure = mock::failure_mode::hang;
  mock->set_behaviour(hang);
  const auto before = mock->stats().cancelled;
  const auto requests_before = mock->stats().requests;
  {
    auto s = gw.connect();
    const std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Length: " +
                            std::to_string(chat_body.size()) + "\r\n\r\n" + std::string(chat_body);
    asio::write(s, asio::buffer(req));
    EXPECT_TRUE(eventually([&] { return mock->stats().requests > requests_before; }));
  }
  EXPECT_TRUE(eventually([&] { return mock->stats().cancelled > before; }))
      << "non-streaming upstream call kept running";
}

TEST(proxy, anthropic_provider_speaks_openai_to_the_client) {
  auto mock = start_mock();
  config::gateway_config cfg;
  auto p = provider("claude", http_url(*mock), config::provider_kind::anthropic);
  p.models = {model("claude-sonnet-4.5", "claude-sonnet-4-5")};
  cfg.providers.push_back(p);
  gateway_under_test gw{cfg};
  const auto r = gw.post(
      "/v1/chat/completions",
      R"({"model":"claude-sonnet-4.5","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto body = r.json();
  EXPECT_EQ(body.at("object").as_string(), "chat.completion");
  EXPECT_EQ(body.at("model").as_string(), "claude-sonnet-4.5");
  EXPECT_FALSE(body.at("choices").at(0).at("message").at("content").as_string().empty());
  EXPECT_GT(body.at("usage").at("completion_tokens").as_int64(), 0);
  const auto upstream = mock->recent_requests().back();
  EXPECT_EQ(upstream.target, "/v1/messages");
  const auto sent = json::parse(upstream.body);
  EXPECT_EQ(sent.at("model").as_string(), "claude-sonnet-4-5");
  EXPECT_EQ(sent.at("system").as_string(), "be brief");

  const auto s = gw.post(
      "/v1/chat/completions",
      R"({"model":"claude-sonnet-4.5","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]})");
  ASSERT_EQ(s.status, 200u);
  EXPECT_NE(s.body.find("\"object\":\"chat.completion.chunk\""), std::string::npos);
  EXPECT_NE(s.body.find("\"usage\":{"), std::string::npos);
  EXPECT_NE(s.body.find("data: [DONE]"), std::string::npos);
}

// --- HTTPS upstreams ----------------------------------------------------------

class tls_upstream : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("gatewayz-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const auto d = dir_.string();
    // A throwaway CA and a server certificate for localhost / 127.0.0.1 signed by it.
    const std::string script =
        "cd '" + d +
        "' && "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
        "-subj '/CN=gatewayz test CA' >/dev/null 2>&1 && "
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
        "-subj '/CN=localhost' >/dev/null 2>&1 && "
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem "
        "-days 2 -extfile san.ext >/dev/null 2>&1 && "
        // A second certificate from the same CA that names another host only.
        "openssl req -newkey rsa:2048 -nodes -keyout other.key -out other.csr "
        "-subj '/CN=other.example' >/dev/null 2>&1 && "
        "printf 'subjectAltName=DNS:other.example\\n' > other.ext && "
        "openssl x509 -req -in other.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out other.pem "
        "-days 2 -extfile other.ext >/dev/null 2>&1";
    ASSERT_EQ(std::system(script.c_str()), 0) << "openssl failed";
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  static std::string file(const char* name) { return (dir_ / name).string(); }

  static inline std::filesystem::path dir_;
};

config::gateway_config tls_config(std::uint16_t port, std::string host, std::string ca_file, bool verify) {
  config::gateway_config cfg;
  auto p = provider("secure", "https://" + host + ":" + std::to_string(port) + "/v1");
  p.ca_file = std::move(ca_file);
  p.verify_tls = verify;
  p.models = {model("gpt-4o-mini")};
  cfg.providers.push_back(p);
  return cfg;
}

TEST_F(tls_upstream, trusted_certificate_with_matching_name_is_accepted) {
  auto mock = start_mock(http::tls_files{file("server.pem"), file("server.key")});
  gateway_under_test by_name{tls_config(mock->port(), "localhost", file("ca.pem"), true)};
  EXPECT_EQ(by_name.post("/v1/chat/completions", chat_body).status, 200u);
  gateway_under_test by_ip{tls_config(mock->port(), "127.0.0.1", file("ca.pem"), true)};
  EXPECT_EQ(by_ip.post("/v1/chat/completions", chat_body).status, 200u);
}

TEST_F(tls_upstream, untrusted_or_mismatched_certificates_are_refused) {
  auto mock = start_mock(http::tls_files{file("server.pem"), file("server.key")});
  gateway_under_test untrusted{tls_config(mock->port(), "localhost", "", true)};
  expect_openai_error(untrusted.post("/v1/chat/completions", chat_body), 502, "upstream_unreachable");
  EXPECT_EQ(mock->stats().requests, 0u);
  // Trusted CA, but the certificate names other.example, not the host we dialled.
  auto other = start_mock(http::tls_files{file("other.pem"), file("other.key")});
  gateway_under_test mismatched{tls_config(other->port(), "127.0.0.1", file("ca.pem"), true)};
  expect_openai_error(mismatched.post("/v1/chat/completions", chat_body), 502, "upstream_unreachable");
  gateway_under_test mismatched_name{tls_config(other->port(), "localhost", file("ca.pem"), true)};
  expect_openai_error(mismatched_name.post("/v1/chat/completions", chat_body), 502, "upstream_unreachable");
  EXPECT_EQ(other->stats().requests, 0u);
}

TEST_F(tls_upstream, verification_can_be_disabled_explicitly) {
  auto mock = start_mock(http::tls_files{file("server.pem"), file("server.key")});
  gateway_under_test gw{tls_config(mock->port(), "localhost", "", false)};
  EXPECT_EQ(gw.post("/v1/chat/completions", chat_body).status, 200u);
}

}  // namespace
}  // namespace gatewayz
