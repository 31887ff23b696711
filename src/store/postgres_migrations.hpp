#pragma once
// The PostgreSQL schema (library gw_store_pg): its migrations, applied in
// order by postgres_store::migrate(), each once, in its own transaction, and
// recorded in schema_version. Never edit a released entry: append a new one.

#include <vector>

namespace gatewayz::store::detail::pg {

struct migration {
  int version;
  const char* sql;  // may hold several statements
};

// The list, in version order; built on first use, never changed.
const std::vector<migration>& migrations();

}  // namespace gatewayz::store::detail::pg
