#include "core/threads.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace gatewayz {

void name_this_thread(std::string_view name) noexcept {
  char buffer[16] = {};
  const std::size_t n = name.size() < sizeof(buffer) - 1 ? name.size() : sizeof(buffer) - 1;
  for (std::size_t i = 0; i < n; ++i) buffer[i] = name[i];
  (void)pthread_setname_np(pthread_self(), buffer);
}

void lower_thread_priority(int nice_increment) noexcept {
  thread_local bool lowered = false;
  if (lowered) return;
  lowered = true;
  sched_param param{};
  param.sched_priority = 0;
  (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  if (nice_increment <= 0) return;
  // On Linux a nice value belongs to the thread (its tid), not the process,
  // and setpriority takes an absolute value: start from the current one, so
  // a gateway started under `nice` keeps its threads in the intended order.
  const auto tid = static_cast<id_t>(gettid());
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return;
  (void)setpriority(PRIO_PROCESS, tid, std::min(current + nice_increment, 19));
}

}  // namespace gatewayz
