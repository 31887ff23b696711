// Fuzzes the Loki push body encoder (logging::encode_push).
//
// Input (FuzzedDataProvider): the app/env/service labels, then two pushes of
// records with fuzzer-chosen levels, timestamps (any order, duplicates) and
// line bytes (any bytes: control characters, quotes, invalid UTF-8).
//
// Invariants, checked against Loki's push format:
//  - each body is one JSON object (Boost.JSON validates UTF-8 too)
//    {"streams":[{"stream":{app,env,service,level},"values":[["<ns>","<line>"],...]},...]}
//    with one stream per level present, labels exactly as given;
//  - every record appears once, in its level's stream, in input order;
//    a line that is valid UTF-8 comes back byte for byte;
//  - timestamps are decimal strings, strictly increasing per stream within
//    a push and across the two pushes, never earlier than the record's own.

#include <fuzzer/FuzzedDataProvider.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "core/json_scan.hpp"
#include "logging/loki.hpp"

#include "fuzz_check.hpp"

namespace {

namespace json = boost::json;
using namespace gatewayz;
using namespace gatewayz::logging;

bool valid_utf8(std::string_view s) {
  const auto decoded = json_scan::decode_string(json_scan::encode_string(s));
  return decoded && *decoded == s;
}

void check_label(const json::object& labels, std::string_view key, const std::string& want) {
  const json::value& v = labels.at(key);
  if (valid_utf8(want)) FUZZ_CHECK(v.as_string() == want);
}

void check_push(const std::vector<loki_record>& records, const std::string& body, const loki_streams& before,
                const loki_streams& after) {
  json::error_code ec;
  const json::value doc = json::parse(body, ec);
  FUZZ_CHECK(!ec && doc.is_object() && doc.as_object().size() == 1);
  const json::array& streams = doc.at("streams").as_array();

  std::size_t seen_levels = 0;
  std::size_t last_level = 0;
  for (const json::value& sv : streams) {
    const json::object& stream = sv.as_object();
    FUZZ_CHECK(stream.size() == 2);
    const json::object& labels = stream.at("stream").as_object();
    FUZZ_CHECK(labels.size() == 4);
    check_label(labels, "app", before.app);
    check_label(labels, "env", before.env);
    check_label(labels, "service", before.service);
    std::size_t l = 0;
    while (l < level_count && labels.at("level").as_string() != to_string(static_cast<level>(l))) ++l;
    FUZZ_CHECK(l < level_count);
    if (seen_levels > 0) FUZZ_CHECK(l > last_level);  // one stream per level, in level order
    last_level = l;
    ++seen_levels;

    std::vector<const loki_record*> mine;
    for (const loki_record& r : records) {
      if (static_cast<std::size_t>(r.severity) == l) mine.push_back(&r);
    }
    const json::array& values = stream.at("values").as_array();
    FUZZ_CHECK(!values.empty() && values.size() == mine.size());
    std::int64_t previous = before.last_ns[l];
    for (std::size_t i = 0; i < values.size(); ++i) {
      const json::array& pair = values[i].as_array();
      FUZZ_CHECK(pair.size() == 2);
      const json::string& ns_text = pair[0].as_string();
      std::int64_t ns = 0;
      const auto [end, err] = std::from_chars(ns_text.data(), ns_text.data() + ns_text.size(), ns);
      FUZZ_CHECK(err == std::errc() && end == ns_text.data() + ns_text.size());
      FUZZ_CHECK(ns > previous && ns >= mine[i]->unix_ns);
      previous = ns;
      if (valid_utf8(mine[i]->line)) FUZZ_CHECK(pair[1].as_string() == mine[i]->line);
    }
    FUZZ_CHECK(after.last_ns[l] == previous);
  }
  std::size_t levels_present = 0;
  for (std::size_t l = 0; l < level_count; ++l) {
    bool any = false;
    for (const loki_record& r : records) any = any || static_cast<std::size_t>(r.severity) == l;
    levels_present += any ? 1 : 0;
    if (!any) FUZZ_CHECK(after.last_ns[l] == before.last_ns[l]);
  }
  FUZZ_CHECK(levels_present == seen_levels);
}

std::vector<loki_record> make_records(FuzzedDataProvider& in) {
  std::vector<loki_record> records(in.ConsumeIntegralInRange<std::size_t>(0, 8));
  for (loki_record& r : records) {
    r.severity = static_cast<level>(in.ConsumeIntegralInRange<std::size_t>(0, level_count - 1));
    // A wall clock in nanoseconds: from 1970 to well past 2100, never near
    // int64's end (the encoder adds 1 ns to keep streams increasing).
    r.unix_ns = in.ConsumeIntegralInRange<std::int64_t>(0, std::int64_t{1} << 62);
    r.line = in.ConsumeRandomLengthString(256);
  }
  return records;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  loki_streams streams;
  streams.app = in.ConsumeRandomLengthString(16);
  streams.env = in.ConsumeRandomLengthString(16);
  streams.service = in.ConsumeRandomLengthString(16);
  for (int push = 0; push < 2; ++push) {
    const std::vector<loki_record> records = make_records(in);
    const loki_streams before = streams;
    std::string body;
    encode_push(records, streams, body);
    check_push(records, body, before, streams);
  }
  return 0;
}
