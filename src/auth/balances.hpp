#pragma once
// Customer balances as this instance admits requests against them: credit
// that cannot be overspent by concurrent requests, and a refresh from the
// database that never forgets a charge.
//
// For each customer the balance a request is checked against is
//
//   available = database balance (as last read)
//             - this run's charges the database did not hold at that read
//             - open reservations
//
// kept in one atomic, so admission is one compare-and-swap:
//   - reserve(): before a request is proxied, its worst-case cost is taken
//     from `available`; if it does not fit the request is refused (402).
//   - settle(): when the request ends, the reservation is returned and the
//     real cost taken instead. A customer can end below zero by at most one
//     request's (actual - reserved), however many requests run at once.
//   - committed(): the ledger writer reports rows it committed. The database
//     now holds those charges; `available` already did, so only the
//     bookkeeping of what the last read held changes.
//   - refresh(): a fresh database read. Charges committed after the read
//     started are not assumed to be in it (see commit_mark()), so a refresh
//     can only under-estimate the balance, until the next one.
// With several instances on one database, another instance's spending is
// seen here once it is committed (its flush interval) and read (the key
// cache TTL): that lag, times the others' rate of spend, bounds the
// overspend (ARCHITECTURE.md, "Credits").
//
// Threads: reserve/settle/available on any server thread (lock-free);
// account(), commit_mark(), refresh() and committed() take one mutex
// (store lookups and ledger batches only, never the request path). Accounts
// live as long as this object, at stable addresses.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>

#include "store/store.hpp"

namespace gatewayz::auth {

class customer_balances {
 public:
  class account;

  // Marks the start of this run: ledger rows of requests received earlier
  // (an earlier run's spill file, replayed now) were never charged here.
  customer_balances();
  customer_balances(const customer_balances&) = delete;
  customer_balances& operator=(const customer_balances&) = delete;
  ~customer_balances();

  // The customer's account, created (with nothing read yet) on first use.
  account& find_or_add(std::int64_t customer_id);
  // The customer's account if this instance has one, else null.
  account* find(std::int64_t customer_id);

  // Taken before a database read of balances; pass it to refresh().
  struct commit_mark {
    std::uint64_t sequence = 0;
  };
  commit_mark mark() const;
  // The database said `database_balance` for the account's customer, in a
  // read that started after `before_read` was taken.
  void refresh(account& acct, store::nanos_usd database_balance, commit_mark before_read);

  // The ledger writer committed `rows` (its thread). Rows without a customer
  // or cost, or received before this run, are ignored.
  void committed(std::span<const store::ledger_row> rows);
  // This instance just added `amount` (negative: removed) to the customer's
  // balance in the database, which has committed it. Counted like a
  // committed charge of -amount, so a refresh neither misses nor doubles it.
  void credited(account& acct, store::nanos_usd amount);

  static store::nanos_usd available(const account& acct);
  // Takes `amount` (>= 0) from the account if what is available covers it.
  static bool reserve(account& acct, store::nanos_usd amount);
  // The request that reserved `reserved` cost `actual`.
  static void settle(account& acct, store::nanos_usd reserved, store::nanos_usd actual);
  // Open reservations, for tests and diagnostics.
  static store::nanos_usd reserved(const account& acct);

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::int64_t, std::unique_ptr<account>> accounts_;  // guarded by mu_
  std::uint64_t commit_sequence_ = 0;                                    // guarded by mu_: batches reported
  std::int64_t run_started_unix_ms_;
};

class alignas(64) customer_balances::account {
 public:
  account() = default;

 private:
  friend class customer_balances;
  std::atomic<store::nanos_usd> available_{0};
  std::atomic<store::nanos_usd> reserved_{0};
  // Guarded by customer_balances::mu_.
  store::nanos_usd read_balance_ = 0;       // the database's, at the last refresh
  store::nanos_usd committed_total_ = 0;    // this run's charges committed so far
  store::nanos_usd committed_in_read_ = 0;  // ... of which the last refresh's read held
  std::uint64_t last_commit_ = 0;           // sequence of the last batch with a row of this customer
};

}  // namespace gatewayz::auth
