#include "tracing/trace_context.hpp"

#include <algorithm>
#include <random>

namespace gatewayz::tracing {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

// xoshiro256** seeded once per thread from the OS: fast, no lock, and good
// enough that ids of different threads and processes do not collide.
class id_generator {
 public:
  id_generator() {
    std::random_device device;
    for (auto& word : s_) {
      word = (static_cast<std::uint64_t>(device()) << 32) ^ device();
    }
    if (std::all_of(s_.begin(), s_.end(), [](std::uint64_t w) { return w == 0; })) s_[0] = 1;
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

id_generator& generator() {
  thread_local id_generator gen;
  return gen;
}

template <std::size_t N>
void fill(std::array<std::uint8_t, N>& bytes) {
  auto& gen = generator();
  for (std::size_t i = 0; i < N; i += 8) {
    const std::uint64_t word = gen.next();
    for (std::size_t j = 0; j < 8 && i + j < N; ++j) bytes[i + j] = static_cast<std::uint8_t>(word >> (8 * j));
  }
}

template <std::size_t N>
void write_hex(const std::array<std::uint8_t, N>& bytes, char* out) {
  for (std::size_t i = 0; i < N; ++i) {
    out[2 * i] = hex_digits[bytes[i] >> 4];
    out[2 * i + 1] = hex_digits[bytes[i] & 0xf];
  }
}

int hex_value(char c, bool lower_only) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (!lower_only && c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <std::size_t N>
bool read_hex(std::string_view hex, std::array<std::uint8_t, N>& out, bool lower_only) {
  if (hex.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    const int hi = hex_value(hex[2 * i], lower_only);
    const int lo = hex_value(hex[2 * i + 1], lower_only);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

template <std::size_t N>
bool all_zero(const std::array<std::uint8_t, N>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool lcalpha_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// key = simple-key / multi-tenant-key (W3C tracestate).
bool valid_key(std::string_view key) {
  const auto key_char = [](char c) { return lcalpha_or_digit(c) || c == '_' || c == '-' || c == '*' || c == '/'; };
  const auto at = key.find('@');
  if (at == std::string_view::npos) {
    if (key.empty() || key.size() > 256 || !lcalpha_or_digit(key[0])) return false;
    return std::all_of(key.begin() + 1, key.end(), key_char);
  }
  const auto tenant = key.substr(0, at);
  const auto system = key.substr(at + 1);
  if (tenant.empty() || tenant.size() > 241 || !lcalpha_or_digit(tenant[0])) return false;
  if (system.empty() || system.size() > 14 || !(system[0] >= 'a' && system[0] <= 'z')) return false;
  return std::all_of(tenant.begin() + 1, tenant.end(), key_char) &&
         std::all_of(system.begin() + 1, system.end(), key_char);
}

bool valid_value(std::string_view value) {
  if (value.empty() || value.size() > 256 || value.back() == ' ') return false;
  return std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

}  // namespace

bool trace_id::valid() const { return !all_zero(bytes); }
bool span_id::valid() const { return !all_zero(bytes); }

trace_id new_trace_id() {
  trace_id id;
  do fill(id.bytes);
  while (!id.valid());
  return id;
}

span_id new_span_id() {
  span_id id;
  do fill(id.bytes);
  while (!id.valid());
  return id;
}

void to_hex(const trace_id& id, char* out) { write_hex(id.bytes, out); }
void to_hex(const span_id& id, char* out) { write_hex(id.bytes, out); }

std::string to_hex(const trace_id& id) {
  std::string s(32, '0');
  to_hex(id, s.data());
  return s;
}

std::string to_hex(const span_id& id) {
  std::string s(16, '0');
  to_hex(id, s.data());
  return s;
}

bool from_hex(std::string_view hex, trace_id& out) { return read_hex(hex, out.bytes, false); }
bool from_hex(std::string_view hex, span_id& out) { return read_hex(hex, out.bytes, false); }

void format_traceparent(const trace_id& trace, const span_id& span, std::uint8_t flags, char* out) {
  out[0] = '0';
  out[1] = '0';
  out[2] = '-';
  to_hex(trace, out + 3);
  out[35] = '-';
  to_hex(span, out + 36);
  out[52] = '-';
  out[53] = hex_digits[flags >> 4];
  out[54] = hex_digits[flags & 0xf];
}

std::optional<remote_context> parse_traceparent(std::string_view header) {
  const auto value = trim_ows(header);
  if (value.size() < traceparent_size) return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  if (!read_hex(value.substr(0, 2), version, true) || version[0] == 0xff) return std::nullopt;
  // Version 00 is exactly 55 characters; a later version may append fields
  // after a '-', which this parser ignores (and re-emits as version 00).
  if (version[0] == 0 ? value.size() != traceparent_size
                      : value.size() > traceparent_size && value[traceparent_size] != '-') {
    return std::nullopt;
  }
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  remote_context context;
  std::array<std::uint8_t, 1> flags{};
  if (!read_hex(value.substr(3, 32), context.trace.bytes, true) ||
      !read_hex(value.substr(36, 16), context.parent.bytes, true) || !read_hex(value.substr(53, 2), flags, true)) {
    return std::nullopt;
  }
  if (!context.trace.valid() || !context.parent.valid()) return std::nullopt;
  // Version 00 defines only the sampled bit (later drafts add random-trace-id);
  // unknown bits are not passed on.
  context.flags = flags[0] & flag_sampled;
  return context;
}

bool valid_tracestate(std::string_view tracestate) {
  std::size_t members = 0;
  std::vector<std::string_view> keys;
  while (true) {
    const auto comma = tracestate.find(',');
    const auto member = trim_ows(tracestate.substr(0, comma));
    if (!member.empty()) {
      const auto eq = member.find('=');
      if (eq == std::string_view::npos) return false;
      const auto key = member.substr(0, eq);
      if (!valid_key(key) || !valid_value(member.substr(eq + 1))) return false;
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) return false;  // keys are unique
      keys.push_back(key);
      if (++members > 32) return false;
    }
    if (comma == std::string_view::npos) break;
    tracestate.remove_prefix(comma + 1);
  }
  return true;
}

void attach_tracestate(remote_context& context, std::string_view tracestate) {
  const auto value = trim_ows(tracestate);
  if (value.empty() || value.size() > 8192 || !valid_tracestate(value)) return;
  context.tracestate.assign(value);
}

}  // namespace gatewayz::tracing
