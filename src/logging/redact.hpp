#pragma once
// Redaction: the single function every log line passes through on its way
// to any sink (stdout, Loki), so a secret that slips into a message or a
// field is still never written.
//
// What is replaced, wherever it appears (JSON lines, text lines, JSON
// escaped inside a JSON string):
//  - credentials after "Bearer " (8 characters or more) -> Bearer [REDACTED]
//  - API keys by their prefixes (sk-, sk_, gsk_, gwz_, xai-, AIza, ...)
//    followed by at least 8 key characters            -> [REDACTED_KEY]
//  - the value of a sensitive key: password, secret, api_key, authorization,
//    cookie, token, ... as "key":"value", key=value or key: value
//                                                      -> [REDACTED]
//  - card numbers: 13-19 digits, optionally grouped by single spaces or
//    dashes, not touching other letters or digits nor part of a decimal
//    number, passing the Luhn check
//                                                      -> [REDACTED_CARD]
//  - e-mail addresses, unless allowed                  -> [REDACTED_EMAIL]
//
// Replacements contain no quote or backslash and replace whole tokens or
// whole string contents, so a valid JSON line stays valid JSON. Pure
// function, any thread; linear in the input.

#include <cstddef>
#include <string>
#include <string_view>

namespace gatewayz::logging {

struct redaction_options {
  bool emails = true;  // false: e-mail addresses are kept (logging.log_emails)
};

// Appends `text` to `out` with every secret above replaced; returns how
// many replacements were made.
std::size_t redact(std::string_view text, std::string& out, const redaction_options& options = {});

// Whether a digit string (digits only) passes the Luhn check.
bool luhn_valid(std::string_view digits);

}  // namespace gatewayz::logging
