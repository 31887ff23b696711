#include "core/thread_priority.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

namespace gatewayz {

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
