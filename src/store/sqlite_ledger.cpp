// The ledger on SQLite: write_ledger (the ledger writer's hot path: no
// allocation or copy per row), and reading it back.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "store/sqlite_internal.hpp"

namespace gatewayz::store::detail::sqlite {
namespace {

// Ledger inserts: one row, or ledger_group_rows rows in one statement.
constexpr std::size_t ledger_columns = 15;
constexpr std::size_t ledger_group_rows = 64;  // 960 parameters; 8% less writer CPU than 16
#define GW_LEDGER_COLUMNS                                                                                   \
  "request_id, unix_ms, customer_id, key_id, model, provider, attempts, status, http_status, input_tokens," \
  " output_tokens, cost_nanos, latency_ms, ttft_ms, streamed"
constexpr const char* ledger_insert_one = "INSERT INTO ledger (" GW_LEDGER_COLUMNS
                                          ")"
                                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
                                          " ON CONFLICT (request_id) DO NOTHING";

// Without ON CONFLICT: a duplicate must fail the whole group (see insert_ledger_rows).
const std::string& ledger_insert_group() {
  static const std::string sql = [] {
    std::string text = "INSERT INTO ledger (" GW_LEDGER_COLUMNS ") VALUES ";
    for (std::size_t row = 0; row < ledger_group_rows; ++row) {
      text += row == 0 ? "(" : ", (";
      for (std::size_t column = 0; column < ledger_columns; ++column) {
        if (column > 0) text += ", ";
        text += "?" + std::to_string(row * ledger_columns + column + 1);
      }
      text += ")";
    }
    return text;
  }();
  return sql;
}
#undef GW_LEDGER_COLUMNS

// Binds `row` to parameters first + 1 .. first + 15 of `st`. Its strings are
// bound without copying: `row` must outlive the statement's next reset.
void bind_row(statement& st, int first, const ledger_row& row) {
  st.bind_static(first + 1, row.request_id)
      .bind(first + 2, row.unix_ms)
      .bind(first + 3, row.customer_id)
      .bind(first + 4, row.key_id)
      .bind_static(first + 5, row.model)
      .bind_static(first + 6, row.provider)
      .bind(first + 7, std::int64_t{row.attempts})
      .bind_static(first + 8, row.status)
      .bind(first + 9, std::int64_t{row.http_status})
      .bind(first + 10, row.input_tokens)
      .bind(first + 11, row.output_tokens)
      .bind(first + 12, row.cost)
      .bind(first + 13, storable_ms(row.latency_ms))
      .bind(first + 14, row.ttft_ms ? std::optional<double>(storable_ms(*row.ttft_ms)) : std::nullopt)
      .bind(first + 15, std::int64_t{row.streamed ? 1 : 0});
}

// write_ledger's first step, inside its transaction: inserts the rows of
// `order`, adds each newly inserted one to `effects` and returns how many
// those were. Calls `pause` (when set) after each group of rows.
std::size_t insert_ledger_rows(connection& conn, const std::vector<const ledger_row*>& order, batch_effects& effects,
                               const store::ledger_pause& pause) {
  std::size_t inserted = 0;
  auto single = conn.prepare(ledger_insert_one);
  const auto insert_one = [&](const ledger_row& row) {
    single.reset();
    bind_row(single, 0, row);
    single.run();
    // Only a newly inserted row changes balances and rollups: a replayed
    // batch (the writer retrying after an unclear failure) is a no-op.
    if (conn.changes() == 1) {
      effects.add(row);
      ++inserted;
    }
  };
  // Rows go in groups of ledger_group_rows per statement, which spares
  // SQLite a statement's set-up and tear-down per row. A group holding a
  // row that exists already (a replayed batch) fails as a whole, changes
  // nothing, and is then inserted row by row.
  auto group = conn.prepare(ledger_insert_group().c_str());
  std::size_t next = 0;
  for (; next + ledger_group_rows <= order.size(); next += ledger_group_rows) {
    group.reset();
    for (std::size_t k = 0; k < ledger_group_rows; ++k) {
      bind_row(group, static_cast<int>(k * ledger_columns), *order[next + k]);
    }
    if (group.run_unless_conflict()) {
      for (std::size_t k = 0; k < ledger_group_rows; ++k) effects.add(*order[next + k]);
      inserted += ledger_group_rows;
    } else {
      for (std::size_t k = 0; k < ledger_group_rows; ++k) insert_one(*order[next + k]);
    }
    if (pause) pause(next + ledger_group_rows);
  }
  for (; next < order.size(); ++next) insert_one(*order[next]);
  return inserted;
}

// write_ledger's second step, in the same transaction: applies the finished
// `effects` (debits, rollup sums, latency buckets).
void apply_ledger_effects(connection& conn, const batch_effects& effects) {
  for (const auto& debit : effects.debits()) {
    conn.prepare("UPDATE customers SET balance_nanos = balance_nanos - ?1 WHERE id = ?2")
        .bind(1, debit.cost)
        .bind(2, debit.customer_id)
        .run();
  }
  for (const auto& rollup : effects.rollups()) {
    conn.prepare(
            "INSERT INTO rollup_minutes (minute, model, provider, requests, successes, failures, latency_sum_ms,"
            " tokens, cost_nanos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            " ON CONFLICT (minute, model, provider) DO UPDATE SET"
            " requests = requests + excluded.requests, successes = successes + excluded.successes,"
            " failures = failures + excluded.failures, latency_sum_ms = latency_sum_ms + excluded.latency_sum_ms,"
            " tokens = tokens + excluded.tokens, cost_nanos = cost_nanos + excluded.cost_nanos")
        .bind(1, rollup.minute)
        .bind_static(2, rollup.model)
        .bind_static(3, rollup.provider)
        .bind(4, rollup.sums.requests)
        .bind(5, rollup.sums.successes)
        .bind(6, rollup.sums.failures)
        .bind(7, rollup.sums.latency_sum_ms)
        .bind(8, rollup.sums.tokens)
        .bind(9, rollup.sums.cost)
        .run();
  }
  for (const auto& b : effects.buckets()) {
    const auto& rollup = effects.rollups()[b.rollup];
    conn.prepare(
            "INSERT INTO rollup_latency_buckets (minute, model, provider, bucket, count)"
            " VALUES (?1, ?2, ?3, ?4, ?5)"
            " ON CONFLICT (minute, model, provider, bucket) DO UPDATE SET count = count + excluded.count")
        .bind(1, rollup.minute)
        .bind_static(2, rollup.model)
        .bind_static(3, rollup.provider)
        .bind(4, std::int64_t{b.bucket})
        .bind(5, b.count)
        .run();
  }
}

}  // namespace

std::size_t sqlite_store::write_ledger(std::span<const ledger_row> rows, const ledger_pause& pause) {
  query_timer timer(metrics_, "write_ledger");
  if (rows.empty()) return 0;
  auto conn = pool_.acquire();
  transaction tx(*conn, transaction::kind::write);
  // In key order, consecutive inserts land on neighbouring pages of the
  // request-id index, which with ids in no order is most of a row's cost.
  const std::vector<const ledger_row*> order = rows_in_key_order(rows);
  batch_effects effects;
  const std::size_t inserted = insert_ledger_rows(*conn, order, effects, pause);
  effects.finish();
  apply_ledger_effects(*conn, effects);
  tx.commit();
  return inserted;
}

std::optional<ledger_row> sqlite_store::find_ledger_row(std::string_view request_id) {
  query_timer timer(metrics_, "find_ledger_row");
  auto conn = pool_.acquire();
  auto st = conn->prepare(
      "SELECT request_id, unix_ms, customer_id, key_id, model, provider, attempts, status, http_status,"
      " input_tokens, output_tokens, cost_nanos, latency_ms, ttft_ms, streamed FROM ledger WHERE request_id = ?1");
  st.bind(1, request_id);
  if (!st.step()) return std::nullopt;
  ledger_row row;
  row.request_id = st.text(0);
  row.unix_ms = st.int64(1);
  if (!st.is_null(2)) row.customer_id = st.int64(2);
  if (!st.is_null(3)) row.key_id = st.int64(3);
  row.model = st.text(4);
  row.provider = st.text(5);
  row.attempts = static_cast<std::uint32_t>(st.int64(6));
  row.status = st.text(7);
  row.http_status = static_cast<std::uint32_t>(st.int64(8));
  row.input_tokens = st.int64(9);
  row.output_tokens = st.int64(10);
  row.cost = st.int64(11);
  row.latency_ms = st.real(12);
  if (!st.is_null(13)) row.ttft_ms = st.real(13);
  row.streamed = st.int64(14) != 0;
  return row;
}

std::int64_t sqlite_store::count_ledger_rows() {
  query_timer timer(metrics_, "count_ledger_rows");
  auto conn = pool_.acquire();
  auto st = conn->prepare("SELECT COUNT(*) FROM ledger");
  return st.step() ? st.int64(0) : 0;
}

}  // namespace gatewayz::store::detail::sqlite
