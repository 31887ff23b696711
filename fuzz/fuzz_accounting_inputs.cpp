// Property fuzzer for the parsers that take untrusted text on the accounting
// side: decimal USD amounts (admin API and CLI), API-key extraction from
// Authorization / x-api-key headers, and ledger spill-file lines (read back
// after a crash, possibly torn).
//
// Input layout: byte 0 picks the parser, the rest is its input.
//
// Invariants:
//  - parse_usd: an accepted amount formats back (format_usd) to text that
//    parses to the same amount (round trip), and never accepts a negative
//    amount when negatives are not allowed.
//  - extract_key: a returned key is a sub-view of the input without spaces.
//  - decode_row: a decoded row encodes to a line that decodes to the same row.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/authenticator.hpp"
#include "ledger/spill_file.hpp"
#include "store/money.hpp"

#include "fuzz_check.hpp"

namespace {

using namespace gatewayz;

void check_usd(std::string_view text) {
  std::string why;
  for (const bool allow_negative : {false, true}) {
    const auto amount = store::parse_usd(text, allow_negative, why);
    if (!amount) continue;
    FUZZ_CHECK(allow_negative || *amount >= 0);
    std::string again_why;
    const auto again = store::parse_usd(store::format_usd(*amount), true, again_why);
    FUZZ_CHECK(again && *again == *amount);
  }
}

void check_key(std::string_view text) {
  const auto key = auth::extract_key(text);
  if (!key || key->empty()) return;
  FUZZ_CHECK(key->data() >= text.data() && key->data() + key->size() <= text.data() + text.size());
  FUZZ_CHECK(key->find(' ') == std::string_view::npos);
}

bool same_row(const store::ledger_row& a, const store::ledger_row& b) {
  return a.request_id == b.request_id && a.unix_ms == b.unix_ms && a.customer_id == b.customer_id &&
         a.key_id == b.key_id && a.model == b.model && a.provider == b.provider && a.attempts == b.attempts &&
         a.status == b.status && a.http_status == b.http_status && a.input_tokens == b.input_tokens &&
         a.output_tokens == b.output_tokens && a.cost == b.cost && a.streamed == b.streamed;
}

void check_spill_line(std::string_view line) {
  store::ledger_row row;
  if (!ledger::decode_row(line, row)) return;
  const std::string encoded = ledger::encode_row(row);
  store::ledger_row again;
  FUZZ_CHECK(ledger::decode_row(encoded, again));
  FUZZ_CHECK(same_row(row, again));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: check_usd(input); break;
    case 1: check_key(input); break;
    default: check_spill_line(input); break;
  }
  return 0;
}
