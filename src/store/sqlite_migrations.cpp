// The SQLite schema: its migrations, applied by sqlite_store::migrate().

#include <cstdint>
#include <vector>

#include "store/sqlite_internal.hpp"

namespace gatewayz::store::detail::sqlite {
namespace {

// Ordered migrations; each is applied once, in its own transaction, and
// recorded in schema_version. Never edit a released entry: append a new one.
struct migration {
  int version;
  std::vector<const char*> statements;
};

// Data, not logic: the schema's history, one entry per version.
const std::vector<migration>& migrations() {
  static const std::vector<migration> list{
      {1,
       {
           R"sql(CREATE TABLE customers (
                   id INTEGER PRIMARY KEY,
                   name TEXT NOT NULL UNIQUE,
                   balance_nanos INTEGER NOT NULL,
                   created_unix_ms INTEGER NOT NULL))sql",
           R"sql(CREATE TABLE api_keys (
                   id INTEGER PRIMARY KEY,
                   customer_id INTEGER NOT NULL REFERENCES customers(id),
                   key_hash TEXT NOT NULL UNIQUE,
                   prefix TEXT NOT NULL,
                   revoked INTEGER NOT NULL DEFAULT 0,
                   created_unix_ms INTEGER NOT NULL))sql",
           // No foreign key to customers: a row naming an unknown customer
           // must not make its whole batch fail forever.
           R"sql(CREATE TABLE ledger (
                   request_id TEXT PRIMARY KEY,
                   unix_ms INTEGER NOT NULL,
                   customer_id INTEGER,
                   key_id INTEGER,
                   model TEXT NOT NULL,
                   provider TEXT NOT NULL,
                   attempts INTEGER NOT NULL,
                   status TEXT NOT NULL,
                   http_status INTEGER NOT NULL,
                   input_tokens INTEGER NOT NULL,
                   output_tokens INTEGER NOT NULL,
                   cost_nanos INTEGER NOT NULL,
                   latency_ms REAL NOT NULL,
                   ttft_ms REAL,
                   streamed INTEGER NOT NULL))sql",
           "CREATE INDEX ledger_customer_time ON ledger (customer_id, unix_ms)",
           R"sql(CREATE TABLE rollup_minutes (
                   minute INTEGER NOT NULL,
                   model TEXT NOT NULL,
                   provider TEXT NOT NULL,
                   requests INTEGER NOT NULL,
                   successes INTEGER NOT NULL,
                   failures INTEGER NOT NULL,
                   latency_sum_ms REAL NOT NULL,
                   tokens INTEGER NOT NULL,
                   cost_nanos INTEGER NOT NULL,
                   PRIMARY KEY (minute, model, provider)))sql",
           R"sql(CREATE TABLE rollup_latency_buckets (
                   minute INTEGER NOT NULL,
                   model TEXT NOT NULL,
                   provider TEXT NOT NULL,
                   bucket INTEGER NOT NULL,
                   count INTEGER NOT NULL,
                   PRIMARY KEY (minute, model, provider, bucket)))sql",
       }},
      // No query reads the ledger by customer and time (stats come from the
      // rollups), and every index costs each ledger insert a B-tree update on
      // the writer thread, which shares a core with request serving.
      {2, {"DROP INDEX IF EXISTS ledger_customer_time"}},
      // The ledger keyed by request id alone (WITHOUT ROWID): one B-tree per
      // insert instead of the rowid table plus the primary-key index. The
      // column list restates migration 1's on purpose: released migrations
      // are frozen history, not shared definitions.
      {3,
       {
           R"sql(CREATE TABLE ledger_keyed (
                   request_id TEXT PRIMARY KEY,
                   unix_ms INTEGER NOT NULL,
                   customer_id INTEGER,
                   key_id INTEGER,
                   model TEXT NOT NULL,
                   provider TEXT NOT NULL,
                   attempts INTEGER NOT NULL,
                   status TEXT NOT NULL,
                   http_status INTEGER NOT NULL,
                   input_tokens INTEGER NOT NULL,
                   output_tokens INTEGER NOT NULL,
                   cost_nanos INTEGER NOT NULL,
                   latency_ms REAL NOT NULL,
                   ttft_ms REAL,
                   streamed INTEGER NOT NULL) WITHOUT ROWID)sql",
           "INSERT INTO ledger_keyed SELECT request_id, unix_ms, customer_id, key_id, model, provider, attempts,"
           " status, http_status, input_tokens, output_tokens, cost_nanos, latency_ms, ttft_ms, streamed FROM ledger",
           "DROP TABLE ledger",
           "ALTER TABLE ledger_keyed RENAME TO ledger",
       }},
  };
  return list;
}

}  // namespace

void sqlite_store::migrate() {
  query_timer timer(metrics_, "migrate");
  auto conn = pool_.acquire();
  conn->exec(
      "CREATE TABLE IF NOT EXISTS schema_version ("
      " version INTEGER PRIMARY KEY, applied_unix_ms INTEGER NOT NULL)");
  for (const migration& m : migrations()) {
    // The version is re-read inside the write transaction, so two
    // processes migrating at once apply each step exactly once.
    transaction tx(*conn, transaction::kind::write);
    std::int64_t current = 0;
    {
      auto st = conn->prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
      if (st.step()) current = st.int64(0);
    }
    if (current >= m.version) {
      tx.commit();
      continue;
    }
    for (const char* sql : m.statements) conn->exec(sql);
    conn->prepare("INSERT INTO schema_version (version, applied_unix_ms) VALUES (?1, ?2)")
        .bind(1, std::int64_t{m.version})
        .bind(2, now_unix_ms())
        .run();
    tx.commit();
  }
}

}  // namespace gatewayz::store::detail::sqlite
