#pragma once
// The HTTP endpoints backed by the store: GET /models/stats and
// the admin API for customers, credits and API keys.
//
// Every store call is blocking I/O, so it runs on a small background thread
// pool and the shard's coroutine awaits the result: a slow database never
// stalls the other requests of a server thread.
//
// Each handler returns its response; the router has checked the method and,
// for the admin API, the admin key. Admin API (bodies are JSON and amounts
// are decimal USD strings or numbers, parsed exactly into nano-USD):
//   GET  /admin/customers                      -> {"customers":[{id,name,balance_usd,created_at}]}
//   POST /admin/customers  {"name","credits_usd"?} -> 201 the customer
//   POST /admin/customers/{name}/credit {"amount_usd"} -> the customer with its new balance
//   GET  /admin/keys                           -> {"keys":[{id,customer,prefix,revoked,created_at}]}
//   POST /admin/keys {"customer","credits_usd"?} -> 201 {"id","customer","prefix","key"}; the key is
//        shown this once (the customer is created when missing)
//   POST /admin/keys/{id}/revoke               -> {"id","revoked":true}

#include <chrono>
#include <optional>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "auth/balances.hpp"
#include "http/server.hpp"
#include "store/models_stats.hpp"
#include "store/store.hpp"

namespace gatewayz::gateway {

class store_api {
 public:
  // stats_cache_ttl 0: every /models/stats request queries the store.
  // `balances` (optional, with auth.mode keys) learns credits at once, so a
  // customer topped up here is not refused until the key cache expires.
  store_api(store::store& store, std::chrono::seconds stats_cache_ttl, auth::customer_balances* balances = nullptr);
  ~store_api();
  store_api(const store_api&) = delete;
  store_api& operator=(const store_api&) = delete;

  // GET /models/stats[?time_window=1h|24h|7d].
  boost::asio::awaitable<http::response> models_stats(const http::request& req);

  boost::asio::awaitable<http::response> list_customers(const http::request& req);
  boost::asio::awaitable<http::response> create_customer(const http::request& req);
  boost::asio::awaitable<http::response> credit_customer(const http::request& req, std::string_view name);
  boost::asio::awaitable<http::response> list_keys(const http::request& req);
  boost::asio::awaitable<http::response> create_key(const http::request& req);
  boost::asio::awaitable<http::response> revoke_key(const http::request& req, std::string_view id);

  // Waits for queued store work (before the server's io_contexts go away).
  void drain() { pool_.join(); }

 private:
  // Runs `work`, answering 503 when the database is unreachable.
  template <class Work>
  boost::asio::awaitable<http::response> guarded(const http::request& req, Work work);

  // A credit just committed: the customer's balance on this instance takes it.
  void credited(std::int64_t customer_id, store::nanos_usd amount) const;

  store::store& store_;
  auth::customer_balances* balances_;
  std::optional<store::models_stats_cache> stats_cache_;  // none when the TTL is 0
  boost::asio::thread_pool pool_{2};
};

}  // namespace gatewayz::gateway
