#pragma once
// Running blocking or long work off the server threads: the work runs on a
// thread pool (at lowered priority, see core/threads.hpp) and the
// awaiting coroutine resumes on its own shard's executor, so one slow database
// query or a large /metrics render never stalls the other requests of a
// server thread.

#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/threads.hpp"

namespace gatewayz::gateway {

// Exceptions thrown by `work` propagate to the awaiting coroutine.
// (Arguments of the co_await'ed call are named, never temporaries: GCC 12
// destroys such temporaries twice.)
template <class F>
boost::asio::awaitable<std::invoke_result_t<F>> on_pool(boost::asio::thread_pool& pool, F work) {
  using result = std::invoke_result_t<F>;
  auto task = [work = std::move(work)]() -> boost::asio::awaitable<result> {
    thread_local const bool prepared = [] {
      name_this_thread("gw-background");
      lower_thread_priority();
      return true;
    }();
    (void)prepared;
    co_return work();
  };
  auto executor = pool.get_executor();
  co_return co_await boost::asio::co_spawn(executor, std::move(task), boost::asio::use_awaitable);
}

}  // namespace gatewayz::gateway
