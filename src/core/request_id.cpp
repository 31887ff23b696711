#include "core/request_id.hpp"

#include <chrono>
#include <cstdint>
#include <random>

namespace gatewayz {

std::string make_request_id() {
  // Time first, so ids sort by creation: the ledger's primary-key index then
  // grows at its right edge instead of touching a random page per insert
  // (3.6x faster ledger writes on SQLite, see bench/README.md).
  //
  // The second half is a per-thread sequence from a random start, not a
  // fresh random number: the ids one thread makes within a millisecond then
  // sort too, so a shard's ledger rows reach the writer in key order and
  // need no sort. Starting below 2^47 leaves room for 2^47 ids before the
  // 48 bits wrap. Two threads (or instances) clash only if both the
  // millisecond and the sequence value meet.
  thread_local std::uint64_t sequence = [] {
    std::mt19937_64 rng{std::random_device{}()};
    return rng() & 0x7fffffffffffULL;
  }();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  // "req_" + 12 hex digits of each, written directly (this runs per request).
  std::string id(4 + 24, '0');
  id[0] = 'r';
  id[1] = 'e';
  id[2] = 'q';
  id[3] = '_';
  constexpr char digits[] = "0123456789abcdef";
  const auto put = [&](std::uint64_t value, std::size_t at) {
    for (std::size_t i = 0; i < 12; ++i) id[at + 11 - i] = digits[(value >> (4 * i)) & 0xf];
  };
  put(static_cast<std::uint64_t>(ms) & 0xffffffffffffULL, 4);
  put(sequence++ & 0xffffffffffffULL, 16);
  return id;
}

std::string request_id_for(std::string_view inbound) {
  if (inbound.empty() || inbound.size() > 128) return make_request_id();
  for (const char c : inbound) {
    if (c <= 0x20 || c >= 0x7f) return make_request_id();
  }
  return std::string(inbound);
}

}  // namespace gatewayz
