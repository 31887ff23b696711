#include "auth/balances.hpp"

#include <chrono>
#include <limits>

namespace gatewayz::auth {

namespace {

using nanos = store::nanos_usd;

nanos saturating_add(nanos a, nanos b) {
  nanos out = 0;
  if (!__builtin_add_overflow(a, b, &out)) return out;
  return b > 0 ? std::numeric_limits<nanos>::max() : std::numeric_limits<nanos>::min();
}

nanos saturating_sub(nanos a, nanos b) {
  nanos out = 0;
  if (!__builtin_sub_overflow(a, b, &out)) return out;
  return b < 0 ? std::numeric_limits<nanos>::max() : std::numeric_limits<nanos>::min();
}

}  // namespace

customer_balances::customer_balances()
    : run_started_unix_ms_(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count()) {}

customer_balances::~customer_balances() = default;

customer_balances::account& customer_balances::find_or_add(std::int64_t customer_id) {
  std::lock_guard lock{mu_};
  auto& slot = accounts_[customer_id];
  if (!slot) slot = std::make_unique<account>();
  return *slot;
}

customer_balances::account* customer_balances::find(std::int64_t customer_id) {
  std::lock_guard lock{mu_};
  const auto found = accounts_.find(customer_id);
  return found == accounts_.end() ? nullptr : found->second.get();
}

customer_balances::commit_mark customer_balances::mark() const {
  std::lock_guard lock{mu_};
  return commit_mark{commit_sequence_};
}

void customer_balances::refresh(account& acct, nanos database_balance, commit_mark before_read) {
  std::lock_guard lock{mu_};
  // A batch with this customer's rows was reported after the read started:
  // it may or may not be in the read, so the read cannot be placed exactly.
  // Keep the current estimate; the next refresh will place its read.
  if (acct.last_commit_ > before_read.sequence) return;
  // Every committed charge of this customer was reported before the read
  // started, so the read holds all of them. The estimate moves by what the
  // database gained since the last read, plus the charges it now holds that
  // `available` counted as not yet in the database.
  const nanos gained = saturating_sub(database_balance, acct.read_balance_);
  const nanos newly_held = saturating_sub(acct.committed_total_, acct.committed_in_read_);
  acct.read_balance_ = database_balance;
  acct.committed_in_read_ = acct.committed_total_;
  const nanos delta = saturating_add(gained, newly_held);
  // Read-modify-write: server threads reserve and settle concurrently.
  nanos current = acct.available_.load(std::memory_order_relaxed);
  while (!acct.available_.compare_exchange_weak(current, saturating_add(current, delta), std::memory_order_relaxed)) {
  }
}

void customer_balances::committed(std::span<const store::ledger_row> rows) {
  std::lock_guard lock{mu_};
  ++commit_sequence_;
  for (const auto& row : rows) {
    if (!row.customer_id || row.cost == 0 || row.unix_ms < run_started_unix_ms_) continue;
    const auto found = accounts_.find(*row.customer_id);
    if (found == accounts_.end()) continue;  // charged by an earlier run
    account& acct = *found->second;
    acct.committed_total_ = saturating_add(acct.committed_total_, row.cost);
    acct.last_commit_ = commit_sequence_;
  }
}

void customer_balances::credited(account& acct, nanos amount) {
  std::lock_guard lock{mu_};
  ++commit_sequence_;
  acct.committed_total_ = saturating_sub(acct.committed_total_, amount);
  acct.last_commit_ = commit_sequence_;
  acct.available_.fetch_add(amount, std::memory_order_relaxed);
}

nanos customer_balances::available(const account& acct) { return acct.available_.load(std::memory_order_relaxed); }

bool customer_balances::reserve(account& acct, nanos amount) {
  if (amount < 0) amount = 0;
  nanos current = acct.available_.load(std::memory_order_relaxed);
  do {
    if (current < amount) return false;
  } while (!acct.available_.compare_exchange_weak(current, current - amount, std::memory_order_relaxed));
  acct.reserved_.fetch_add(amount, std::memory_order_relaxed);
  return true;
}

void customer_balances::settle(account& acct, nanos reserved, nanos actual) {
  if (reserved < 0) reserved = 0;
  acct.reserved_.fetch_sub(reserved, std::memory_order_relaxed);
  const nanos delta = saturating_sub(reserved, actual);
  if (delta != 0) acct.available_.fetch_add(delta, std::memory_order_relaxed);
}

nanos customer_balances::reserved(const account& acct) { return acct.reserved_.load(std::memory_order_relaxed); }

}  // namespace gatewayz::auth
