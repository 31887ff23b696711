#pragma once
// An asynchronous Redis client on the gateway's own event loops.
//
// One client per io_context (one per shard, one per background thread that
// runs its own io_context), used only from that io_context's thread, so it
// takes no locks. It keeps `pool_size` connections to one server; commands
// are written to the connection with the fewest in flight, many per write
// (pipelining), and their replies come back in order. RESP is parsed by
// hiredis's reader (hiredis/read.h); all I/O is Asio's.
//
// Failure: nothing throws for I/O problems. Every command completes within
// options.timeout (plus one sweep of the deadline timer, at most 10 ms)
// with a result: ok, server_error (a -ERR reply), timeout (no reply in time:
// the connection is dropped, since a late reply would answer the wrong
// command) or unavailable (no connection: connecting failed, backing off,
// closed). A dropped connection reconnects by itself, after reconnect_min
// doubling to reconnect_max while attempts keep failing; while every
// connection is backing off, commands fail at once as unavailable rather
// than wait. After connecting the client sends AUTH (when the URL has a
// password) and SELECT (database != 0) before anything else; an AUTH
// failure counts as a failed connect.
//
// Metrics (when `metrics` is not null), on shard `metric_shard`:
//   gatewayz_redis_operations_total{operation,status}  status success|error
//   gatewayz_redis_operation_duration_seconds{operation}
//   redis_operation_duration_seconds{operation}
//   redis_{get,set,del,hget,hset}_operations_total{status}
//   gatewayz_redis_pool_connections{state}, redis_pool_connections_current{state}
//       active = connected with a command in flight, idle = connected without
//   redis_pool_connections_max  (pool_size, summed over the process's clients)
// operation is args[0] in lower case; a -ERR reply is an error, and so are
// timeouts and unavailable. The client's own AUTH/SELECT are not counted.
//
// Lifetime: the client must be destroyed (or close()d) on its io_context's
// thread, before the io_context is destroyed; its coroutines keep their
// state alive until the io_context has run or destroyed them.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "redis/url.hpp"

namespace gatewayz::telemetry {
struct catalog;
}

namespace gatewayz::redis {

struct client_options {
  endpoint server;
  std::chrono::milliseconds timeout{100};  // per command, connect included
  std::size_t pool_size = 2;               // connections per client (per thread)
  std::chrono::milliseconds reconnect_min{100}, reconnect_max{5000};
};

// A RESP value. Strings are binary-safe.
struct reply {
  enum class kind : std::uint8_t { nil, string, integer, array, status, error };
  kind type = kind::nil;
  std::string text;  // string, status and error
  std::int64_t integer = 0;
  std::vector<reply> elements;  // array
};

enum class outcome : std::uint8_t {
  ok,
  server_error,  // a -ERR reply; value.text has it
  timeout,       // no reply within the timeout
  unavailable,   // not connected / backing off / closed
};
std::string_view to_string(outcome o);  // "ok", "server_error", "timeout", "unavailable"

struct result {
  outcome status = outcome::unavailable;
  reply value;
  bool ok() const { return status == outcome::ok; }
};

class client {
 public:
  client(boost::asio::io_context& io, client_options options, telemetry::catalog* metrics, std::size_t metric_shard);
  ~client();  // close()s
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // args[0] is the command name ("GET", "SET", ...).
  // (Pass a named array: GCC 12 mishandles temporaries in a co_await'ed call.)
  boost::asio::awaitable<result> command(std::span<const std::string_view> args);
  // Sends all in one write, on one connection, and returns the replies in
  // order (one result per command).
  boost::asio::awaitable<std::vector<result>> pipeline(std::span<const std::vector<std::string_view>> commands);

  bool connected() const;  // at least one connection is up
  // Cancels pending commands (they complete as unavailable) and stops
  // reconnecting; later commands fail at once. Idempotent.
  void close();

  const client_options& options() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace gatewayz::redis
