// The hand-written heads must be byte-for-byte what Beast's serializer writes
// for the same message, since they replace it on every response.
#include "http/wire.hpp"

#include <string>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

namespace gatewayz::http {
namespace {

using header_list = std::vector<std::pair<std::string_view, std::string_view>>;

namespace bhttp = boost::beast::http;

std::string beast_head(const bhttp::response_header<>& head) {
  bhttp::response<bhttp::empty_body> message{head};
  bhttp::response_serializer<bhttp::empty_body> serializer{message};
  std::string out;
  boost::system::error_code ec;
  serializer.split(true);
  while (!serializer.is_header_done()) {
    serializer.next(ec, [&](boost::system::error_code&, const auto& buffers) {
      out += boost::beast::buffers_to_string(buffers);
      serializer.consume(boost::beast::buffer_bytes(buffers));
    });
    if (ec) break;
  }
  return out;
}

std::string wire_head(const bhttp::response_header<>& head) {
  std::string out;
  wire::append_response_head(head, out);
  return out;
}

TEST(Wire, ResponseHeadMatchesBeastForCommonResponses) {
  bhttp::response<bhttp::string_body> ok{bhttp::status::ok, 11};
  ok.set(bhttp::field::content_type, "application/json");
  ok.set("x-request-id", "req_0123");
  ok.set(bhttp::field::server, "gatewayz");
  ok.body() = R"({"a":1})";
  ok.keep_alive(true);
  ok.prepare_payload();
  EXPECT_EQ(wire_head(ok.base()), beast_head(ok.base()));
  EXPECT_EQ(wire_head(ok.base()),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-request-id: req_0123\r\n"
            "Server: gatewayz\r\nContent-Length: 7\r\n\r\n");

  bhttp::response<bhttp::string_body> closing{bhttp::status::too_many_requests, 11};
  closing.keep_alive(false);
  closing.prepare_payload();
  EXPECT_EQ(wire_head(closing.base()), beast_head(closing.base()));

  bhttp::response<bhttp::string_body> http10{bhttp::status::not_found, 10};
  http10.keep_alive(true);
  http10.prepare_payload();
  EXPECT_EQ(wire_head(http10.base()), beast_head(http10.base()));
  EXPECT_EQ(wire_head(http10.base()).substr(0, 22), "HTTP/1.0 404 Not Found");
}

// The connection's own fields, written directly, match what Beast's
// keep_alive(), set(server) and prepare_payload() make of the same response.
TEST(Wire, ConnectionFieldsMatchBeastsOwn) {
  struct variant {
    unsigned version;
    bool keep_alive;
    std::string_view connection;
  };
  for (const variant v :
       {variant{11, true, ""}, variant{11, false, "close"}, variant{10, true, "keep-alive"}, variant{10, false, ""}}) {
    bhttp::response<bhttp::string_body> handler_view{bhttp::status::created, v.version};
    handler_view.set(bhttp::field::content_type, "application/json");
    handler_view.set("x-request-id", "req_0123");
    handler_view.body() = R"({"id":7})";

    std::string direct;
    wire::append_response_head(handler_view.base(), {v.connection, "gatewayz", handler_view.body().size()}, direct);

    auto beast_view = handler_view;
    beast_view.keep_alive(v.keep_alive);
    beast_view.set(bhttp::field::server, "gatewayz");
    beast_view.prepare_payload();
    EXPECT_EQ(direct, beast_head(beast_view.base())) << v.version << " keep-alive " << v.keep_alive;
  }
}

// A head given as views (the proxy's own answers) is the same bytes as the
// Beast response it replaced, for every connection variant and for a status
// Beast knows no reason for.
TEST(Wire, ResponseHeadFromViewsMatchesBeast) {
  struct variant {
    unsigned status;
    unsigned version;
    bool keep_alive;
    std::string_view connection;
  };
  for (const variant v : {variant{200, 11, true, ""}, variant{200, 11, false, "close"},
                          variant{200, 10, true, "keep-alive"}, variant{529, 10, false, ""}}) {
    const std::string body = R"({"id":7})";
    const header_list fields{{"Content-Type", "application/json"},
                             {"x-request-id", "req_0123"},
                             {"x-gatewayz-provider", "openrouter"}};
    std::string direct;
    wire::append_response_head(v.status, v.version, fields, {v.connection, "gatewayz", body.size()}, direct);

    bhttp::response<bhttp::string_body> beast_view{static_cast<bhttp::status>(v.status), v.version};
    beast_view.set(bhttp::field::content_type, "application/json");
    beast_view.set("x-request-id", "req_0123");
    beast_view.set("x-gatewayz-provider", "openrouter");
    beast_view.body() = body;
    beast_view.keep_alive(v.keep_alive);
    beast_view.set(bhttp::field::server, "gatewayz");
    beast_view.prepare_payload();
    EXPECT_EQ(direct, beast_head(beast_view.base())) << v.status << " " << v.version << " " << v.keep_alive;
  }
}

TEST(Wire, ResponseHeadFromViewsLeavesOutFramingAndUnsafeFields) {
  const header_list fields{{"Content-Length", "99"},
                           {"connection", "upgrade"},
                           {"X-Split", "a\r\nInjected: 1"},
                           {"", "no name"},
                           {"X-Fine", "ok"}};
  std::string direct;
  wire::append_response_head(200, 11, fields, {"", "gatewayz", 2}, direct);
  EXPECT_EQ(direct, "HTTP/1.1 200 OK\r\nX-Fine: ok\r\nServer: gatewayz\r\nContent-Length: 2\r\n\r\n");
}

TEST(Wire, UnknownStatusAndCustomReasonMatchBeast) {
  bhttp::response_header<> unknown;
  unknown.result(529);  // passed on from an upstream
  EXPECT_EQ(wire_head(unknown), beast_head(unknown));

  bhttp::response_header<> custom;
  custom.result(bhttp::status::ok);
  custom.reason("Fine");
  EXPECT_EQ(wire_head(custom), beast_head(custom));
  EXPECT_EQ(wire_head(custom), "HTTP/1.1 200 Fine\r\n\r\n");
}

TEST(Wire, ChunkedStreamHeadMatchesBeast) {
  bhttp::response<bhttp::empty_body> stream{bhttp::status::ok, 11};
  stream.set(bhttp::field::content_type, "text/event-stream");
  stream.keep_alive(true);
  stream.chunked(true);
  EXPECT_EQ(wire_head(stream.base()), beast_head(stream.base()));
}

TEST(Wire, RequestHeadCarriesHostAgentHeadersAndLength) {
  std::string out;
  wire::append_request_head(bhttp::verb::post, "/api/v1", "/chat/completions", "example.com:8443", "gatewayz/0.1",
                            header_list{{"Authorization", "Bearer k"}, {"content-type", "application/json"}}, 17, out);
  EXPECT_EQ(out,
            "POST /api/v1/chat/completions HTTP/1.1\r\nHost: example.com:8443\r\nUser-Agent: gatewayz/0.1\r\n"
            "Authorization: Bearer k\r\ncontent-type: application/json\r\nContent-Length: 17\r\n\r\n");

  // The request must parse back as what was meant.
  out += std::string(17, 'x');
  bhttp::request_parser<bhttp::string_body> parser;
  boost::system::error_code ec;
  parser.eager(true);
  parser.put(boost::asio::buffer(out), ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(parser.is_done());
  EXPECT_EQ(parser.get().target(), "/api/v1/chat/completions");
  EXPECT_EQ(parser.get()["Authorization"], "Bearer k");
  EXPECT_EQ(parser.get().body().size(), 17u);
}

TEST(Wire, RequestHeadLetsCallersOverrideHostAndAgentButNotFraming) {
  std::string out;
  wire::append_request_head(bhttp::verb::get, "", "/models", "h", "gatewayz/0.1",
                            header_list{{"host", "other"},
                                        {"User-Agent", "custom"},
                                        {"Content-Length", "99"},
                                        {"Transfer-Encoding", "chunked"},
                                        {"Connection", "close"},
                                        {"x-injected", "a\r\nEvil: 1"}},
                            0, out);
  EXPECT_EQ(out, "GET /models HTTP/1.1\r\nhost: other\r\nUser-Agent: custom\r\n\r\n");
}

TEST(Wire, RequestHeadKeepsTheLastOfARepeatedNameAndTrimsValues) {
  std::string out;
  wire::append_request_head(
      bhttp::verb::post, "", "/x", "h", "a",
      header_list{{"X-Request-Id", "from-config"}, {"authorization", " Bearer k \t"}, {"x-request-id", "req_1"}}, 2,
      out);
  EXPECT_EQ(out,
            "POST /x HTTP/1.1\r\nHost: h\r\nUser-Agent: a\r\nauthorization: Bearer k\r\n"
            "x-request-id: req_1\r\nContent-Length: 2\r\n\r\n");
}

TEST(Wire, AnUnsendableHostStillLeavesTheDefaultHost) {
  std::string out;
  wire::append_request_head(bhttp::verb::get, "", "/x", "h", "a", header_list{{"Host", "evil\r\nX: 1"}}, 0, out);
  EXPECT_EQ(out, "GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: a\r\n\r\n");
}

TEST(Wire, ContentLengthRulesMatchBeastsPreparePayload) {
  for (const auto method : {bhttp::verb::get, bhttp::verb::post, bhttp::verb::put, bhttp::verb::patch,
                            bhttp::verb::options, bhttp::verb::delete_}) {
    for (const std::size_t size : {std::size_t{0}, std::size_t{3}}) {
      bhttp::request<bhttp::string_body> beast_request{method, "/x", 11};
      beast_request.body() = std::string(size, 'x');
      beast_request.prepare_payload();
      std::string out;
      wire::append_request_head(method, "", "/x", "h", "a", {}, size, out);
      EXPECT_EQ(out.find("Content-Length: ") != std::string::npos,
                beast_request.find(bhttp::field::content_length) != beast_request.end())
          << bhttp::to_string(method) << " with " << size << " body bytes";
    }
  }
}

TEST(Wire, PostWithEmptyBodyStillStatesItsLength) {
  std::string out;
  wire::append_request_head(bhttp::verb::post, "", "/x", "h", "a", {}, 0, out);
  EXPECT_NE(out.find("Content-Length: 0\r\n"), std::string::npos);
}

TEST(Wire, ChunkSizeIsHex) {
  std::string out;
  wire::append_chunk_size(0x1a2, out);
  EXPECT_EQ(out, "1a2\r\n");
}

}  // namespace
}  // namespace gatewayz::http
