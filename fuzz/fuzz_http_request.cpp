// Differential fuzzer for http/request: the server's flat request reader
// against Beast's own request_parser<string_body>, the reference it must
// agree with.
//
// Input layout: byte 0 picks the piece size the bytes are fed in (1..32, or
// all at once), byte 1 the body limit (small, to reach body_limit), the rest
// is the connection's bytes; up to three requests are read from them in turn
// with one reused request object, as a kept-alive connection does.
//
// Invariants: both parsers stop at the same error, consume the same bytes,
// and when a header is complete agree on method, method string, target,
// version, keep-alive, every field (name, name string, value; Beast's order
// once repeated names are grouped as Beast groups them), the value a lookup
// finds, and, when done, the body.

#include "http/request.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core/string.hpp>

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "fuzz_check.hpp"

namespace {

namespace bhttp = boost::beast::http;

// Feeds `bytes` from `at` in pieces of `step` until the parser is done or
// fails. Returns the error and advances `at` past what the parser used.
template <class Parser>
boost::beast::error_code feed(Parser& parser, std::string_view bytes, std::size_t& at, std::size_t step) {
  boost::beast::error_code ec;
  std::size_t available = step == 0 ? bytes.size() - at : std::min(step, bytes.size() - at);
  for (;;) {
    const std::size_t used = parser.put(boost::asio::buffer(bytes.data() + at, available), ec);
    at += used;
    available -= used;
    if (ec == bhttp::error::need_more) {
      ec = {};
      if (at + available == bytes.size()) break;  // nothing more to give
      available = std::min(bytes.size() - at, available + (step == 0 ? bytes.size() : step));
      continue;
    }
    if (ec || parser.is_done()) break;
    if (used == 0) {
      if (at + available == bytes.size()) break;
      available = std::min(bytes.size() - at, available + (step == 0 ? bytes.size() : step));
    }
  }
  return ec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t step = data[0] < 0x20 ? 0 : static_cast<std::size_t>(data[0] % 32 + 1);
  const std::uint64_t body_limit = data[1] < 0x80 ? 1 << 20 : static_cast<std::uint64_t>(data[1] & 0x3f);
  const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);

  gatewayz::http::request reused;
  std::size_t ours_at = 0;
  std::size_t beast_at = 0;
  for (int round = 0; round < 3 && ours_at < bytes.size(); ++round) {
    gatewayz::http::request_reader ours{reused};
    ours.header_limit(1024);
    ours.body_limit(body_limit);
    bhttp::request_parser<bhttp::string_body> theirs;
    theirs.header_limit(1024);
    theirs.body_limit(body_limit);

    const auto ours_ec = feed(ours, bytes, ours_at, step);
    const auto theirs_ec = feed(theirs, bytes, beast_at, step);
    FUZZ_CHECK(ours_ec == theirs_ec);
    FUZZ_CHECK(ours_at == beast_at);
    FUZZ_CHECK(ours.is_header_done() == theirs.is_header_done());
    FUZZ_CHECK(ours.is_done() == theirs.is_done());
    if (!ours.is_header_done()) break;

    const auto& req = ours.get();
    const auto& msg = theirs.get();
    FUZZ_CHECK(req.method() == msg.method());
    FUZZ_CHECK(req.method_string() == std::string_view(msg.method_string()));
    FUZZ_CHECK(req.target() == std::string_view(msg.target()));
    FUZZ_CHECK(req.version() == msg.version());
    FUZZ_CHECK(req.keep_alive() == msg.keep_alive());
    // Beast lists a repeated name's fields together (after the first of that
    // name); ours keep arrival order. Grouped the same way, they must agree.
    std::vector<const gatewayz::http::request::field_entry*> grouped;
    for (const auto& f : req) {
      auto at = grouped.end();
      for (auto g = grouped.begin(); g != grouped.end(); ++g) {
        if (boost::beast::iequals((*g)->name_string(), f.name_string())) at = g + 1;
      }
      grouped.insert(at, &f);
    }
    auto it = msg.begin();
    for (const auto* f : grouped) {
      FUZZ_CHECK(it != msg.end());
      FUZZ_CHECK(f->name() == it->name());
      FUZZ_CHECK(f->name_string() == std::string_view(it->name_string()));
      FUZZ_CHECK(f->value() == std::string_view(it->value()));
      FUZZ_CHECK(req[f->name_string()] == std::string_view(msg[it->name_string()]));
      if (f->name() != bhttp::field::unknown) FUZZ_CHECK(req[f->name()] == std::string_view(msg[it->name()]));
      ++it;
    }
    FUZZ_CHECK(it == msg.end());
    if (ours.is_done()) FUZZ_CHECK(req.body() == msg.body());
    if (ours_ec || !ours.is_done()) break;
  }
  return 0;
}
