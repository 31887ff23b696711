// The PostgreSQL schema's migrations (postgres_migrations.hpp).

#include "store/postgres_migrations.hpp"

#include <vector>

namespace gatewayz::store::detail::pg {

// Data, not logic: the schema's history, one entry per version.
const std::vector<migration>& migrations() {
  static const std::vector<migration> list{
      {1, R"sql(
        CREATE TABLE customers (
          id BIGSERIAL PRIMARY KEY,
          name TEXT NOT NULL UNIQUE,
          balance_nanos BIGINT NOT NULL,
          created_unix_ms BIGINT NOT NULL);
        CREATE TABLE api_keys (
          id BIGSERIAL PRIMARY KEY,
          customer_id BIGINT NOT NULL REFERENCES customers(id),
          key_hash TEXT NOT NULL UNIQUE,
          prefix TEXT NOT NULL,
          revoked BOOLEAN NOT NULL DEFAULT false,
          created_unix_ms BIGINT NOT NULL);
        -- No foreign key to customers: a row naming an unknown customer must
        -- not make its whole batch fail forever.
        CREATE TABLE ledger (
          request_id TEXT PRIMARY KEY,
          unix_ms BIGINT NOT NULL,
          customer_id BIGINT,
          key_id BIGINT,
          model TEXT NOT NULL,
          provider TEXT NOT NULL,
          attempts INTEGER NOT NULL,
          status TEXT NOT NULL,
          http_status INTEGER NOT NULL,
          input_tokens BIGINT NOT NULL,
          output_tokens BIGINT NOT NULL,
          cost_nanos BIGINT NOT NULL,
          latency_ms DOUBLE PRECISION NOT NULL,
          ttft_ms DOUBLE PRECISION,
          streamed BOOLEAN NOT NULL);
        CREATE INDEX ledger_customer_time ON ledger (customer_id, unix_ms);
        CREATE TABLE rollup_minutes (
          minute BIGINT NOT NULL,
          model TEXT NOT NULL,
          provider TEXT NOT NULL,
          requests BIGINT NOT NULL,
          successes BIGINT NOT NULL,
          failures BIGINT NOT NULL,
          latency_sum_ms DOUBLE PRECISION NOT NULL,
          tokens BIGINT NOT NULL,
          cost_nanos BIGINT NOT NULL,
          PRIMARY KEY (minute, model, provider));
        CREATE TABLE rollup_latency_buckets (
          minute BIGINT NOT NULL,
          model TEXT NOT NULL,
          provider TEXT NOT NULL,
          bucket INTEGER NOT NULL,
          count BIGINT NOT NULL,
          PRIMARY KEY (minute, model, provider, bucket));
      )sql"},
      // No query reads the ledger by customer and time (stats come from the
      // rollups), and every index costs each ledger insert a B-tree update.
      {2, "DROP INDEX IF EXISTS ledger_customer_time"},
  };
  return list;
}

}  // namespace gatewayz::store::detail::pg
