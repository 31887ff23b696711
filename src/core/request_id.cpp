#include "core/request_id.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace gatewayz {

std::string make_request_id() {
  // Time first, so ids sort by creation: the ledger's primary-key index then
  // grows at its right edge instead of touching a random page per insert
  // (docs/decisions/request-id-order.md).
  //
  // Then a per-thread count of the ids made within that millisecond, so the
  // ids one thread makes sort too and a shard's rows reach the ledger writer
  // nearly in key order. It restarts every millisecond, so an id tells a
  // client nothing about the traffic of others beyond that one millisecond.
  // Then 48 random bits, so ids of different threads and instances differ:
  // two ids clash only with the same millisecond, count and random part.
  struct generator {
    std::mt19937_64 rng;
    std::int64_t last_ms = -1;
    std::uint64_t count = 0;
  };
  thread_local generator gen{[] {
    std::random_device device;
    std::seed_seq seeds{device(), device(), device(), device()};
    return std::mt19937_64(seeds);
  }()};
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  if (ms != gen.last_ms) {
    gen.last_ms = ms;
    gen.count = 0;
  }
  // "req_" + 12 hex digits of milliseconds + 4 of the count + 12 random ones,
  // written directly (this runs per request).
  std::string id(4 + 28, '0');
  id[0] = 'r';
  id[1] = 'e';
  id[2] = 'q';
  id[3] = '_';
  constexpr char digits[] = "0123456789abcdef";
  const auto put = [&](std::uint64_t value, std::size_t at, std::size_t width) {
    for (std::size_t i = 0; i < width; ++i) id[at + width - 1 - i] = digits[(value >> (4 * i)) & 0xf];
  };
  put(static_cast<std::uint64_t>(ms) & 0xffffffffffffULL, 4, 12);
  put(std::min<std::uint64_t>(gen.count++, 0xffff), 16, 4);  // 65k ids in one millisecond: the rest tie
  put(gen.rng() & 0xffffffffffffULL, 20, 12);
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
