// customer_balances on its own: reservations under contention, settlement,
// and refreshes placed against the ledger's commit reports.

#include "auth/balances.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace {

using namespace gatewayz;
using auth::customer_balances;

store::ledger_row row_of(std::int64_t customer, store::nanos_usd cost) {
  store::ledger_row row;
  row.customer_id = customer;
  row.cost = cost;
  row.unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  return row;
}

TEST(CustomerBalances, AReservationThatDoesNotFitIsRefusedAndLeavesTheBalanceAlone) {
  customer_balances balances;
  auto& acct = balances.find_or_add(7);
  balances.refresh(acct, 100, balances.mark());
  EXPECT_TRUE(customer_balances::reserve(acct, 60));
  EXPECT_FALSE(customer_balances::reserve(acct, 41));
  EXPECT_EQ(customer_balances::available(acct), 40);
  EXPECT_EQ(customer_balances::reserved(acct), 60);
  EXPECT_TRUE(customer_balances::reserve(acct, 40));
  EXPECT_EQ(customer_balances::available(acct), 0);
  // Settled: one cost less than reserved, one more.
  customer_balances::settle(acct, 60, 10);
  customer_balances::settle(acct, 40, 45);
  EXPECT_EQ(customer_balances::available(acct), 45);
  EXPECT_EQ(customer_balances::reserved(acct), 0);
}

TEST(CustomerBalances, ConcurrentReservationsNeverExceedTheCredit) {
  customer_balances balances;
  auto& acct = balances.find_or_add(1);
  balances.refresh(acct, 10 * 26, balances.mark());  // credit for ten requests of 26
  std::atomic<int> admitted{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < 500; ++i) {
        if (customer_balances::reserve(acct, 26)) {
          ++admitted;
          // Every admitted request's real cost is what it reserved; some
          // release part of it, none costs more.
          customer_balances::settle(acct, 26, 26);
        }
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 10);
  EXPECT_EQ(customer_balances::available(acct), 0);
}

TEST(CustomerBalances, RefreshesPlaceEachReadAgainstCommittedCharges) {
  customer_balances balances;
  auto& acct = balances.find_or_add(3);
  balances.refresh(acct, 1000, balances.mark());
  customer_balances::settle(acct, 0, 300);  // charged; the ledger has not committed it
  balances.refresh(acct, 1000, balances.mark());
  EXPECT_EQ(customer_balances::available(acct), 700) << "the read does not hold the charge yet";

  balances.committed(std::vector<store::ledger_row>{row_of(3, 300)});
  balances.refresh(acct, 700, balances.mark());
  EXPECT_EQ(customer_balances::available(acct), 700) << "the read holds it: not subtracted twice";

  // Another instance spent 50 and an operator added 500.
  balances.refresh(acct, 1150, balances.mark());
  EXPECT_EQ(customer_balances::available(acct), 1150);

  // A commit reported after the read started: the read is not used.
  const auto before = balances.mark();
  customer_balances::settle(acct, 0, 100);
  balances.committed(std::vector<store::ledger_row>{row_of(3, 100)});
  balances.refresh(acct, 1150, before);  // read before the commit landed
  EXPECT_EQ(customer_balances::available(acct), 1050);
  balances.refresh(acct, 1050, balances.mark());
  EXPECT_EQ(customer_balances::available(acct), 1050);
}

TEST(CustomerBalances, ACreditMadeHereCountsOnceWhicheverSideOfARefreshItLands) {
  customer_balances balances;
  auto& acct = balances.find_or_add(5);
  balances.refresh(acct, 100, balances.mark());
  // A read that started before the credit and saw it, or not: skipped.
  const auto before = balances.mark();
  balances.credited(acct, 50);  // the database now says 150
  EXPECT_EQ(customer_balances::available(acct), 150);
  balances.refresh(acct, 100, before);
  EXPECT_EQ(customer_balances::available(acct), 150);
  balances.refresh(acct, 150, before);
  EXPECT_EQ(customer_balances::available(acct), 150);
  // A read after it: not added twice.
  balances.refresh(acct, 150, balances.mark());
  EXPECT_EQ(customer_balances::available(acct), 150);
  balances.credited(acct, -200);
  EXPECT_EQ(customer_balances::available(acct), -50);
  balances.refresh(acct, -50, balances.mark());
  EXPECT_EQ(customer_balances::available(acct), -50);
}

TEST(CustomerBalances, RowsOfOtherCustomersAndFreeRowsChangeNothing) {
  customer_balances balances;
  auto& acct = balances.find_or_add(3);
  balances.refresh(acct, 1000, balances.mark());
  auto anonymous = row_of(3, 10);
  anonymous.customer_id.reset();
  balances.committed(std::vector<store::ledger_row>{row_of(4, 10), row_of(3, 0), anonymous});
  balances.refresh(acct, 1000, balances.mark());
  EXPECT_EQ(customer_balances::available(acct), 1000);
}

}  // namespace
