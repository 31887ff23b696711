#include "core/threads.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include <gtest/gtest.h>

namespace gatewayz {
namespace {

struct priority {
  int policy = -1;
  int nice = 0;
};

priority current() {
  priority p;
  sched_param param{};
  pthread_getschedparam(pthread_self(), &p.policy, &param);
  errno = 0;
  p.nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  return p;
}

TEST(ThreadPriority, LowersOnlyTheCallingThread) {
  const priority before = current();
  priority lowered;
  priority again;
  std::thread background([&] {
    lower_thread_priority();
    lowered = current();
    lower_thread_priority();  // idempotent: no second +5
    again = current();
  });
  background.join();
  EXPECT_EQ(lowered.policy, SCHED_BATCH);
  EXPECT_EQ(lowered.nice, before.nice + 5 > 19 ? 19 : before.nice + 5);
  EXPECT_EQ(again.nice, lowered.nice);
  const priority after = current();
  EXPECT_EQ(after.policy, before.policy);
  EXPECT_EQ(after.nice, before.nice);
}

TEST(ThreadPriority, ZeroIncrementOnlyChangesThePolicy) {
  const priority before = current();
  priority lowered;
  std::thread background([&] {
    lower_thread_priority(0);
    lowered = current();
  });
  background.join();
  EXPECT_EQ(lowered.policy, SCHED_BATCH);
  EXPECT_EQ(lowered.nice, before.nice);
}

TEST(ThreadName, IsSetAndTruncatedToWhatLinuxKeeps) {
  char name[32] = {};
  std::thread named([&] {
    name_this_thread("gw-a-rather-long-thread-name");
    pthread_getname_np(pthread_self(), name, sizeof(name));
  });
  named.join();
  EXPECT_STREQ(name, "gw-a-rather-lon");
}

}  // namespace
}  // namespace gatewayz
