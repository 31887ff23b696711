#include "http/server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <list>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "core/api_error.hpp"
#include "core/request_id.hpp"
#include "core/threads.hpp"
#include "http/connection_writer.hpp"
#include "http/deadlines.hpp"
#include "http/disconnect_watch.hpp"
#include "http/stream_io.hpp"

namespace gatewayz::http {

namespace {

namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// Connections are plain sockets or TLS over them. Neither is wrapped in
// Beast's tcp_stream: timeouts come from the shard's deadline sweeper (see
// http/deadlines.hpp) instead of a timer per operation.
using detail::is_plain;
using detail::lowest_socket;
using detail::plain_stream;
using detail::read_message;
using detail::tls_stream;
using detail::use_tuple;
using detail::write_all;

using detail::arm_watch;
using detail::connection_writer;
using detail::disconnect_watch;
using detail::end_watch;
using detail::observed_exchange;
using detail::watch_delay;

// Per-connection bookkeeping a shard keeps so that shutdown can close idle
// keep-alive connections and, after the grace period, everything else, and
// so that a full server can reclaim the longest-idle one.
struct connection_entry {
  tcp::socket* socket = nullptr;
  std::shared_ptr<disconnect_watch> watch;
  bool in_request = false;
  bool evicted = false;  // closed to make room for a new connection
};

// The key of the per-address limit: IPv4-mapped IPv6 addresses count as
// their IPv4 address (a dual-stack listener sees IPv4 clients that way).
asio::ip::address client_address(const tcp::endpoint& remote) {
  const auto address = remote.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address;
}

// Refusals answered with a 503 at once per shard; past this, a refused
// connection is closed without an answer (each costs a socket for up to
// refusal_time).
constexpr unsigned max_refusals_in_flight = 64;
constexpr auto refusal_time = std::chrono::seconds(1);

}  // namespace

struct server::impl {
  // Connections of one shard. Shared with each connection's coroutine so that
  // a coroutine frame destroyed during io_context teardown (after a forced
  // stop) can still unregister itself safely.
  struct registry {
    // Touched only on the shard's thread. Every connection is in one of
    // two lists: `waiting` for a request (idle, or its head not complete),
    // ordered by when each began to wait, longest first; or `handling` one.
    // Split so that what runs per request in flight (the disconnect-watch
    // sweep) never walks the idle ones: with 10,000 idle keep-alive
    // connections, walking them every watch_delay stalled the shard ~1 ms.
    std::list<connection_entry> waiting;
    std::list<connection_entry> handling;
    bool empty() const { return waiting.empty() && handling.empty(); }
    // Connections without a request in flight that are not evicted yet:
    // written by the shard's thread only, read by the others.
    std::atomic<std::size_t> idle{0};
    bool io_alive = true;
    void add_idle(std::ptrdiff_t delta) {
      idle.store(idle.load(std::memory_order_relaxed) + static_cast<std::size_t>(delta), std::memory_order_relaxed);
    }
  };

  struct shard {
    // Member order is destruction order in reverse: the io_context goes last,
    // so handler state (connection pools) releases its sockets while the
    // io_context still exists, and coroutine frames destroyed by the
    // io_context's own teardown only touch `reg` (shared) and `self`.
    asio::io_context io{1};
    request_handler handler;
    std::optional<tcp::acceptor> acceptor;
    std::optional<asio::steady_timer> grace_timer;
    std::optional<asio::steady_timer> watch_sweep;  // see watch_delay
    bool sweeping = false;
    std::shared_ptr<registry> reg = std::make_shared<registry>();
    std::size_t index = 0;
    unsigned refusing = 0;  // refuse_connection() coroutines running
    ~shard() { reg->io_alive = false; }
  };

  server_options options;
  handler_factory factory;
  std::optional<ssl::context> tls_context;  // outlives every TLS stream (shards go first)
  std::atomic<std::size_t> open_connections{0};
  std::size_t per_ip_limit = 0;                               // options.max_connections_per_ip, resolved
  std::mutex per_ip_mu;                                       // taken once per accepted and per closed connection
  std::unordered_map<asio::ip::address, std::size_t> per_ip;  // open connections by client address
  std::atomic<bool> draining{false};
  std::uint16_t bound_port = 0;
  std::once_flag shutdown_once;
  std::vector<std::unique_ptr<shard>> shards;  // declared last: destroyed first

  class registration;  // a connection's place in its shard's registry

  asio::awaitable<void> accept_loop(shard& s);
  bool take_address_slot(const asio::ip::address& address);
  void release_address_slot(const asio::ip::address& address);
  bool reclaim_idle(shard& s);
  static bool evict_longest_idle(shard& s);
  asio::awaitable<void> refuse_connection(shard& s, tcp::socket socket);
  template <class Stream>
  asio::awaitable<void> serve_connection(shard& s, Stream stream, tcp::endpoint remote,
                                         std::shared_ptr<disconnect_watch> watch);
  template <class Stream>
  asio::awaitable<bool> refuse(Stream& stream, io_deadline& deadline, std::string& head_buffer, unsigned version,
                               const api_error& error, const request& req, observed_exchange& observed);
  asio::awaitable<void> linger_close(registration& registered, tcp::socket& socket, io_deadline& deadline);
  void maybe_stop(shard& s);
  void begin_drain(shard& s, std::chrono::milliseconds grace);
  void want_watch(shard& s, disconnect_watch& watch, std::chrono::steady_clock::time_point since);
  void schedule_sweep(shard& s);
  void sweep_watches(shard& s);
};

namespace {

// A parse error caused by the bytes the client sent (answered with 400), as
// opposed to the connection ending or timing out (closed silently).
bool is_malformed_http(const boost::system::error_code& ec) {
  static const auto& http_category = bhttp::make_error_code(bhttp::error::end_of_stream).category();
  return ec.category() == http_category && ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
}

// The answer to a request the server refuses itself, or whose handler failed.
response error_response(const api_error& error, unsigned version, std::string_view inbound_request_id) {
  response res{static_cast<bhttp::status>(error.status), version};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = error.to_json();
  res.set("x-request-id", request_id_for(inbound_request_id));
  return res;
}

// What a request that failed to be read is refused with: `ec` ended the read
// of its head, or of its body (`in_body`). nullopt when the connection just
// ended or timed out: it is closed without an answer.
std::optional<api_error> rejection(const boost::system::error_code& ec, bool in_body, std::size_t max_body_bytes) {
  if (ec == bhttp::error::body_limit) return api_error::payload_too_large(max_body_bytes);
  if (!in_body && ec == bhttp::error::header_limit) {
    return api_error{431, "invalid_request_error", "headers_too_large", "Request headers are too large"};
  }
  if (is_malformed_http(ec)) {
    return api_error::bad_request(in_body ? "Malformed HTTP request body" : "Malformed HTTP request",
                                  "bad_http_request");
  }
  return std::nullopt;
}

// Reports a request to the observer once the read of its head ended (`hec`
// says how), if there was a request at all.
void start_observing(observed_exchange& observed, request_reader& parser, const boost::system::error_code& hec,
                     std::chrono::steady_clock::time_point head_read_at) {
  // A Content-Length over the body limit fails the header read, but the
  // request line has been parsed by then.
  if (parser.is_header_done() || hec == bhttp::error::body_limit) {
    observed.start(parser.get().method(), parser.get().target(), head_read_at);
  } else if (hec && parser.got_some() && hec != bhttp::error::end_of_stream && hec != asio::error::eof &&
             hec != beast::error::timeout) {
    // (No byte of a request, no request: a kept-alive connection the
    // client resets between requests, as load generators do when they
    // stop, is not counted as one.)
    observed.start(bhttp::verb::unknown, {}, head_read_at);
  }
}

// Sends a 500 carrying `message`. A plain function, not a coroutine: the
// answer is built here and moved into send()'s frame, so the caller's frame
// (run_handler's, one per request) does not hold it.
asio::awaitable<bool> send_internal_error(response_writer& writer, const request& req, const char* message) {
  const api_error error = api_error::internal(message);
  response answer = error_response(error, req.version(), req["x-request-id"]);
  return writer.send(std::move(answer));
}

// Runs the handler for one request and settles what the client gets:
// escaped exceptions, and a handler that sent nothing, get a 500 if nothing
// was sent yet. Reports the outcome to `observed` and says whether the
// connection may serve another request. What follows the handler lives here
// too, not in a coroutine of its own: a coroutine call costs a frame, and
// this is the request's only one apart from its reads and writes.
template <class Stream>
asio::awaitable<bool> run_handler(const request_handler& handler, request_context& ctx,
                                  connection_writer<Stream>& writer, tcp::socket& socket, disconnect_watch& watch,
                                  observed_exchange& observed) {
  bool failed = false;
  try {
    co_await handler(ctx);
  } catch (const boost::system::system_error& e) {
    // Cancellation (the client went away) surfaces as operation_aborted: nobody to answer.
    failed = e.code() != asio::error::operation_aborted;
  } catch (const std::exception&) {
    failed = true;
  }
  if (failed && !ctx.writer.started()) {
    co_await send_internal_error(ctx.writer, ctx.req, "The gateway failed while handling this request");
  }
  end_watch(socket, watch);
  const request& req = ctx.req;
  observed.set(writer.finished() ? writer.status() : 0, req.body().size(), writer.bytes_sent(), ctx.sampled_trace_id());
  asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
  if (state.cancelled() != asio::cancellation_type::none) {
    co_await asio::this_coro::reset_cancellation_state();
    co_return false;
  }

  if (writer.streaming() && !writer.failed()) {
    // A handler that returned mid-stream (cancelled or errored) leaves the
    // response unterminated; the only honest signal left is to close.
    co_return false;
  }
  if (!writer.started()) {
    // The handler gave no answer; the client must still get one.
    const bool sent = co_await send_internal_error(writer, req, "The gateway produced no response");
    observed.set(sent ? writer.status() : 0, req.body().size(), writer.bytes_sent());
    if (!sent) co_return false;
  }
  co_return !writer.failed() && writer.keep_alive();
}

}  // namespace

// A connection's entry in its shard's registry, for as long as its coroutine
// runs, however that ends. Leaving it may stop a draining shard.
class server::impl::registration {
 public:
  registration(impl& self, shard& s, tcp::socket& socket, const std::shared_ptr<disconnect_watch>& watch,
               asio::ip::address address)
      : self_(self), shard_(s), reg_(s.reg), address_(address) {
    reg_->waiting.push_back(connection_entry{&socket, watch, false, false});
    it_ = std::prev(reg_->waiting.end());
    reg_->add_idle(1);
  }
  registration(const registration&) = delete;
  registration& operator=(const registration&) = delete;
  ~registration() {
    if (!it_->in_request && !it_->evicted) reg_->add_idle(-1);
    (it_->in_request ? reg_->handling : reg_->waiting).erase(it_);
    self_.open_connections.fetch_sub(1, std::memory_order_relaxed);
    self_.release_address_slot(address_);
    if (reg_->io_alive) self_.maybe_stop(shard_);
  }
  connection_entry& entry() { return *it_; }
  // A request is being read or handled (true), or the connection waits for
  // one (false): it then becomes the most recently idle.
  void set_in_request(bool busy) {
    if (it_->in_request == busy) return;
    it_->in_request = busy;
    // Splicing keeps it_ valid (it now points into the other list).
    if (busy) {
      reg_->handling.splice(reg_->handling.end(), reg_->waiting, it_);
    } else {
      reg_->waiting.splice(reg_->waiting.end(), reg_->handling, it_);
    }
    if (!it_->evicted) reg_->add_idle(busy ? -1 : 1);
  }

 private:
  impl& self_;
  shard& shard_;
  std::shared_ptr<registry> reg_;  // outlives the shard if the io_context's teardown destroys the coroutine
  std::list<connection_entry>::iterator it_;
  asio::ip::address address_;
};

// Answers a request refused before any handler saw it (the connection then
// closes: at most once per connection); says whether the answer went out.
template <class Stream>
asio::awaitable<bool> server::impl::refuse(Stream& stream, io_deadline& deadline, std::string& head_buffer,
                                           unsigned version, const api_error& error, const request& req,
                                           observed_exchange& observed) {
  connection_writer<Stream> writer{stream, deadline, false, version, options.write_timeout, head_buffer};
  // Built as a named local: GCC 12 double-destroys temporaries that live
  // across a co_await in the same full-expression.
  response answer = error_response(error, version, req["x-request-id"]);
  const bool sent = co_await writer.send(std::move(answer));
  observed.set(writer.status(), 0, writer.bytes_sent());
  co_return sent;
}

// Lingering close, as nginx does: closing with unread bytes (the rest of a
// body we refused, e.g. with 413) makes the kernel reset the connection, and
// the client may then never read our answer. So read and drop what still
// arrives until the client closes, bounded in time. At most once per
// connection, after refuse().
asio::awaitable<void> server::impl::linger_close(registration& registered, tcp::socket& socket, io_deadline& deadline) {
  registered.set_in_request(false);  // nothing in flight: a shutdown may close it at once
  const auto until = coarse_now() + options.body_timeout;
  std::array<char, 16 * 1024> sink;
  for (;;) {
    deadline.expires_at(std::min(until, coarse_now() + std::chrono::seconds(2)));
    auto [lec, ln] = co_await socket.async_read_some(asio::buffer(sink), use_tuple);
    if (lec) break;
  }
  deadline.clear();
}

template <class Stream>
asio::awaitable<void> server::impl::serve_connection(shard& s, Stream stream, tcp::endpoint remote,
                                                     std::shared_ptr<disconnect_watch> watch) {
  registration registered{*this, s, lowest_socket(stream), watch, client_address(remote)};
  // Declared after `stream` (a parameter), so it goes before the socket does.
  io_deadline deadline{deadline_sweeper::of(s.io), lowest_socket(stream)};
  if constexpr (is_plain<Stream>) {
    boost::system::error_code ignored;
    stream.non_blocking(true, ignored);  // for write_all's direct write
  } else {
    deadline.expires_after(options.header_timeout);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
    deadline.clear();
    if (ec) co_return;
  }
  beast::flat_buffer buffer;
  buffer.reserve(4096);  // most request heads and small bodies arrive in one read
  std::string head_buffer;
  request req;  // reused by every request on the connection (see http/request.hpp)
  bool first = true;
  bool linger = false;  // a refused request's body may still be arriving
  while (!draining.load(std::memory_order_relaxed)) {
    request_reader parser{req};
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    parser.body_limit(options.max_body_bytes);

    // The head. Waiting for the next request on a kept-alive connection uses
    // the idle timeout; the first request's head must arrive within header_timeout.
    registered.set_in_request(false);
    const auto head_until = coarse_now() + (first ? options.header_timeout : options.idle_timeout);
    auto hec = co_await read_message(stream, buffer, parser, true, deadline, head_until);
    const auto head_read_at = std::chrono::steady_clock::now();
    first = false;
    registered.set_in_request(true);
    const unsigned version = parser.is_header_done() ? parser.get().version() : 11;
    observed_exchange observed{options.observer.get(), s.index};
    start_observing(observed, parser, hec, head_read_at);

    // The body, unless the head failed.
    const bool in_body = !hec;
    if (in_body) {
      if (version >= 11 && beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
        const asio::const_buffer cont = asio::buffer("HTTP/1.1 100 Continue\r\n\r\n", 25);
        const auto write_until = coarse_now() + options.write_timeout;
        auto [cec, cn] = co_await write_all(stream, cont, deadline, write_until);
        if (cec) break;
      }
      // A small body usually arrived with the head: then no read, no coroutine.
      if (!detail::parse_buffered(buffer, parser, false, hec)) {
        const auto body_until = coarse_now() + options.body_timeout;
        hec = co_await read_message(stream, buffer, parser, false, deadline, body_until);
      }
    }
    if (hec) {
      // Refused before any handler saw it, or the connection ended.
      const std::optional<api_error> reject = rejection(hec, in_body, options.max_body_bytes);
      if (reject) linger = co_await refuse(stream, deadline, head_buffer, version, *reject, req, observed);
      break;
    }

    const bool keep_alive = req.keep_alive() && !draining.load(std::memory_order_relaxed);
    connection_writer<Stream> writer{stream, deadline, keep_alive, req.version(), options.write_timeout, head_buffer};
    request_context ctx{req, writer, s.index, remote, head_read_at, observed.token()};
    // While the handler runs, a client that goes away cancels it (and with it
    // any upstream call) through the connection's cancellation signal.
    want_watch(s, *watch, ctx.received_at);
    const bool again = co_await run_handler(s.handler, ctx, writer, lowest_socket(stream), *watch, observed);
    if (!again) break;
  }

  // Graceful close: send FIN so the client reads the last response fully.
  boost::system::error_code ignored;
  if constexpr (!is_plain<Stream>) {
    deadline.expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(use_tuple);
    deadline.clear();
  }
  auto& socket = lowest_socket(stream);
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  if (linger) co_await linger_close(registered, socket, deadline);
}

asio::awaitable<void> server::impl::accept_loop(shard& s) {
  for (;;) {
    auto [ec, socket] = co_await s.acceptor->async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || draining.load()) co_return;
      // Out of file descriptors or similar: back off briefly instead of spinning.
      asio::steady_timer pause{s.io, std::chrono::milliseconds(20)};
      co_await pause.async_wait(use_tuple);
      continue;
    }
    boost::system::error_code ignored;
    tcp::endpoint remote = socket.remote_endpoint(ignored);
    const asio::ip::address address = client_address(remote);
    // The per-address limit first: an address at its limit must not make
    // room for itself by closing others' idle connections.
    if (!take_address_slot(address)) {
      asio::co_spawn(s.io, refuse_connection(s, std::move(socket)), asio::detached);
      continue;
    }
    if (open_connections.fetch_add(1, std::memory_order_relaxed) >= options.max_connections && !reclaim_idle(s)) {
      open_connections.fetch_sub(1, std::memory_order_relaxed);
      release_address_slot(address);
      asio::co_spawn(s.io, refuse_connection(s, std::move(socket)), asio::detached);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ignored);
    auto watch = std::make_shared<disconnect_watch>();
    auto& signal = watch->signal;
    // The completion handler holds the watch too, so the signal its slot
    // belongs to outlives every use co_spawn makes of that slot.
    auto done = asio::bind_cancellation_slot(signal.slot(), [keep = watch](std::exception_ptr) {});
    if (tls_context) {
      asio::co_spawn(s.io, serve_connection(s, tls_stream(std::move(socket), *tls_context), remote, watch),
                     std::move(done));
    } else {
      asio::co_spawn(s.io, serve_connection(s, std::move(socket), remote, watch), std::move(done));
    }
  }
}

bool server::impl::take_address_slot(const asio::ip::address& address) {
  if (per_ip_limit >= options.max_connections) return true;  // no limit of its own
  std::lock_guard lock(per_ip_mu);
  std::size_t& count = per_ip[address];
  if (count >= per_ip_limit) return false;
  ++count;
  return true;
}

void server::impl::release_address_slot(const asio::ip::address& address) {
  if (per_ip_limit >= options.max_connections) return;
  std::lock_guard lock(per_ip_mu);
  const auto it = per_ip.find(address);
  if (it == per_ip.end()) return;
  if (--it->second == 0) per_ip.erase(it);
}

// At the connection limit: makes room by closing the longest-idle connection
// of this shard or, when it has none, of another shard (on that shard's
// thread, shortly). The new connection is admitted meanwhile, so the count
// may exceed the limit by the evictions still under way. False when no
// shard has an idle connection.
bool server::impl::reclaim_idle(shard& s) {
  if (s.reg->idle.load(std::memory_order_relaxed) > 0 && evict_longest_idle(s)) return true;
  for (auto& other : shards) {
    if (other.get() == &s || other->reg->idle.load(std::memory_order_relaxed) == 0) continue;
    asio::post(other->io, [o = other.get()] { evict_longest_idle(*o); });
    return true;
  }
  return false;
}

// Closes the connection that has waited longest for a request (it has none
// in flight, so nothing is lost but the socket). On the shard's thread.
bool server::impl::evict_longest_idle(shard& s) {
  for (auto& c : s.reg->waiting) {
    if (c.evicted) continue;
    c.evicted = true;
    s.reg->add_idle(-1);
    boost::system::error_code ignored;
    c.socket->close(ignored);
    return true;
  }
  return false;
}

// A connection refused for a limit: reads what the client sends within
// refusal_time and, if a request began, answers 503 with Retry-After before
// closing (a client then knows to retry instead of seeing a reset). Over TLS,
// or past max_refusals_in_flight, it is closed at once.
asio::awaitable<void> server::impl::refuse_connection(shard& s, tcp::socket socket) {
  if (tls_context || s.refusing >= max_refusals_in_flight) {
    boost::system::error_code ignored;
    socket.close(ignored);
    co_return;
  }
  ++s.refusing;
  struct leave {
    unsigned& n;
    ~leave() { --n; }
  } counted{s.refusing};
  io_deadline deadline{deadline_sweeper::of(s.io), socket};
  const auto until = coarse_now() + refusal_time;
  std::array<char, 4096> head;
  deadline.expires_at(until);
  auto [ec, n] = co_await socket.async_read_some(asio::buffer(head), use_tuple);
  if (!ec && n > 0) {
    static const std::string answer = [] {
      const api_error error{503, "api_error", "too_many_connections",
                            "The server has too many connections (from your address or in total); retry shortly"};
      const std::string body = error.to_json();
      return fmt::format(
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
          "Connection: close\r\nContent-Length: {}\r\n\r\n{}",
          body.size(), body);
    }();
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    const asio::const_buffer bytes = asio::buffer(answer);
    auto [wec, wn] = co_await write_all(socket, bytes, deadline, until);
    if (!wec) {
      // Lingering close (see linger_close): let the answer arrive before any reset.
      socket.shutdown(tcp::socket::shutdown_send, ignored);
      for (;;) {
        deadline.expires_at(until);
        auto [lec, ln] = co_await socket.async_read_some(asio::buffer(head), use_tuple);
        if (lec) break;
      }
    }
  }
  deadline.clear();
  boost::system::error_code ignored;
  socket.close(ignored);
}

void server::impl::want_watch(shard& s, disconnect_watch& watch, std::chrono::steady_clock::time_point since) {
  watch.wanted = true;
  watch.wanted_since = since;
  if (!s.sweeping) schedule_sweep(s);
}

void server::impl::schedule_sweep(shard& s) {
  s.sweeping = true;
  s.watch_sweep->expires_after(watch_delay);
  s.watch_sweep->async_wait([this, &s](const boost::system::error_code& ec) {
    if (ec) {
      s.sweeping = false;
      return;
    }
    sweep_watches(s);
  });
}

// Arms the watches of requests that have run watch_delay; sweeps again while
// younger ones are in flight, and stops when none are.
void server::impl::sweep_watches(shard& s) {
  const auto now = std::chrono::steady_clock::now();
  bool younger = false;
  for (auto& c : s.reg->handling) {
    auto& watch = *c.watch;
    if (!watch.wanted || watch.armed) continue;
    if (now - watch.wanted_since >= watch_delay) {
      arm_watch(*c.socket, c.watch);
    } else {
      younger = true;
    }
  }
  if (younger) {
    schedule_sweep(s);
  } else {
    s.sweeping = false;
  }
}

void server::impl::maybe_stop(shard& s) {
  if (draining.load() && s.reg->empty()) {
    if (s.grace_timer) s.grace_timer->cancel();
    s.io.stop();
  }
}

void server::impl::begin_drain(shard& s, std::chrono::milliseconds grace) {
  boost::system::error_code ignored;
  if (s.acceptor) s.acceptor->close(ignored);
  for (auto& c : s.reg->waiting) {
    // Idle keep-alive connections have nothing in flight: close them now.
    // (Closed, not cancelled: a connection between reads, yielding before
    // its next one, has nothing pending that a cancel would reach.)
    c.socket->close(ignored);
  }
  s.grace_timer.emplace(s.io, grace);
  s.grace_timer->async_wait([this, &s](boost::system::error_code ec) {
    if (ec) return;
    // Grace is over: close what is left. Their coroutines see the error,
    // cancel their upstream calls and finish; the shard then stops by itself.
    // Should anything ignore that, stop the shard shortly after regardless.
    boost::system::error_code ignored2;
    for (auto& c : s.reg->handling) {
      c.watch->signal.emit(asio::cancellation_type::terminal);
      c.socket->close(ignored2);
    }
    for (auto& c : s.reg->waiting) c.socket->close(ignored2);
    s.grace_timer->expires_after(std::chrono::seconds(2));
    s.grace_timer->async_wait([&s](boost::system::error_code ec2) {
      if (!ec2) s.io.stop();
    });
  });
  maybe_stop(s);
}

server::server(server_options options, handler_factory factory) : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
  impl_->factory = std::move(factory);
  if (impl_->options.threads == 0) impl_->options.threads = 1;
  const std::size_t total = impl_->options.max_connections;
  const std::size_t per_ip = impl_->options.max_connections_per_ip;
  impl_->per_ip_limit = per_ip == 0 ? std::max<std::size_t>(1, total / 4) : std::min(per_ip, total);
}

server::~server() = default;

void server::listen() {
  auto& self = *impl_;
  if (self.options.tls) {
    self.tls_context.emplace(ssl::context::tls_server);
    self.tls_context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    self.tls_context->use_certificate_chain_file(self.options.tls->certificate_chain_file);
    self.tls_context->use_private_key_file(self.options.tls->private_key_file, ssl::context::pem);
  }
  const auto address = asio::ip::make_address(self.options.host);
  std::uint16_t port = self.options.port;
  for (unsigned i = 0; i < self.options.threads; ++i) {
    auto sh = std::make_unique<impl::shard>();
    sh->index = i;
    sh->acceptor.emplace(sh->io);
    sh->watch_sweep.emplace(sh->io);
    tcp::endpoint endpoint{address, port};
    sh->acceptor->open(endpoint.protocol());
    sh->acceptor->set_option(tcp::acceptor::reuse_address(true));
    sh->acceptor->set_option(reuse_port(true));
    sh->acceptor->bind(endpoint);
    sh->acceptor->listen(asio::socket_base::max_listen_connections);
    if (port == 0) port = sh->acceptor->local_endpoint().port();
    self.shards.push_back(std::move(sh));
  }
  self.bound_port = port;
  for (auto& sh : self.shards) sh->handler = self.factory(sh->index, sh->io);
}

std::uint16_t server::port() const { return impl_->bound_port; }

void server::run() {
  auto& self = *impl_;
  for (auto& sh : self.shards) asio::co_spawn(sh->io, self.accept_loop(*sh), asio::detached);
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < self.shards.size(); ++i) {
    // Shard 0 runs on the calling thread, whose name is the process's.
    threads.emplace_back([&io = self.shards[i]->io, i] {
      name_this_thread("gw-shard-" + std::to_string(i));
      io.run();
    });
  }
  if (!self.shards.empty()) self.shards[0]->io.run();
  for (auto& t : threads) t.join();
  if (self.options.after_run) self.options.after_run();
}

void server::shutdown(std::chrono::milliseconds grace) {
  auto& self = *impl_;
  std::call_once(self.shutdown_once, [&] {
    self.draining.store(true);
    for (auto& sh : self.shards) {
      asio::post(sh->io, [&self, s = sh.get(), grace] { self.begin_drain(*s, grace); });
    }
  });
}

std::size_t server::open_connections() const { return impl_->open_connections.load(std::memory_order_relaxed); }

}  // namespace gatewayz::http
