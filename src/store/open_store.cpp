#include "store/open_store.hpp"

#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"

namespace gatewayz::store {

std::unique_ptr<store> open_store(std::string_view url, telemetry::catalog* metrics) {
  const auto colon = url.find("://");
  const std::string_view scheme = colon == std::string_view::npos ? std::string_view{} : url.substr(0, colon);
  if (scheme == "sqlite") return open_sqlite_store(url, metrics);
  if (scheme == "postgres" || scheme == "postgresql") return open_postgres_store(url, metrics);
  // The URL itself is never echoed (it may carry a password), and the scheme
  // only when it looks like one: "user:secret@host://" must not leak "secret".
  const bool printable_scheme = !scheme.empty() && scheme.size() <= 16 &&
                                scheme.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789+-.") ==
                                    std::string_view::npos;
  if (!printable_scheme) throw store_error("storage URL has no known scheme (expected sqlite:// or postgres://)");
  throw store_error("unsupported storage URL scheme '" + std::string(scheme) + "' (expected sqlite:// or postgres://)");
}

}  // namespace gatewayz::store
