#pragma once
// Upstream HTTP/1.1 client: a keep-alive connection pool per shard and
// provider endpoint, over plain TCP or TLS (certificate and host-name
// verification, SNI).
//
// A pool belongs to one shard's io_context and is used only from that
// thread, so it needs no locks. An exchange sends one request and then
// reads the response head and the body incrementally, so SSE can be
// forwarded chunk by chunk as it arrives. Every wait is bounded: connect by
// connect_timeout, the response head and each body read by read_timeout
// (for streams this is the idle gap between chunks), and everything by the
// caller's deadline.
//
// Cancellation: if the awaiting coroutine is cancelled (the client went away),
// the pending I/O is aborted and the connection is closed, not pooled.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/container/small_vector.hpp>

#include "core/base_url.hpp"
#include "http/header_ref.hpp"

namespace gatewayz::http {

namespace asio = boost::asio;
namespace beast = boost::beast;

// Where a pool connects: a provider's parsed base URL (core/base_url.hpp).
using upstream_endpoint = base_url;

// gatewayz::parse_base_url into `out`. Returns false and sets `error` (the
// same sentences config validation reports) otherwise.
bool parse_base_url(std::string_view url, upstream_endpoint& out, std::string& error);

struct client_settings {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds read_timeout{120'000};  // first byte, and each gap between body reads
  std::chrono::milliseconds write_timeout{30'000};
  std::size_t max_idle_connections = 64;
  bool verify_tls = true;
  std::string ca_file;  // additional trusted CA bundle (PEM)
};

// Why an exchange failed. connect and timeout failures are the provider's
// fault (they count against its health); cancelled is the client's.
enum class upstream_failure : std::uint8_t {
  none,
  connect,    // DNS, TCP connect or TLS handshake failed
  timeout,    // no answer (or no next chunk) within the limit
  closed,     // the upstream closed or reset the connection mid-exchange
  protocol,   // the upstream sent something that is not valid HTTP
  too_large,  // the body exceeded the caller's limit
  cancelled,  // our own caller went away
};

std::string_view to_string(upstream_failure failure);

struct outgoing_request {
  beast::http::verb method = beast::http::verb::post;
  std::string_view target;  // path (and query) after the endpoint's base_path; must outlive the send
  // Views, kept inline: a proxied request's headers (the provider's
  // constant ones and the request id) cost no allocation.
  boost::container::small_vector<header_ref, 8> headers;
  std::string_view body;  // must outlive the send
};

class upstream_pool;

// One request/response exchange. Obtain with upstream_pool::send(); read the
// body until read_some() returns false. Destroying it returns the connection
// to the pool when the response was read completely and allows reuse. A
// handle: its state comes from the pool and goes back to it for the next
// exchange, so an exchange allocates nothing once the pool is warm.
class upstream_exchange {
 public:
  upstream_exchange();  // empty: only assignment and destruction are valid
  ~upstream_exchange();
  upstream_exchange(upstream_exchange&& other) noexcept;
  upstream_exchange& operator=(upstream_exchange&& other) noexcept;
  upstream_exchange(const upstream_exchange&) = delete;
  upstream_exchange& operator=(const upstream_exchange&) = delete;

  upstream_failure failure() const;           // none while healthy
  const std::string& failure_detail() const;  // for logs; contains no secrets
  unsigned status() const;                    // valid when send() succeeded
  // The response's Retry-After value as sent (at most 64 bytes); empty when
  // it had none. Valid while the exchange lives, when send() succeeded.
  std::string_view retry_after() const;

  // Appends the next body bytes to `out`. Returns false once the body is
  // complete (failure() == none) or on error (failure() says why).
  asio::awaitable<bool> read_some(std::string& out);

  // Reads the remaining body into `out`, failing with too_large past `limit` bytes.
  asio::awaitable<bool> read_all(std::string& out, std::size_t limit);

  // Takes what has already arrived of the body into `out`, without waiting
  // (and without a coroutine: a small body usually comes with the head).
  // True when that settled the body: complete, or failed (see failure(); past
  // `limit` bytes it fails with too_large); false when read_all() must read
  // the rest.
  bool read_buffered(std::string& out, std::size_t limit);

  bool body_complete() const;

  // Brings the exchange's deadline forward to `until` (never later): reads
  // started afterwards fail with a timeout once it passes (one already
  // waiting keeps the deadline it started with). E.g. to drain the end of a
  // body briefly without a timer of its own.
  void shorten_deadline(std::chrono::steady_clock::time_point until);

 private:
  friend class upstream_pool;
  struct state;
  void end() noexcept;  // gives the connection (when reusable) and the state back to the pool
  enum class body_step { progress, need_input, finished };
  // Parses buffered body bytes into `out`: some arrived (progress), none
  // without reading (need_input), or the body is complete or failed.
  body_step parse_buffered(std::string& out);
  explicit upstream_exchange(std::unique_ptr<state> s);
  std::unique_ptr<state> state_;
};

class upstream_pool : public std::enable_shared_from_this<upstream_pool> {
 public:
  upstream_pool(asio::io_context& io, upstream_endpoint endpoint, client_settings settings);
  ~upstream_pool();
  upstream_pool(const upstream_pool&) = delete;
  upstream_pool& operator=(const upstream_pool&) = delete;

  // Sends `request` and waits for the response head, within `deadline`.
  // Always returns an exchange; check failure(). A pooled connection that
  // turns out to be stale (closed before any response byte) is retried once
  // on a fresh connection.
  asio::awaitable<upstream_exchange> send(const outgoing_request& request,
                                          std::chrono::steady_clock::time_point deadline);

  const upstream_endpoint& endpoint() const { return endpoint_; }
  std::size_t idle_connections() const;

 private:
  friend class upstream_exchange;
  struct connection;
  asio::awaitable<std::unique_ptr<connection>> connect(std::chrono::steady_clock::time_point deadline,
                                                       upstream_failure& failure, std::string& detail);
  void release(std::unique_ptr<connection> c);
  std::unique_ptr<upstream_exchange::state> take_state();
  void recycle(std::unique_ptr<upstream_exchange::state> s);

  asio::io_context& io_;
  upstream_endpoint endpoint_;
  client_settings settings_;
  struct tls_state;
  std::unique_ptr<tls_state> tls_;
  std::vector<std::unique_ptr<connection>> idle_;
  std::vector<std::unique_ptr<upstream_exchange::state>> spare_states_;  // see upstream_exchange
};

}  // namespace gatewayz::http
