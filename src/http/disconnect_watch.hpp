#pragma once
// Noticing a client that goes away while its request is being handled
// (private to the http library; the server is its only user).
//
// The way nginx does it: wait for the socket to become readable and peek.
// Zero bytes (FIN) or an error (RST) means the client is gone, and the
// connection's cancellation signal cancels whatever the handler is awaiting
// (its upstream call). Bytes mean a pipelined next request: the client is
// still there.
//
// One signal per connection, bound when the connection's coroutine is
// spawned; per request this costs one queued wait, not a coroutine.
//
// Queuing that wait re-registers the socket with epoll (asio's async_wait is
// never speculative): a syscall, and a noticeable share of a short proxied
// request that gains nothing from the watch. So a request only asks for it
// (`wanted`), and the shard's sweep arms the watch of requests still running
// after watch_delay. Arming late loses nothing: re-registering a socket whose
// FIN already arrived reports it readable at once.
//
// Ownership: the connection's coroutine and its completion handler share a
// watch; a queued wait holds it too. Threads: the connection's shard thread
// only. Failure: none reported; a wait that errors just ends the watch.

#include <chrono>
#include <cstdint>
#include <memory>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace gatewayz::http::detail {

// How long a request runs before its client's disconnects are watched for,
// and so also how often a shard sweeps for such requests while any are in
// flight.
inline constexpr std::chrono::milliseconds watch_delay{50};

struct disconnect_watch {
  boost::asio::cancellation_signal signal;
  std::uint64_t generation = 0;  // ties a queued wait to the request that queued it
  bool armed = false;
  bool wanted = false;  // a request is being handled; arm once it has run watch_delay
  std::chrono::steady_clock::time_point wanted_since;
};

// Queues the watch for the request being handled.
void arm_watch(boost::asio::ip::tcp::socket& socket, const std::shared_ptr<disconnect_watch>& watch);

// The request is over: a queued wait is cancelled (it is the only operation
// left on the socket); a watch never armed costs nothing. Inline: every
// request calls it.
inline void end_watch(boost::asio::ip::tcp::socket& socket, disconnect_watch& watch) {
  watch.wanted = false;
  if (!watch.armed) return;
  watch.armed = false;
  ++watch.generation;
  boost::system::error_code ignored;
  socket.cancel(ignored);
}

}  // namespace gatewayz::http::detail
