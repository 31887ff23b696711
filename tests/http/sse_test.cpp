#include "http/sse.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace gatewayz::http {
namespace {

using namespace std::string_literals;

// An owned copy of an sse_event (the parser's views die with the callback).
struct recorded {
  std::string event, data, id, raw;
  bool operator==(const recorded&) const = default;
};

std::ostream& operator<<(std::ostream& os, const recorded& r) {
  return os << "{event=" << testing::PrintToString(r.event) << " data=" << testing::PrintToString(r.data)
            << " id=" << testing::PrintToString(r.id) << " raw=" << testing::PrintToString(r.raw) << "}";
}

struct outcome {
  std::vector<recorded> events;
  bool ok = true;         // every feed() succeeded
  bool clean_end = true;  // finish() result
  bool operator==(const outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const outcome& o) {
  os << "ok=" << o.ok << " clean_end=" << o.clean_end << " events:";
  for (const auto& e : o.events) os << "\n  " << e;
  return os;
}

// Feeds `pieces` in order, then finishes the stream.
outcome run(const std::vector<std::string_view>& pieces, std::size_t max_event_bytes = 1 << 20) {
  sse_parser parser(max_event_bytes);
  outcome out;
  const auto record = [&](const sse_event& e) {
    out.events.push_back({std::string(e.event), std::string(e.data), std::string(e.id), std::string(e.raw)});
  };
  for (std::string_view piece : pieces) {
    if (!parser.feed(piece, record)) out.ok = false;
  }
  out.clean_end = parser.finish(record);
  return out;
}

outcome run_whole(std::string_view stream, std::size_t max_event_bytes = 1 << 20) {
  return run({stream}, max_event_bytes);
}

TEST(SseParser, OpenAiStream) {
  const std::string stream =
      "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
      "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n"
      "data: [DONE]\n\n";
  const outcome out = run_whole(stream);
  ASSERT_TRUE(out.ok);
  EXPECT_TRUE(out.clean_end);
  ASSERT_EQ(out.events.size(), 3U);
  EXPECT_EQ(out.events[0].data, R"({"id":"c1","choices":[{"delta":{"content":"Hel"}}]})");
  EXPECT_EQ(out.events[0].raw, "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n");
  EXPECT_EQ(out.events[0].event, "");
  EXPECT_EQ(out.events[2].data, "[DONE]");
  EXPECT_EQ(out.events[0].raw + out.events[1].raw + out.events[2].raw, stream);
}

TEST(SseParser, AnthropicStream) {
  const std::string stream =
      "event: message_start\n"
      "data: {\"type\":\"message_start\"}\n\n"
      "event: ping\n"
      "data: {\"type\": \"ping\"}\n\n"
      "event: content_block_delta\n"
      "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n"
      "event: message_stop\n"
      "data: {\"type\":\"message_stop\"}\n\n";
  const outcome out = run_whole(stream);
  ASSERT_EQ(out.events.size(), 4U);
  EXPECT_EQ(out.events[0].event, "message_start");
  EXPECT_EQ(out.events[0].data, R"({"type":"message_start"})");
  EXPECT_EQ(out.events[1].event, "ping");
  EXPECT_EQ(out.events[1].data, R"({"type": "ping"})");
  EXPECT_EQ(out.events[2].event, "content_block_delta");
  EXPECT_EQ(out.events[3].event, "message_stop");
  EXPECT_EQ(out.events[3].raw, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

TEST(SseParser, CrLfLineEndings) {
  const outcome out = run_whole("event: a\r\ndata: x\r\nid: 7\r\n\r\ndata: y\r\n\r\n");
  ASSERT_EQ(out.events.size(), 2U);
  EXPECT_EQ(out.events[0], (recorded{"a", "x", "7", "event: a\r\ndata: x\r\nid: 7\r\n\r\n"}));
  EXPECT_EQ(out.events[1], (recorded{"", "y", "", "data: y\r\n\r\n"}));
  EXPECT_TRUE(out.clean_end);
}

TEST(SseParser, CrLineEndings) {
  const outcome out = run_whole("event: a\rdata: x\r\rdata: y\r\r");
  ASSERT_EQ(out.events.size(), 2U);
  EXPECT_EQ(out.events[0], (recorded{"a", "x", "", "event: a\rdata: x\r\r"}));
  EXPECT_EQ(out.events[1], (recorded{"", "y", "", "data: y\r\r"}));
  EXPECT_TRUE(out.clean_end);
}

TEST(SseParser, MixedLineEndings) {
  const outcome out = run_whole("data: a\ndata: b\r\ndata: c\r\n\r");
  ASSERT_EQ(out.events.size(), 1U);
  EXPECT_EQ(out.events[0].data, "a\nb\nc");
  EXPECT_EQ(out.events[0].raw, "data: a\ndata: b\r\ndata: c\r\n\r");
}

TEST(SseParser, BareCrAtChunkEndWaitsForNextByte) {
  sse_parser parser;
  std::vector<std::string> raws;
  const auto record = [&](const sse_event& e) { raws.emplace_back(e.raw); };
  ASSERT_TRUE(parser.feed("data: x\r\n\r", record));
  EXPECT_TRUE(raws.empty());  // the next byte may be the '\n' of this blank line
  EXPECT_TRUE(parser.has_partial_event());
  ASSERT_TRUE(parser.feed("\ndata: y\r\r", record));
  ASSERT_EQ(raws.size(), 1U);
  EXPECT_EQ(raws[0], "data: x\r\n\r\n");
  EXPECT_TRUE(parser.finish(record));
  ASSERT_EQ(raws.size(), 2U);
  EXPECT_EQ(raws[1], "data: y\r\r");
  EXPECT_FALSE(parser.has_partial_event());
}

TEST(SseParser, CommentsAreNotEvents) {
  const outcome out = run_whole(": keep-alive\n\n:another\r\n\r\ndata: x\n: inside\n\n");
  ASSERT_EQ(out.events.size(), 1U);
  EXPECT_EQ(out.events[0].data, "x");
  EXPECT_EQ(out.events[0].raw, "data: x\n: inside\n\n");  // comments inside an event stay in raw
}

TEST(SseParser, BlankLinesBetweenEventsAreSkipped) {
  const outcome out = run_whole("\n\r\n\rdata: a\n\n\n\ndata: b\n\n");
  ASSERT_EQ(out.events.size(), 2U);
  EXPECT_EQ(out.events[0].raw, "data: a\n\n");
  EXPECT_EQ(out.events[1].raw, "data: b\n\n");
}

TEST(SseParser, MultiLineDataAndFieldSyntax) {
  const outcome out = run_whole("data: a\ndata:b\ndata:  c\ndata\ndata:\n\n");
  ASSERT_EQ(out.events.size(), 1U);
  // One leading space is stripped; a line without a colon is a field with an empty value.
  EXPECT_EQ(out.events[0].data, "a\nb\n c\n\n");
}

TEST(SseParser, LastEventFieldWins) {
  const outcome out = run_whole("event: a\nevent: b\ndata: x\n\n");
  ASSERT_EQ(out.events.size(), 1U);
  EXPECT_EQ(out.events[0].event, "b");
}

TEST(SseParser, IdIsPerEvent) {
  const outcome out = run_whole("id: 42\ndata: x\n\ndata: y\n\nid: a\0b\ndata: z\n\n"s);
  ASSERT_EQ(out.events.size(), 3U);
  EXPECT_EQ(out.events[0].id, "42");
  EXPECT_EQ(out.events[1].id, "");
  EXPECT_EQ(out.events[2].id, "");  // ids containing NUL are ignored
}

TEST(SseParser, EventWithoutDataIsReported) {
  const outcome out = run_whole("event: ping\n\nretry: 1000\n\nunknown: field\n\n");
  ASSERT_EQ(out.events.size(), 3U);
  EXPECT_EQ(out.events[0], (recorded{"ping", "", "", "event: ping\n\n"}));
  EXPECT_EQ(out.events[1].raw, "retry: 1000\n\n");
  EXPECT_EQ(out.events[1].data, "");
  EXPECT_EQ(out.events[2].raw, "unknown: field\n\n");
}

TEST(SseParser, ByteOrderMarkIsStrippedOnlyAtStart) {
  const outcome out = run({"\xEF", "\xBB",
                           "\xBF"
                           "data: x\n\n\xEF\xBB\xBF"
                           "data: y\n\n"});
  ASSERT_EQ(out.events.size(), 2U);
  EXPECT_EQ(out.events[0].raw, "data: x\n\n");
  EXPECT_EQ(out.events[1].raw,
            "\xEF\xBB\xBF"
            "data: y\n\n");  // unknown field name, not a BOM
}

TEST(SseParser, OversizedEventFails) {
  const std::string big = "data: " + std::string(100, 'x') + "\n\n";
  sse_parser parser(64);
  int events = 0;
  const auto count = [&](const sse_event&) { ++events; };
  EXPECT_TRUE(parser.feed("data: small\n\n", count));
  EXPECT_FALSE(parser.feed(big, count));
  EXPECT_TRUE(parser.failed());
  EXPECT_FALSE(parser.feed("data: small\n\n", count));  // stays failed
  EXPECT_FALSE(parser.finish(count));
  EXPECT_EQ(events, 1);
}

TEST(SseParser, OversizedPartialEventFailsBeforeItCompletes) {
  sse_parser parser(64);
  const auto ignore = [](const sse_event&) {};
  EXPECT_TRUE(parser.feed(std::string(64, 'x'), ignore));
  EXPECT_FALSE(parser.feed("x", ignore));  // a hostile upstream cannot grow the buffer
  EXPECT_TRUE(parser.failed());
}

TEST(SseParser, EventsBeforeAnOversizedOneInTheSameChunkAreDelivered) {
  const std::string stream = "data: a\n\ndata: " + std::string(100, 'x') + "\n\ndata: b\n\n";
  const outcome out = run_whole(stream, 64);
  EXPECT_FALSE(out.ok);
  ASSERT_EQ(out.events.size(), 1U);
  EXPECT_EQ(out.events[0].data, "a");
}

TEST(SseParser, EventOfExactlyTheLimitIsAccepted) {
  const std::string event = "data: " + std::string(56, 'x') + "\n\n";  // 64 bytes
  ASSERT_EQ(event.size(), 64U);
  const outcome out = run_whole(event + event, 64);
  EXPECT_TRUE(out.ok);
  EXPECT_EQ(out.events.size(), 2U);
}

TEST(SseParser, HasPartialEvent) {
  sse_parser parser;
  const auto ignore = [](const sse_event&) {};
  EXPECT_FALSE(parser.has_partial_event());
  ASSERT_TRUE(parser.feed("data: x\n", ignore));
  EXPECT_TRUE(parser.has_partial_event());
  ASSERT_TRUE(parser.feed("\n", ignore));
  EXPECT_FALSE(parser.has_partial_event());
  ASSERT_TRUE(parser.feed("\r", ignore));  // a blank line, not an event
  EXPECT_FALSE(parser.has_partial_event());
  ASSERT_TRUE(parser.feed("\nda", ignore));
  EXPECT_TRUE(parser.has_partial_event());
  EXPECT_FALSE(parser.finish(ignore));  // cut off mid-event
}

TEST(SseParser, CutOffStreamIsNotReported) {
  const outcome out = run_whole("data: a\n\ndata: b\n");
  EXPECT_EQ(out.events.size(), 1U);
  EXPECT_FALSE(out.clean_end);
}

// "Readgrind": the result must not depend on where the transport split the
// stream, including between '\r' and '\n'.
TEST(SseParser, EverySplitPointGivesTheSameEvents) {
  const std::string stream =
      "\xEF\xBB\xBF: hello\r\n\r\n"
      "event: message_start\r\ndata: {\"a\":1}\r\n\r\n"
      "data: line1\ndata:line2\n: comment\nid: 9\n\n"
      "\n\r\n"
      "event: ping\r\r"
      "data: cr-only\r\r"
      "retry: 5\nfoo\n\n"
      "data: [DONE]\r\n\r";
  const outcome whole = run_whole(stream);
  ASSERT_TRUE(whole.ok);
  ASSERT_TRUE(whole.clean_end);
  ASSERT_EQ(whole.events.size(), 6U);
  EXPECT_EQ(whole.events.back().raw, "data: [DONE]\r\n\r");

  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    const std::string_view view(stream);
    EXPECT_EQ(run({view.substr(0, cut), view.substr(cut)}), whole) << "split at " << cut;
  }
  for (std::size_t a = 0; a <= stream.size(); a += 3) {
    for (std::size_t b = a; b <= stream.size(); b += 5) {
      const std::string_view view(stream);
      EXPECT_EQ(run({view.substr(0, a), view.substr(a, b - a), view.substr(b)}), whole)
          << "split at " << a << " and " << b;
    }
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < stream.size(); ++i) bytes.push_back(std::string_view(stream).substr(i, 1));
  EXPECT_EQ(run(bytes), whole) << "one byte at a time";
}

TEST(SseParser, EverySplitPointGivesTheSameFailure) {
  const std::string stream = "data: a\r\n\r\ndata: " + std::string(40, 'x') + "\r\n\r\ndata: b\n\n";
  for (std::size_t limit : {std::size_t{11}, std::size_t{12}, std::size_t{48}, std::size_t{49}, std::size_t{50}}) {
    const outcome whole = run_whole(stream, limit);
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      const std::string_view view(stream);
      EXPECT_EQ(run({view.substr(0, cut), view.substr(cut)}, limit), whole) << "limit " << limit << " cut " << cut;
    }
  }
}

TEST(SseParser, DataViewIsStableDuringCallbackAcrossChunks) {
  // An event assembled from many chunks must expose the joined data.
  sse_parser parser;
  std::vector<std::string> data;
  const auto record = [&](const sse_event& e) { data.emplace_back(e.data); };
  for (const char* piece : {"da", "ta: he", "llo\nda", "ta: world\n", "\n"}) ASSERT_TRUE(parser.feed(piece, record));
  ASSERT_EQ(data.size(), 1U);
  EXPECT_EQ(data[0], "hello\nworld");
}

}  // namespace
}  // namespace gatewayz::http
