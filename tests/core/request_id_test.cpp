#include "core/request_id.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace gatewayz {
namespace {

TEST(request_id, generated_ids_have_the_documented_shape_and_do_not_repeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto id = make_request_id();
    ASSERT_EQ(id.size(), 4u + 28u) << id;
    ASSERT_EQ(id.substr(0, 4), "req_");
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef", 4), std::string::npos) << id;
    ASSERT_TRUE(seen.insert(id).second) << "duplicate " << id;
  }
}

TEST(request_id, generated_ids_sort_by_creation_time) {
  const auto first = make_request_id();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const auto second = make_request_id();
  EXPECT_LT(first.substr(0, 16), second.substr(0, 16));  // "req_" + 12 hex digits of milliseconds
  EXPECT_LT(first, second);
}

TEST(request_id, ids_made_by_one_thread_within_a_millisecond_sort_too) {
  // A shard's ledger rows then reach the store nearly in key order, which
  // its sort is quick on (store::detail::rows_in_key_order).
  std::vector<std::string> ids;
  for (int i = 0; i < 5000; ++i) ids.push_back(make_request_id());
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
}

TEST(request_id, threads_draw_different_sequences) {
  std::string other;
  std::thread([&] { other = make_request_id(); }).join();
  const auto mine = make_request_id();
  EXPECT_NE(other.substr(20), mine.substr(20));
}

TEST(request_id, a_usable_inbound_id_is_kept) {
  EXPECT_EQ(request_id_for("client-123"), "client-123");
  EXPECT_EQ(request_id_for(std::string(128, 'a')), std::string(128, 'a'));
}

TEST(request_id, an_unusable_inbound_id_is_replaced) {
  for (std::string_view bad : {std::string_view(""), std::string_view("has space"), std::string_view("tab\there"),
                               std::string_view("nl\nx"), std::string_view("\x7f")}) {
    EXPECT_EQ(request_id_for(bad).substr(0, 4), "req_") << bad;
  }
  EXPECT_EQ(request_id_for(std::string(129, 'a')).substr(0, 4), "req_");
}

}  // namespace
}  // namespace gatewayz
