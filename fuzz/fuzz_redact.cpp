// Fuzzes logging::redact, the function every log line passes through.
// Properties: no crash or sanitizer report; a valid JSON input stays valid
// JSON; what the header promises is gone from the output: no key-prefixed
// token of 8+ key characters and no Luhn-valid card number standing alone.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "fuzz_check.hpp"
#include "logging/redact.hpp"

namespace {

bool key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}
bool digit(char c) { return c >= '0' && c <= '9'; }

void check_no_api_key(std::string_view out) {
  for (std::size_t i = 0; i + 3 <= out.size(); ++i) {
    if (out.substr(i, 3) != "sk-" || (i > 0 && key_char(out[i - 1]))) continue;
    std::size_t j = i + 3;
    while (j < out.size() && key_char(out[j])) ++j;
    FUZZ_CHECK(j - i - 3 < 8);
  }
}

void check_no_card(std::string_view out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!digit(out[i]) || (i > 0 && (key_char(out[i - 1])))) continue;
    std::size_t j = i;
    while (j < out.size() && digit(out[j])) ++j;
    const auto run = out.substr(i, j - i);
    // Not touching letters, digits or a space-separated group, and not
    // part of a decimal number ("1.4111..." or "4111....5").
    const bool decimal =
        (j + 1 < out.size() && (out[j] == '.' || out[j] == 'e' || out[j] == 'E') && digit(out[j + 1])) ||
        (i >= 2 && out[i - 1] == '.' && digit(out[i - 2]));
    const bool alone = !decimal && (j == out.size() || !(key_char(out[j]) || out[j] == ' '));
    if (alone && run.size() >= 13 && run.size() <= 19) FUZZ_CHECK(!gatewayz::logging::luhn_valid(run));
    i = j;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string out;
  gatewayz::logging::redact(text, out);
  check_no_api_key(out);
  check_no_card(out);

  boost::system::error_code ec;
  boost::json::parse(text, ec);
  if (!ec) {
    boost::json::parse(out, ec);
    FUZZ_CHECK(!ec);
  }
  return 0;
}
