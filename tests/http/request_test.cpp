// The request reader keeps Beast's parsing but stores requests flat and
// reuses them per connection; these check that what handlers read matches
// what Beast's own request would hold, and that nothing of one request
// survives into the next.
#include "http/request.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/error.hpp>
#include <gtest/gtest.h>

namespace gatewayz::http {
namespace {

namespace bhttp = boost::beast::http;

// Feeds `bytes` in pieces of `step` bytes (0: all at once), as the server's
// read loop does. Returns the first error other than need_more.
boost::beast::error_code read(request_reader& reader, std::string_view bytes, std::size_t step = 0) {
  boost::beast::error_code ec;
  std::string pending;
  std::size_t at = 0;
  while (!reader.is_done()) {
    const std::size_t take = step == 0 ? bytes.size() - at : std::min(step, bytes.size() - at);
    pending.append(bytes.substr(at, take));
    at += take;
    const std::size_t used = reader.put(boost::asio::buffer(pending), ec);
    pending.erase(0, used);
    if (ec == bhttp::error::need_more) {
      ec = {};
      if (at == bytes.size()) break;
      continue;
    }
    if (ec) break;
    if (used == 0 && at == bytes.size()) break;
  }
  return ec;
}

TEST(Request, HoldsTheRequestLineFieldsAndBody) {
  request req;
  request_reader reader{req};
  const auto ec = read(reader,
                       "POST /v1/chat/completions?x=1 HTTP/1.1\r\n"
                       "Host: example\r\n"
                       "Content-Type: application/json\r\n"
                       "X-Request-ID:   abc   \r\n"
                       "Content-Length: 7\r\n"
                       "\r\n"
                       "{\"a\":1}");
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(reader.is_done());
  EXPECT_EQ(req.method(), bhttp::verb::post);
  EXPECT_EQ(req.method_string(), "POST");
  EXPECT_EQ(req.target(), "/v1/chat/completions?x=1");
  EXPECT_EQ(req.version(), 11u);
  EXPECT_TRUE(req.keep_alive());
  EXPECT_EQ(req.body(), "{\"a\":1}");
  EXPECT_EQ(req[bhttp::field::content_type], "application/json");
  EXPECT_EQ(req["content-type"], "application/json");
  EXPECT_EQ(req["x-request-id"], "abc");  // optional whitespace trimmed, as Beast does
  EXPECT_EQ(req["X-REQUEST-ID"], "abc");
  EXPECT_EQ(req["x-missing"], "");
  EXPECT_EQ(req.find("x-missing"), req.end());
  EXPECT_EQ(req.find(bhttp::field::authorization), req.end());

  std::vector<std::string> names;
  for (const auto& f : req) names.emplace_back(f.name_string());
  EXPECT_EQ(names, (std::vector<std::string>{"Host", "Content-Type", "X-Request-ID", "Content-Length"}));
  EXPECT_EQ(req.begin()->name(), bhttp::field::host);
}

TEST(Request, ARepeatedFieldReadsAsItsFirstValue) {
  request req;
  request_reader reader{req};
  ASSERT_FALSE(read(reader, "GET / HTTP/1.1\r\nX-Thing: one\r\nAccept: a\r\nx-thing: two\r\nAccept: b\r\n\r\n"));
  EXPECT_EQ(req["x-thing"], "one");
  EXPECT_EQ(req[bhttp::field::accept], "a");
  EXPECT_EQ(std::distance(req.begin(), req.end()), 4);
}

TEST(Request, UnknownMethodsKeepTheirToken) {
  request req;
  request_reader reader{req};
  ASSERT_FALSE(read(reader, "BREW /pot HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(req.method(), bhttp::verb::unknown);
  EXPECT_EQ(req.method_string(), "BREW");
  EXPECT_EQ(req.target(), "/pot");
}

TEST(Request, KeepAliveFollowsTheVersionAndConnectionField) {
  const auto keep_alive = [](std::string_view bytes) {
    request req;
    request_reader reader{req};
    EXPECT_FALSE(read(reader, bytes));
    return req.keep_alive();
  };
  EXPECT_TRUE(keep_alive("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_FALSE(keep_alive("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
  EXPECT_FALSE(keep_alive("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
}

TEST(Request, ChunkedBodiesAreJoinedAcrossSplitReads) {
  request req;
  request_reader reader{req};
  const auto ec = read(reader,
                       "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
                       3);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(reader.is_done());
  EXPECT_EQ(req.body(), "hello world");
}

TEST(Request, LimitsAreBeasts) {
  {
    request req;
    request_reader reader{req};
    reader.body_limit(4);
    EXPECT_EQ(read(reader, "POST /x HTTP/1.1\r\nX-Request-ID: r1\r\nContent-Length: 5\r\n\r\nhello"),
              bhttp::error::body_limit);
    // The request line and fields read so far stay readable for the error answer.
    EXPECT_EQ(req.target(), "/x");
    EXPECT_EQ(req["x-request-id"], "r1");
  }
  {
    request req;
    request_reader reader{req};
    reader.header_limit(64);
    EXPECT_EQ(read(reader, "GET / HTTP/1.1\r\nX-Long: " + std::string(100, 'a') + "\r\n\r\n"),
              bhttp::error::header_limit);
  }
  {
    request req;
    request_reader reader{req};
    EXPECT_TRUE(read(reader, "GET / HTTP/1.1\r\nBad Field: x\r\n\r\n"));
  }
}

TEST(Request, ReusingTheRequestLeavesNothingOfThePreviousOne) {
  request req;
  {
    request_reader reader{req};
    ASSERT_FALSE(
        read(reader, "PATCH /first HTTP/1.0\r\nConnection: keep-alive\r\nX-Old: 1\r\nContent-Length: 3\r\n\r\nabc"));
    EXPECT_EQ(req.method(), bhttp::verb::patch);
  }
  {
    request_reader reader{req};
    ASSERT_FALSE(read(reader, "GET /second HTTP/1.1\r\nConnection: close\r\n\r\n"));
  }
  EXPECT_EQ(req.method(), bhttp::verb::get);
  EXPECT_EQ(req.target(), "/second");
  EXPECT_EQ(req.version(), 11u);
  EXPECT_FALSE(req.keep_alive());
  EXPECT_EQ(req.body(), "");
  EXPECT_EQ(req["x-old"], "");
  EXPECT_EQ(std::distance(req.begin(), req.end()), 1);
}

TEST(Request, ALargeBodyIsNotKeptForTheNextRequest) {
  request req;
  const std::string big(1 << 20, 'x');
  {
    request_reader reader{req};
    reader.body_limit(2 << 20);
    ASSERT_FALSE(read(reader, "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big));
    EXPECT_EQ(req.body().size(), big.size());
  }
  request_reader next{req};
  EXPECT_LT(req.body().capacity(), big.size());
}

TEST(Request, ManyFieldsStayAddressable) {
  // More fields than the inline capacity: entries move to the heap, and
  // every one must still read its own bytes.
  std::string bytes = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) bytes += "X-F" + std::to_string(i) + ": v" + std::to_string(i) + "\r\n";
  bytes += "\r\n";
  request req;
  request_reader reader{req};
  ASSERT_FALSE(read(reader, bytes, 7));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(req["x-f" + std::to_string(i)], "v" + std::to_string(i));
}

}  // namespace
}  // namespace gatewayz::http
