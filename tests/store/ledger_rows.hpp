#pragma once
// Ledger rows for the store tests (store_test.cpp, sqlite_checkpoint_test.cpp).

#include <cstdint>
#include <optional>
#include <string>

#include "store/store.hpp"

namespace gatewayz::store::test_rows {

// A served (or, with another status, failed) request of 10 input and 5
// output tokens.
inline ledger_row make_row(std::string request_id, std::optional<std::int64_t> customer_id, nanos_usd cost,
                           std::int64_t unix_ms, double latency_ms = 100.0, std::string model = "gpt-4o-mini",
                           std::string provider = "openai", std::string status = "success") {
  ledger_row row;
  row.request_id = std::move(request_id);
  row.unix_ms = unix_ms;
  row.customer_id = customer_id;
  row.model = std::move(model);
  row.provider = std::move(provider);
  row.attempts = 1;
  row.status = std::move(status);
  row.http_status = row.status == "success" ? 200 : 502;
  row.input_tokens = 10;
  row.output_tokens = 5;
  row.cost = cost;
  row.latency_ms = latency_ms;
  return row;
}

}  // namespace gatewayz::store::test_rows
