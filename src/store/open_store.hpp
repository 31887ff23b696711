#pragma once
// Opening the store named by a storage URL, for the composition root (the
// gatewayz binary) and tests that want whichever backend a URL names. This is
// the one place that knows every backend, so it lives in its own library
// (gw_store_open, linking gw_store_sqlite and gw_store_pg); code that only
// uses a store links gw_store.

#include <memory>
#include <string_view>

#include "store/store.hpp"

namespace gatewayz::telemetry {
struct catalog;
}

namespace gatewayz::store {

// Opens the store named by `url`: sqlite://... (open_sqlite_store) or
// postgres://... / postgresql://... (open_postgres_store). The caller owns
// the result and calls migrate() before use. `metrics` (optional, must
// outlive the store) receives database_queries_total /
// database_query_duration_seconds per operation. Throws store_error with a
// message naming the URL's scheme on failure (never the URL itself, which may
// carry a password).
std::unique_ptr<store> open_store(std::string_view url, telemetry::catalog* metrics);

}  // namespace gatewayz::store
