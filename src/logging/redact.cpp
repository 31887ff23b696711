#include "logging/redact.hpp"

#include <array>
#include <cstdint>

namespace gatewayz::logging {

namespace {

constexpr std::string_view marker = "[REDACTED]";
constexpr std::string_view key_marker = "[REDACTED_KEY]";
constexpr std::string_view card_marker = "[REDACTED_CARD]";
constexpr std::string_view email_marker = "[REDACTED_EMAIL]";

// Character classes by table: the scanner classifies every byte.
enum : std::uint8_t { digit_bit = 1, alpha_bit = 2, name_bit = 4, key_start_bit = 8 };
constexpr std::array<std::uint8_t, 256> char_classes = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = digit_bit | name_bit;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = alpha_bit | name_bit;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = alpha_bit | name_bit;
  t['_'] = name_bit;
  t['-'] = name_bit;
  // The first letters of key_prefixes (below).
  for (const char c : {'s', 'g', 'x', 'A', 'p', 'r', 'h'}) t[static_cast<std::size_t>(c)] |= key_start_bit;
  return t;
}();
std::uint8_t char_class(char c) { return char_classes[static_cast<unsigned char>(c)]; }

bool is_digit(char c) { return (char_class(c) & digit_bit) != 0; }
bool is_alpha(char c) { return (char_class(c) & alpha_bit) != 0; }
bool is_alnum(char c) { return (char_class(c) & (digit_bit | alpha_bit)) != 0; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Characters of a key name as it appears before ':' or '='.
bool is_name_char(char c) { return (char_class(c) & name_bit) != 0; }
// Characters of an API key or bearer credential.
bool is_token_char(char c) {
  return is_alnum(c) || c == '_' || c == '-' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}
bool is_email_local_char(char c) { return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'; }
bool is_email_domain_char(char c) { return is_alnum(c) || c == '.' || c == '-'; }

bool equals_lower(std::string_view text, std::string_view lower_word) {
  if (text.size() != lower_word.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (lower(text[i]) != lower_word[i]) return false;
  }
  return true;
}

bool starts_with_lower(std::string_view text, std::string_view lower_prefix) {
  return text.size() >= lower_prefix.size() && equals_lower(text.substr(0, lower_prefix.size()), lower_prefix);
}

// Key names whose values are secrets. Compared case-insensitively, with
// '-' and '_' treated alike.
constexpr std::array sensitive_names = {
    std::string_view("password"),      std::string_view("passwd"),
    std::string_view("pwd"),           std::string_view("secret"),
    std::string_view("client_secret"), std::string_view("api_key"),
    std::string_view("apikey"),        std::string_view("x_api_key"),
    std::string_view("authorization"), std::string_view("proxy_authorization"),
    std::string_view("cookie"),        std::string_view("set_cookie"),
    std::string_view("token"),         std::string_view("access_token"),
    std::string_view("refresh_token"), std::string_view("id_token"),
    std::string_view("auth_token"),    std::string_view("private_key"),
    std::string_view("admin_key"),     std::string_view("read_token"),
    std::string_view("bearer_token"),  std::string_view("x_admin_key"),
    std::string_view("card_number"),   std::string_view("cvv"),
    std::string_view("cvc"),
};

// Quick filters: the lengths and first letters of sensitive_names, so a
// word that cannot be one is rejected without comparing.
constexpr std::uint32_t sensitive_lengths = [] {
  std::uint32_t mask = 0;
  for (const auto name : sensitive_names) mask |= 1U << name.size();
  return mask;
}();
constexpr std::uint32_t sensitive_initials = [] {
  std::uint32_t mask = 0;
  for (const auto name : sensitive_names) mask |= 1U << (name[0] - 'a');
  return mask;
}();

bool sensitive_name(std::string_view name) {
  if (name.size() >= 32 || (sensitive_lengths >> name.size() & 1U) == 0) return false;
  const char first = lower(name[0]);
  if (first < 'a' || first > 'z' || (sensitive_initials >> (first - 'a') & 1U) == 0) return false;
  for (const auto candidate : sensitive_names) {
    if (candidate.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < name.size() && same; ++i) {
      char c = lower(name[i]);
      if (c == '-') c = '_';
      same = c == candidate[i];
    }
    if (same) return true;
  }
  return false;
}

// Header-like names whose bare values run to the end of the value, spaces
// included ("Authorization: Bearer x", "Cookie: a=1; b=2").
bool header_like(std::string_view name) {
  return equals_lower(name, "authorization") || equals_lower(name, "proxy-authorization") ||
         equals_lower(name, "proxy_authorization") || equals_lower(name, "cookie") ||
         equals_lower(name, "set-cookie") || equals_lower(name, "set_cookie");
}

// Prefixes of provider and gateway API keys.
constexpr std::array key_prefixes = {
    std::string_view("sk-"),  std::string_view("sk_"),   std::string_view("gsk_"), std::string_view("gwz_"),
    std::string_view("xai-"), std::string_view("AIza"),  std::string_view("pk-"),  std::string_view("rk-"),
    std::string_view("ghp_"), std::string_view("xoxb-"), std::string_view("hf_"),
};
static_assert(
    [] {
      for (const auto prefix : key_prefixes) {
        if ((char_classes[static_cast<unsigned char>(prefix[0])] & key_start_bit) == 0) return false;
      }
      return true;
    }(),
    "every key prefix's first letter is marked key_start_bit");

// Whether text[pos] is a bare JSON value (outside every string, after ':',
// ',' or '[' or at the start): a marker put there must be quoted for the
// line to stay JSON. Rare (a card or secret outside a string), so the
// string state is found by scanning from the start.
bool inside_json_string(std::string_view text, std::size_t pos) {
  bool in_string = false;
  for (std::size_t k = 0; k < pos; ++k) {
    if (text[k] == '\\') {
      ++k;
    } else if (text[k] == '"') {
      in_string = !in_string;
    }
  }
  return in_string;
}

bool bare_json_value(std::string_view text, std::size_t pos) {
  if (inside_json_string(text, pos)) return false;
  std::size_t k = pos;
  while (k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\t' || text[k - 1] == '\r' || text[k - 1] == '\n')) --k;
  return k == 0 || text[k - 1] == ':' || text[k - 1] == ',' || text[k - 1] == '[';
}

class scanner {
 public:
  scanner(std::string_view text, std::string& out, const redaction_options& options)
      : text_(text), out_(out), options_(options) {}

  // Walks the text a run at a time: a word (name characters) is looked at
  // once as a whole (credential scheme, key prefix, sensitive name), a digit
  // run once (card), '@' once (e-mail). Nothing is copied while walking: the
  // text between two redactions goes to `out` in one piece when the second
  // is found, so a line without a secret costs one append.
  std::size_t run() {
    out_.reserve(out_.size() + text_.size());
    const std::size_t n = text_.size();
    while (i_ < n) {
      const char c = text_[i_];
      const bool boundary = i_ == 0 || !is_name_char(text_[i_ - 1]);
      if (boundary && is_alnum(c)) {
        std::size_t j = i_ + 1;
        while (j < n && is_name_char(text_[j])) ++j;
        if (is_alpha(c) ? try_word(text_.substr(i_, j - i_), j) : try_card()) continue;
        i_ = j;
        continue;
      }
      if (c == '@' && options_.emails && try_email()) continue;
      std::size_t j = i_ + 1;
      while (j < n && !is_alnum(text_[j]) && text_[j] != '@') ++j;
      i_ = j;
    }
    out_.append(text_.substr(copied_));
    return count_;
  }

 private:
  // Replaces text_[start, end) with `with`, quoted when `quote`: the text
  // since the last redaction goes out first.
  void replace(std::size_t start, std::size_t end, std::string_view with, bool quote = false) {
    out_.append(text_.substr(copied_, start - copied_));
    if (quote) out_.push_back('"');
    out_.append(with);
    if (quote) out_.push_back('"');
    copied_ = end;
    i_ = end;
    ++count_;
  }

  // replace(), quoted where the text is a bare JSON value: a number or a
  // literal outside any string.
  void replace_value(std::size_t start, std::size_t end, std::string_view with) {
    replace(start, end, with, bare_json_value(text_, start));
  }

  // A word from i_ to `end`: a credential scheme, an API key (a prefix and
  // at least 8 more key characters), or a sensitive name and its value.
  bool try_word(std::string_view word, std::size_t end) {
    if (word.size() == 6 && equals_lower(word, "bearer")) return try_credential_scheme();
    if (word.size() >= 11 && (char_class(word[0]) & key_start_bit) != 0) {
      for (const auto prefix : key_prefixes) {
        if (word.size() >= prefix.size() + 8 && word.starts_with(prefix)) {
          replace(i_, end, key_marker);
          return true;
        }
      }
    }
    return word.size() >= 3 && word.size() <= 19 && sensitive_name(word) && try_sensitive_pair(end);
  }

  // "Bearer <credential>" (a Basic credential comes after "Authorization",
  // a sensitive name; "basic" alone is too common a word).
  bool try_credential_scheme() {
    for (const std::string_view scheme : {std::string_view("bearer")}) {
      const auto rest = text_.substr(i_);
      if (!starts_with_lower(rest, scheme)) continue;
      std::size_t j = i_ + scheme.size();
      if (j >= text_.size() || text_[j] != ' ') continue;
      while (j < text_.size() && text_[j] == ' ') ++j;
      const std::size_t start = j;
      while (j < text_.size() && is_token_char(text_[j])) ++j;
      if (j - start < 8) continue;
      replace(start, j, marker);
      return true;
    }
    return false;
  }

  // name, then optionally a closing quote (" or \"), spaces, ':' or '=',
  // spaces, then the value.
  bool try_sensitive_pair(std::size_t j) {
    const auto name = text_.substr(i_, j - i_);
    std::size_t k = j;
    if (k + 1 < text_.size() && text_[k] == '\\' && text_[k + 1] == '"') {
      k += 2;
    } else if (k < text_.size() && text_[k] == '"') {
      k += 1;
    }
    while (k < text_.size() && text_[k] == ' ') ++k;
    if (k >= text_.size() || (text_[k] != ':' && text_[k] != '=')) return false;
    ++k;
    while (k < text_.size() && text_[k] == ' ') ++k;
    if (k >= text_.size()) return false;
    std::size_t value_start = k;
    std::size_t value_end = k;
    if (text_[k] == '"') {  // a JSON string: up to the closing unescaped quote
      // Inside a string this quote closes it ("...password=" ends a
      // string): there is no value to redact.
      if (inside_json_string(text_, k)) return false;
      value_start = k + 1;
      std::size_t m = value_start;
      while (m < text_.size() && text_[m] != '"') m += text_[m] == '\\' ? 2 : 1;
      value_end = std::min(m, text_.size());
    } else if (text_[k] == '\\' && k + 1 < text_.size() && text_[k + 1] == '"') {  // a string escaped in a string
      value_start = k + 2;
      std::size_t m = value_start;
      // Up to the closing \", or to the end of the enclosing string (an
      // unescaped quote) when the nested one is cut short.
      while (m < text_.size() && text_[m] != '"') {
        if (text_[m] == '\\' && m + 1 < text_.size() && text_[m + 1] == '"') break;
        m += text_[m] == '\\' ? 2 : 1;
      }
      value_end = std::min(m, text_.size());
    } else if (text_[k] == '{' || text_[k] == '[') {
      return false;  // a structure: its members are scanned one by one
    } else {         // bare: to a delimiter (header-like values run over spaces)
      const bool spaces = header_like(name);
      std::size_t m = k;
      while (m < text_.size()) {
        const char c = text_[m];
        if (c == '"' || c == '\\' || c == ',' || c == '&' || c == '}' || c == ']' || c == '\n' || c == '\r' ||
            c == '\t' || (c == ' ' && !spaces) || (c == ';' && !spaces)) {
          break;
        }
        ++m;
      }
      value_end = m;
    }
    if (value_end == value_start) return false;
    replace_value(value_start, value_end, marker);
    return true;
  }

  // 13-19 digits in groups separated by single spaces or dashes.
  bool try_card() {
    std::array<char, 19> digits{};
    std::size_t count = 0;
    std::size_t j = i_;
    std::size_t end = i_;  // after the last digit
    while (j < text_.size()) {
      const char c = text_[j];
      if (is_digit(c)) {
        if (count == digits.size()) return false;  // too long for a card
        digits[count++] = c;
        ++j;
        end = j;
      } else if ((c == ' ' || c == '-') && j + 1 < text_.size() && is_digit(text_[j + 1]) && j > i_ &&
                 is_digit(text_[j - 1])) {
        ++j;
      } else {
        break;
      }
    }
    if (count < 13) return false;
    // Part of a decimal number (a fraction or an integer part): not a card.
    const auto digit_at = [&](std::size_t k) { return k < text_.size() && is_digit(text_[k]); };
    if (end < text_.size() && (text_[end] == '.' || text_[end] == 'e' || text_[end] == 'E') && digit_at(end + 1)) {
      return false;
    }
    if (i_ >= 2 && text_[i_ - 1] == '.' && is_digit(text_[i_ - 2])) return false;
    if (end < text_.size() && (is_alnum(text_[end]) || text_[end] == '_')) return false;
    if (!luhn_valid(std::string_view(digits.data(), count))) return false;
    replace_value(i_, end, card_marker);
    return true;
  }

  // local@domain.tld, with '@' at i_. The local part may not reach back
  // into the previous redaction.
  bool try_email() {
    std::size_t start = i_;
    while (start > copied_ && is_email_local_char(text_[start - 1])) --start;
    if (start == i_) return false;
    std::size_t j = i_ + 1;
    while (j < text_.size() && is_email_domain_char(text_[j])) ++j;
    // The domain does not end with '.' or '-' (a sentence's full stop).
    while (j > i_ + 1 && (text_[j - 1] == '.' || text_[j - 1] == '-')) --j;
    const auto domain = text_.substr(i_ + 1, j - i_ - 1);
    const auto dot = domain.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || domain.size() - dot < 3) return false;
    for (const char c : domain.substr(dot + 1)) {
      if (!is_alpha(c)) return false;
    }
    replace(start, j, email_marker);
    return true;
  }

  std::string_view text_;
  std::string& out_;
  const redaction_options& options_;
  std::size_t i_ = 0;
  std::size_t copied_ = 0;  // text_[0, copied_) is in out_ or redacted
  std::size_t count_ = 0;
};

}  // namespace

bool luhn_valid(std::string_view digits) {
  if (digits.empty()) return false;
  unsigned sum = 0;
  bool twice = false;
  for (std::size_t i = digits.size(); i-- > 0;) {
    if (!is_digit(digits[i])) return false;
    unsigned d = static_cast<unsigned>(digits[i] - '0');
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

std::size_t redact(std::string_view text, std::string& out, const redaction_options& options) {
  scanner s{text, out, options};
  return s.run();
}

}  // namespace gatewayz::logging
