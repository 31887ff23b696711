#pragma once
// The PostgreSQL backend (library gw_store_pg): one database shared by
// several gateway instances, reached through libpq.

#include <memory>
#include <string_view>

#include "store/store.hpp"

namespace gatewayz::telemetry {
struct catalog;
}

namespace gatewayz::store {

// Opens postgres://user:pass@host:port/db (or postgresql://...). The caller
// owns the result and calls migrate() before use; it is safe to call from any
// thread (see store.hpp). `metrics` (optional) must outlive the store.
// Connects once before returning: throws store_error when it cannot (the
// message never holds the password).
std::unique_ptr<store> open_postgres_store(std::string_view url, telemetry::catalog* metrics);

}  // namespace gatewayz::store
