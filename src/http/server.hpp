#pragma once
// A thread-per-core HTTP/1.1 server on Boost.Beast with C++20 coroutines.
//
// Each shard is one thread running its own io_context(1) with its own
// SO_REUSEPORT acceptor bound to the same address; the kernel spreads
// connections across shards and a connection never changes shard, so handler
// state per shard needs no locks. Handlers are coroutines that answer through
// a response_writer, either with one complete response or as a chunked stream
// (SSE) written piece by piece.
//
// Limits are settings: header and body read timeouts, an idle keep-alive
// timeout, a body size limit (413) and connection limits, so a slow or
// hostile client cannot tie the server up.
//
// Connection limits. At most max_connections_per_ip connections per client
// address and max_connections in all. A new connection over the total
// limit first closes the connection that has waited longest for a request
// (idle keep-alive connections and ones that never sent a request: nothing
// in flight is lost), on its own shard or else on another one; only when no
// shard has an idle connection is it refused. A connection over its
// address's limit is refused without closing anybody's. A refused plain-HTTP
// connection that sends a request within a second gets 503
// (`too_many_connections`, Retry-After: 1) and a lingering close; over TLS,
// or past 64 refusals in progress per shard, it is closed without an answer.
// Refusals are not seen by the exchange observer. Eviction from another
// shard happens on that shard's thread, so the total may briefly exceed the
// limit by the evictions under way.
//
// Thread safety: listen() and run() are called once from the owning thread;
// shutdown() may be called from any thread.

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/header_ref.hpp"
#include "http/request.hpp"

namespace gatewayz::http {

namespace asio = boost::asio;
namespace beast = boost::beast;

using response = beast::http::response<beast::http::string_body>;
using response_head = beast::http::response_header<>;

struct tls_files {
  std::string certificate_chain_file;  // PEM
  std::string private_key_file;        // PEM
};

// Sees every request the server reads, including those it answers itself
// (413, 431, 400 for malformed HTTP) before any handler runs: the place for
// per-request HTTP metrics. Both calls happen on the shard's own thread.
class exchange_observer {
 public:
  virtual ~exchange_observer() = default;
  // The request's headers are complete (or unreadable: then `method` is
  // verb::unknown and `target` empty). Returns a value handed back to finished(),
  // typically the route the target matched.
  virtual std::uint32_t started(std::size_t shard, beast::http::verb method, std::string_view target) = 0;
  // The response is complete, failed or abandoned; status 0 when none was
  // sent. `trace_id`: the request's sampled trace (request_context), or empty.
  virtual void finished(std::size_t shard, std::uint32_t started_token, beast::http::verb method, unsigned status,
                        std::size_t request_bytes, std::size_t response_bytes,
                        std::chrono::steady_clock::duration elapsed, std::string_view trace_id) = 0;
};

struct server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = the OS picks; see server::port()
  unsigned threads = 1;
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_connections = 10000;
  // Per client address (IPv4-mapped IPv6 counts as IPv4). 0 = a quarter of
  // max_connections (at least 1); max_connections or more = no limit of its own.
  std::size_t max_connections_per_ip = 0;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds idle_timeout{75'000};
  std::chrono::milliseconds write_timeout{60'000};  // one write to the client
  std::optional<tls_files> tls;                     // serve HTTPS instead of HTTP
  std::shared_ptr<exchange_observer> observer;      // optional
  // Called by run() once every shard has stopped, while their io_contexts
  // still exist: the place to wait for work on other threads that resumes on
  // a shard (optional).
  std::function<void()> after_run;
};

// The response side of one request. Exactly one of send() or
// begin_stream() ... end_stream() is used per request. Every awaitable
// returns false when the client is gone (the handler should then stop).
class response_writer {
 public:
  virtual ~response_writer() = default;

  // Sends a complete response; Content-Length is set from the body.
  virtual asio::awaitable<bool> send(response message) = 0;
  // The same for a response given as views: the status, `fields` written in
  // order, and the body. No fields container is built (an allocation per
  // field), which is why the proxy's own answers use it. Fields containing
  // CR, LF or NUL, and fields the connection manages (Content-Length,
  // Transfer-Encoding, Connection), are left out.
  virtual asio::awaitable<bool> send(unsigned status, std::span<const header_ref> fields, std::string_view body) = 0;

  // Sends the head of a chunked response (Transfer-Encoding: chunked is set).
  virtual asio::awaitable<bool> begin_stream(response_head head) = 0;
  // Sends one chunk (empty data is ignored).
  virtual asio::awaitable<bool> write_chunk(std::string_view data) = 0;
  // Sends the terminating chunk.
  virtual asio::awaitable<bool> end_stream() = 0;

  // Aborts the connection with a TCP reset (no further bytes). Used to
  // simulate broken upstreams in the mock provider.
  virtual void reset() = 0;

  // True once any byte of the response has been committed to the client;
  // from then on a failover to another provider is no longer possible.
  virtual bool started() const = 0;
};

struct request_context {
  request& req;
  response_writer& writer;
  std::size_t shard;  // index of the shard (thread) handling the request
  asio::ip::tcp::endpoint remote;
  std::chrono::steady_clock::time_point received_at;  // when the headers were complete
  // What the exchange observer's started() returned for this request (e.g.
  // the route it matched, so a router need not match the path again);
  // nullopt when the server has no observer.
  std::optional<std::uint32_t> observed;
  // The request's trace id (hex) when the handler traced it and the trace is
  // sampled: the exchange observer's exemplar (exchange_observer::finished).
  std::array<char, 32> trace_id{};
  std::uint8_t trace_id_size = 0;

  void set_trace_id(std::string_view id) {
    trace_id_size = static_cast<std::uint8_t>(std::min(id.size(), trace_id.size()));
    std::copy_n(id.data(), trace_id_size, trace_id.data());
  }
  std::string_view sampled_trace_id() const { return {trace_id.data(), trace_id_size}; }
};

// A request handler. If the client disconnects while the handler runs, the
// handler's coroutine is cancelled (terminal cancellation), which in turn
// cancels any upstream I/O it awaits.
using request_handler = std::function<asio::awaitable<void>(request_context&)>;

// Called once per shard before serving starts, so each shard's handler can own
// per-shard state (connection pools, metric shards) bound to that io_context.
using handler_factory = std::function<request_handler(std::size_t shard, asio::io_context& io)>;

class server {
 public:
  server(server_options options, handler_factory factory);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds all shard acceptors. Throws std::system_error on failure.
  void listen();

  // The bound port (valid after listen()).
  std::uint16_t port() const;

  // Serves on `threads` shards (the calling thread runs shard 0) until
  // shutdown() has drained all connections. Returns then.
  void run();

  // Graceful shutdown: stop accepting, close idle keep-alive connections, let
  // in-flight requests and streams finish, and after `grace` close whatever is
  // left. Safe to call from any thread, more than once.
  void shutdown(std::chrono::milliseconds grace);

  // Connections open right now, across shards.
  std::size_t open_connections() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace gatewayz::http
