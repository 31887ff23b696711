#include "store/store_common.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "store/money.hpp"

namespace gatewayz::store::detail {
namespace {

std::vector<ledger_row> rows_with_ids(const std::vector<std::string>& ids) {
  std::vector<ledger_row> rows(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    rows[i].request_id = ids[i];
    rows[i].attempts = static_cast<std::uint32_t>(i);  // the original position
  }
  return rows;
}

std::string id(int n) {
  std::string text = std::to_string(n);
  return std::string(8 - text.size(), '0') + text;
}

void expect_stably_sorted(const std::vector<const ledger_row*>& order, std::size_t count) {
  ASSERT_EQ(order.size(), count);
  for (std::size_t i = 1; i < order.size(); ++i) {
    ASSERT_LE(order[i - 1]->request_id, order[i]->request_id) << i;
    if (order[i - 1]->request_id == order[i]->request_id) {
      ASSERT_LT(order[i - 1]->attempts, order[i]->attempts) << "equal ids swapped at " << i;
    }
  }
}

TEST(RowsInKeyOrder, SortsRowsThatFinishedSlightlyOutOfOrder) {
  // As a shard hands them over: ids in creation order, with requests that
  // took longer landing a few places late.
  std::vector<std::string> ids;
  for (int i = 0; i < 5000; ++i) ids.push_back(id(i));
  std::mt19937 rng(7);
  for (int i = 0; i + 40 < 5000; i += 13) std::swap(ids[i], ids[i + rng() % 40]);
  const auto rows = rows_with_ids(ids);
  expect_stably_sorted(rows_in_key_order(rows), rows.size());
}

TEST(RowsInKeyOrder, SortsRowsInNoOrderAndKeepsTheFirstOfEqualIdsFirst) {
  // Beyond the insertion sort's budget: the merge sort finishes the job.
  std::vector<std::string> ids;
  for (int i = 0; i < 3000; ++i) ids.push_back(id(3000 - i));
  for (int i = 0; i < 3000; i += 7) ids.push_back(id(i));  // duplicates, later in the batch
  std::shuffle(ids.begin(), ids.end(), std::mt19937(11));
  const auto rows = rows_with_ids(ids);
  expect_stably_sorted(rows_in_key_order(rows), rows.size());
}

TEST(RowsInKeyOrder, HandlesEmptyAndSingleBatches) {
  EXPECT_TRUE(rows_in_key_order({}).empty());
  const auto one = rows_with_ids({"x"});
  ASSERT_EQ(rows_in_key_order(one).size(), 1u);
  EXPECT_EQ(rows_in_key_order(one)[0], &one[0]);
}

TEST(Money, AmountsOutsideTheBalanceRangeAreRejectedByName) {
  std::string why;
  EXPECT_EQ(parse_usd("1000000000", true, why), max_balance_nanos);
  EXPECT_EQ(parse_usd("-1000000000", true, why), -max_balance_nanos);
  EXPECT_EQ(parse_usd("0.000000001", false, why), 1);
  for (const char* text : {"1000000000.000000001", "-9223372036", "9223372036.854775807", "-1000000001"}) {
    why.clear();
    EXPECT_FALSE(parse_usd(text, true, why)) << text;
    EXPECT_NE(why.find("outside the allowed range of -1000000000 to 1000000000 USD"), std::string::npos) << why;
  }
  why.clear();
  EXPECT_FALSE(parse_usd("99999999999999999999", true, why));
  EXPECT_FALSE(why.empty());
  EXPECT_THROW(check_credit_amount(max_balance_nanos + 1), balance_out_of_range);
  EXPECT_NO_THROW(check_credit_amount(-max_balance_nanos));
}

}  // namespace
}  // namespace gatewayz::store::detail
