#include "core/threads.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

namespace gatewayz {

void name_this_thread(std::string_view name) noexcept {
  char buffer[16] = {};
  const std::size_t n = name.size() < sizeof(buffer) - 1 ? name.size() : sizeof(buffer) - 1;
  for (std::size_t i = 0; i < n; ++i) buffer[i] = name[i];
  (void)pthread_setname_np(pthread_self(), buffer);
}

void lower_thread_priority() noexcept {
  thread_local bool lowered = false;
  if (lowered) return;
  lowered = true;
  sched_param param{};
  param.sched_priority = 0;
  (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  // On Linux a nice value belongs to the thread (its tid), not the process.
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 5);
}

}  // namespace gatewayz
