#include "http/server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <list>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
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

#include "core/api_error.hpp"
#include "core/request_id.hpp"
#include "core/threads.hpp"
#include "http/deadlines.hpp"
#include "http/stream_io.hpp"
#include "http/wire.hpp"

namespace gatewayz::http {

namespace {

namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr std::string_view server_name = "gatewayz";

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

struct disconnect_watch;  // defined below, with the code that uses it

// Per-connection bookkeeping a shard keeps so that shutdown can close idle
// keep-alive connections and, after the grace period, everything else.
struct connection_entry {
  tcp::socket* socket = nullptr;
  std::shared_ptr<disconnect_watch> watch;
  bool in_request = false;
};

// How long a request runs before its client's disconnects are watched for
// (see disconnect_watch), and so also how often a shard sweeps for such
// requests while any are in flight.
constexpr std::chrono::milliseconds watch_delay{50};

}  // namespace

struct server::impl {
  // Connections of one shard. Shared with each connection's coroutine so that
  // a coroutine frame destroyed during io_context teardown (after a forced
  // stop) can still unregister itself safely.
  struct registry {
    std::list<connection_entry> connections;  // touched only on the shard's thread
    bool io_alive = true;
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
    ~shard() { reg->io_alive = false; }
  };

  server_options options;
  handler_factory factory;
  std::optional<ssl::context> tls_context;  // outlives every TLS stream (shards go first)
  std::atomic<std::size_t> open_connections{0};
  std::atomic<bool> draining{false};
  std::uint16_t bound_port = 0;
  std::once_flag shutdown_once;
  std::vector<std::unique_ptr<shard>> shards;  // declared last: destroyed first

  asio::awaitable<void> accept_loop(shard& s);
  template <class Stream>
  asio::awaitable<void> serve_connection(shard& s, Stream stream, tcp::endpoint remote,
                                         std::shared_ptr<disconnect_watch> watch);
  void maybe_stop(shard& s);
  void begin_drain(shard& s, std::chrono::milliseconds grace);
  void want_watch(shard& s, disconnect_watch& watch, std::chrono::steady_clock::time_point since);
  void schedule_sweep(shard& s);
  void sweep_watches(shard& s);
};

namespace {

// Writes responses for one request on a connection. Tracks whether bytes have
// been committed (no failover after that) and whether the connection can be
// reused afterwards.
template <class Stream>
class connection_writer final : public response_writer {
 public:
  // `head_buffer` is the connection's scratch space for response heads,
  // reused from one request to the next.
  connection_writer(Stream& stream, io_deadline& deadline, bool keep_alive, unsigned version,
                    std::chrono::milliseconds write_timeout, std::string& head_buffer)
      : stream_(stream),
        deadline_(deadline),
        keep_alive_(keep_alive),
        version_(version),
        write_timeout_(write_timeout),
        head_(head_buffer) {}

  asio::awaitable<bool> send(response message) override {
    if (state_ != state::idle) co_return false;
    state_ = state::finished;
    started_ = true;
    message.version(version_);
    head_.clear();
    if (fields_left_to_us(message)) {
      wire::append_response_head(message.base(), {connection_field(), server_name, message.body().size()}, head_);
    } else {
      message.keep_alive(keep_alive_);
      message.set(bhttp::field::server, server_name);
      message.prepare_payload();
      wire::append_response_head(message.base(), head_);
    }
    status_ = message.result_int();
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(message.body())};
    std::size_t sent = 0;
    if (try_write(buffers, sent)) co_return !failed();
    co_return co_await finish_write(buffers, sent);
  }

  asio::awaitable<bool> send(unsigned status, std::span<const header_ref> fields, std::string_view body) override {
    const auto code = static_cast<bhttp::status>(status);
    if (bhttp::to_status_class(code) == bhttp::status_class::informational || code == bhttp::status::no_content ||
        code == bhttp::status::not_modified) {
      // No body and no Content-Length: Beast's rules, through the other send().
      response message{code, version_};
      for (const auto& [name, value] : fields) message.set(name, value);
      co_return co_await send(std::move(message));
    }
    if (state_ != state::idle) co_return false;
    state_ = state::finished;
    started_ = true;
    head_.clear();
    wire::append_response_head(status, version_, fields, {connection_field(), server_name, body.size()}, head_);
    status_ = status;
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body.data(), body.size())};
    std::size_t sent = 0;
    if (try_write(buffers, sent)) co_return !failed();
    co_return co_await finish_write(buffers, sent);
  }

  asio::awaitable<bool> begin_stream(response_head head) override {
    if (state_ != state::idle) co_return false;
    state_ = state::streaming;
    started_ = true;
    bhttp::response<bhttp::empty_body> message{std::move(head)};
    message.version(version_);
    message.set(bhttp::field::server, server_name);
    if (version_ >= 11) {
      message.keep_alive(keep_alive_);
      message.chunked(true);
    } else {
      // HTTP/1.0 has no chunked encoding: the body ends when the connection does.
      keep_alive_ = false;
      message.keep_alive(false);
    }
    status_ = message.result_int();
    head_.clear();
    wire::append_response_head(message.base(), head_);
    const asio::const_buffer buffer = asio::buffer(head_);
    std::size_t sent = 0;
    if (try_write(buffer, sent)) co_return !failed();
    co_return co_await finish_write(buffer, sent);
  }

  asio::awaitable<bool> write_chunk(std::string_view data) override {
    if (state_ != state::streaming) co_return false;
    if (data.empty()) co_return true;
    if (version_ >= 11) {
      head_.clear();
      wire::append_chunk_size(data.size(), head_);
      const std::array<asio::const_buffer, 3> chunk{asio::buffer(head_), asio::buffer(data.data(), data.size()),
                                                    asio::buffer("\r\n", 2)};
      std::size_t sent = 0;
      if (try_write(chunk, sent)) co_return !failed();
      co_return co_await finish_write(chunk, sent);
    }
    const asio::const_buffer raw(data.data(), data.size());
    std::size_t sent = 0;
    if (try_write(raw, sent)) co_return !failed();
    co_return co_await finish_write(raw, sent);
  }

  asio::awaitable<bool> end_stream() override {
    if (state_ != state::streaming) co_return false;
    state_ = state::finished;
    if (version_ < 11) co_return true;
    const asio::const_buffer last = asio::buffer("0\r\n\r\n", 5);
    std::size_t sent = 0;
    if (try_write(last, sent)) co_return !failed();
    co_return co_await finish_write(last, sent);
  }

  void reset() override {
    state_ = state::failed;
    started_ = true;
    boost::system::error_code ignored;
    auto& socket = lowest_socket(stream_);
    socket.set_option(tcp::socket::linger(true, 0), ignored);
    socket.close(ignored);
  }

  bool started() const override { return started_; }

  // The usual answer: a status that carries a body and none of the fields
  // the connection manages set by the handler.
  static bool fields_left_to_us(const response& m) {
    const auto status = m.result();
    if (bhttp::to_status_class(status) == bhttp::status_class::informational ||
        status == bhttp::status::no_content || status == bhttp::status::not_modified) {
      return false;
    }
    return m.find(bhttp::field::server) == m.end() && m.find(bhttp::field::content_length) == m.end() &&
           m.find(bhttp::field::transfer_encoding) == m.end() && m.find(bhttp::field::connection) == m.end();
  }

  // What Beast's keep_alive() would add: HTTP/1.1 says close, HTTP/1.0 keep-alive.
  std::string_view connection_field() const {
    return version_ >= 11 ? (keep_alive_ ? "" : "close") : (keep_alive_ ? "keep-alive" : "");
  }

  bool finished() const { return state_ == state::finished; }
  bool failed() const { return state_ == state::failed; }
  bool keep_alive() const { return keep_alive_; }
  bool streaming() const { return state_ == state::streaming; }
  unsigned status() const { return status_; }
  std::size_t bytes_sent() const { return bytes_sent_; }

 private:
  enum class state { idle, streaming, finished, failed };

  // Writing a piece of the response: try_write() writes what the socket takes
  // at once, without a coroutine of its own, and says whether that settled it
  // (everything written, or failed); only then does a caller await
  // finish_write() for the rest, within write_timeout. Callers then answer
  // false once the write failed.
  template <class Buffers>
  bool try_write(const Buffers& buffers, std::size_t& sent) {
    bool all = false;
    boost::system::error_code ec;
    sent = detail::write_now(stream_, buffers, all, ec);
    bytes_sent_ += sent;
    if (ec) note(ec);
    return ec || all;
  }

  template <class Buffers>
  asio::awaitable<bool> finish_write(Buffers buffers, std::size_t sent) {
    const auto until = coarse_now() + write_timeout_;
    auto [ec, n] = co_await detail::write_rest(stream_, buffers, sent, deadline_, until);
    bytes_sent_ += n;
    co_return note(ec);
  }

  bool note(const boost::system::error_code& ec) {
    if (ec) {
      state_ = state::failed;
      return false;
    }
    return true;
  }

  Stream& stream_;
  io_deadline& deadline_;
  bool keep_alive_;
  unsigned version_;
  std::chrono::milliseconds write_timeout_;
  std::string& head_;
  state state_ = state::idle;
  bool started_ = false;
  unsigned status_ = 0;
  std::size_t bytes_sent_ = 0;
};

// Reports one request to the exchange observer exactly once, whichever way
// serve_connection leaves it (answered, rejected, client gone, shutdown).
class observed_exchange {
 public:
  observed_exchange(exchange_observer* observer, std::size_t shard) : observer_(observer), shard_(shard) {}
  observed_exchange(const observed_exchange&) = delete;
  observed_exchange& operator=(const observed_exchange&) = delete;
  ~observed_exchange() { finish(); }

  void start(bhttp::verb method, std::string_view target, std::chrono::steady_clock::time_point now) {
    if (observer_ == nullptr) return;
    finish();
    method_ = method;
    token_ = observer_->started(shard_, method, target);
    started_at_ = now;
    active_ = true;
  }
  // What the observer's started() returned; nullopt without an observer.
  std::optional<std::uint32_t> token() const {
    if (!active_) return std::nullopt;
    return token_;
  }
  // Status 0 (nothing sent) is reported as 499, nginx's "client closed request".
  void set(unsigned status, std::size_t request_bytes, std::size_t response_bytes) {
    status_ = status == 0 ? 499 : status;
    request_bytes_ = request_bytes;
    response_bytes_ = response_bytes;
  }
  void finish() {
    if (!active_) return;
    active_ = false;
    observer_->finished(shard_, token_, method_, status_, request_bytes_, response_bytes_,
                        std::chrono::steady_clock::now() - started_at_);
  }

 private:
  exchange_observer* observer_;
  std::size_t shard_;
  bool active_ = false;
  bhttp::verb method_ = bhttp::verb::unknown;
  std::uint32_t token_ = 0;
  unsigned status_ = 499;
  std::size_t request_bytes_ = 0;
  std::size_t response_bytes_ = 0;
  std::chrono::steady_clock::time_point started_at_;
};

// A parse error caused by the bytes the client sent (answered with 400), as
// opposed to the connection ending or timing out (closed silently).
bool is_malformed_http(const boost::system::error_code& ec) {
  static const auto& http_category = bhttp::make_error_code(bhttp::error::end_of_stream).category();
  return ec.category() == http_category && ec != bhttp::error::end_of_stream &&
         ec != bhttp::error::partial_message;
}

response error_response(const api_error& error, unsigned version) {
  response res{static_cast<bhttp::status>(error.status), version};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = error.to_json();
  return res;
}

// Notices a client that goes away while its request is being handled, the
// way nginx does: wait for the socket to become readable and peek. Zero bytes
// (FIN) or an error (RST) means the client is gone, and the connection's
// cancellation signal cancels whatever the handler is awaiting (its upstream
// call). Bytes mean a pipelined next request: the client is still there.
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
struct disconnect_watch {
  asio::cancellation_signal signal;
  std::uint64_t generation = 0;  // ties a queued wait to the request that queued it
  bool armed = false;
  bool wanted = false;  // a request is being handled; arm once it has run watch_delay
  std::chrono::steady_clock::time_point wanted_since;
};

// 1: bytes waiting, 0: the peer closed or failed, -1: nothing to read yet.
int peek_state(int fd) {
  char probe;
  const auto n = ::recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return 1;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return -1;
  return 0;
}

void queue_watch(tcp::socket& socket, const std::shared_ptr<disconnect_watch>& watch,
                 std::uint64_t generation) {
  socket.async_wait(tcp::socket::wait_read,
                    [watch, generation, &socket](const boost::system::error_code& ec) {
                      if (!watch->armed || watch->generation != generation) return;
                      if (ec == asio::error::operation_aborted) {
                        // Cancelled by something else on the socket (an
                        // expiring write deadline), not by end_watch: the
                        // request still runs, so keep watching.
                        queue_watch(socket, watch, generation);
                        return;
                      }
                      if (ec) return;
                      const int state = peek_state(socket.native_handle());
                      if (state == 1) return;
                      if (state == -1) {
                        queue_watch(socket, watch, generation);  // spurious wake-up
                        return;
                      }
                      watch->armed = false;
                      watch->wanted = false;  // fired: the sweep must not arm it again
                      watch->signal.emit(asio::cancellation_type::terminal);
                    });
}

// Queues the watch for the request being handled.
void arm_watch(tcp::socket& socket, const std::shared_ptr<disconnect_watch>& watch) {
  watch->armed = true;
  queue_watch(socket, watch, ++watch->generation);
}

// The request is over: a queued wait is cancelled (it is the only operation
// left on the socket); a watch never armed costs nothing.
void end_watch(tcp::socket& socket, disconnect_watch& watch) {
  watch.wanted = false;
  if (!watch.armed) return;
  watch.armed = false;
  ++watch.generation;
  boost::system::error_code ignored;
  socket.cancel(ignored);
}

// Runs the handler, turning escaped exceptions into a 500 (if nothing was sent).
asio::awaitable<void> run_handler(const request_handler& handler, request_context& ctx) {
  bool failed = false;
  try {
    co_await handler(ctx);
  } catch (const boost::system::system_error& e) {
    // Cancellation (the client went away) surfaces as operation_aborted: nobody to answer.
    if (e.code() == asio::error::operation_aborted) co_return;
    failed = true;
  } catch (const std::exception&) {
    failed = true;
  }
  if (failed && !ctx.writer.started()) {
    const api_error error = api_error::internal("The gateway failed while handling this request");
    response answer = error_response(error, ctx.req.version());
    answer.set("x-request-id", request_id_for(ctx.req["x-request-id"]));
    co_await ctx.writer.send(std::move(answer));
  }
}

}  // namespace

template <class Stream>
asio::awaitable<void> server::impl::serve_connection(shard& s, Stream stream, tcp::endpoint remote,
                                                     std::shared_ptr<disconnect_watch> watch) {
  std::shared_ptr<registry> reg = s.reg;
  auto& entry = reg->connections.emplace_back(connection_entry{&lowest_socket(stream), watch, false});
  struct guard {
    impl* self;
    shard* sh;
    std::shared_ptr<registry> reg;
    std::list<connection_entry>::iterator it;
    ~guard() {
      reg->connections.erase(it);
      self->open_connections.fetch_sub(1, std::memory_order_relaxed);
      if (reg->io_alive) self->maybe_stop(*sh);
    }
  } cleanup{this, &s, reg, std::prev(reg->connections.end())};

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

    // Waiting for the next request on a kept-alive connection uses the idle
    // timeout; the first request's headers must arrive within header_timeout.
    entry.in_request = false;
    const auto head_until = coarse_now() + (first ? options.header_timeout : options.idle_timeout);
    auto hec = co_await read_message(stream, buffer, parser, true, deadline, head_until);
    const auto head_read_at = std::chrono::steady_clock::now();
    first = false;
    entry.in_request = true;
    const unsigned version = parser.is_header_done() ? parser.get().version() : 11;
    observed_exchange observed{options.observer.get(), s.index};
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

    // An answer for a request we reject before any handler sees it. (Built
    // as a named local: GCC 12 double-destroys temporaries that live across
    // a co_await in the same full-expression.)
    std::optional<api_error> reject;
    if (hec) {
      if (hec == bhttp::error::body_limit) {
        reject = api_error::payload_too_large(options.max_body_bytes);
      } else if (hec == bhttp::error::header_limit) {
        reject = api_error{431, "invalid_request_error", "headers_too_large",
                           "Request headers are too large"};
      } else if (is_malformed_http(hec)) {
        reject = api_error::bad_request("Malformed HTTP request", "bad_http_request");
      }
    } else {
      if (version >= 11 && beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
        const asio::const_buffer cont = asio::buffer("HTTP/1.1 100 Continue\r\n\r\n", 25);
        const auto write_until = coarse_now() + options.write_timeout;
        auto [cec, cn] = co_await write_all(stream, cont, deadline, write_until);
        if (cec) break;
      }
      // A small body usually arrived with the head: then no read, no coroutine.
      boost::system::error_code bec;
      if (!detail::parse_buffered(buffer, parser, false, bec)) {
        const auto body_until = coarse_now() + options.body_timeout;
        bec = co_await read_message(stream, buffer, parser, false, deadline, body_until);
      }
      if (bec) {
        hec = bec;
        if (bec == bhttp::error::body_limit) {
          reject = api_error::payload_too_large(options.max_body_bytes);
        } else if (is_malformed_http(bec)) {
          reject = api_error::bad_request("Malformed HTTP request body", "bad_http_request");
        }
      }
    }
    if (hec) {
      if (reject) {
        connection_writer<Stream> writer{stream, deadline, false, version, options.write_timeout, head_buffer};
        response answer = error_response(*reject, version);
        answer.set("x-request-id", request_id_for(parser.get()["x-request-id"]));
        linger = co_await writer.send(std::move(answer));
        observed.set(writer.status(), 0, writer.bytes_sent());
      }
      break;
    }

    const bool keep_alive = req.keep_alive() && !draining.load(std::memory_order_relaxed);
    connection_writer<Stream> writer{stream, deadline, keep_alive, req.version(), options.write_timeout,
                                     head_buffer};
    request_context ctx{req, writer, s.index, remote, head_read_at, observed.token()};

    // While the handler runs, a client that goes away cancels it (and with it
    // any upstream call) through the connection's cancellation signal.
    auto& socket = lowest_socket(stream);
    want_watch(s, *watch, ctx.received_at);
    co_await run_handler(s.handler, ctx);
    end_watch(socket, *watch);
    observed.set(writer.finished() ? writer.status() : 0, req.body().size(), writer.bytes_sent());
    asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    if (state.cancelled() != asio::cancellation_type::none) {
      co_await asio::this_coro::reset_cancellation_state();
      break;
    }

    if (writer.streaming() && !writer.failed()) {
      // A handler that returned mid-stream (cancelled or errored) leaves the
      // response unterminated; the only honest signal left is to close.
      break;
    }
    if (!writer.started()) {
      // The handler gave no answer; the client must still get one.
      const api_error error = api_error::internal("The gateway produced no response");
      response answer = error_response(error, req.version());
      answer.set("x-request-id", request_id_for(req["x-request-id"]));
      const bool sent = co_await writer.send(std::move(answer));
      observed.set(sent ? writer.status() : 0, req.body().size(), writer.bytes_sent());
      if (!sent) break;
    }
    if (writer.failed() || !writer.keep_alive()) break;
  }

  // Graceful close: send FIN so the client reads the last response fully.
  boost::system::error_code ignored;
  if constexpr (!is_plain<Stream>) {
    deadline.expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(use_tuple);
    deadline.clear();
  }
  lowest_socket(stream).shutdown(tcp::socket::shutdown_send, ignored);

  if (linger) {
    // Lingering close, as nginx does: closing with unread bytes (the rest of
    // a body we refused, e.g. with 413) makes the kernel reset the
    // connection, and the client may then never read our answer. So read and
    // drop what still arrives until the client closes, bounded in time.
    entry.in_request = false;  // nothing in flight: a shutdown may close it at once
    auto& lowest = lowest_socket(stream);
    const auto until = coarse_now() + options.body_timeout;
    std::array<char, 16 * 1024> sink;
    for (;;) {
      deadline.expires_at(std::min(until, coarse_now() + std::chrono::seconds(2)));
      auto [lec, ln] = co_await lowest.async_read_some(asio::buffer(sink), use_tuple);
      if (lec) break;
    }
    deadline.clear();
  }
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
    if (open_connections.fetch_add(1, std::memory_order_relaxed) >= options.max_connections) {
      open_connections.fetch_sub(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    tcp::endpoint remote = socket.remote_endpoint(ignored);
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
  for (auto& c : s.reg->connections) {
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
  if (draining.load() && s.reg->connections.empty()) {
    if (s.grace_timer) s.grace_timer->cancel();
    s.io.stop();
  }
}

void server::impl::begin_drain(shard& s, std::chrono::milliseconds grace) {
  boost::system::error_code ignored;
  if (s.acceptor) s.acceptor->close(ignored);
  for (auto& c : s.reg->connections) {
    // Idle keep-alive connections have nothing in flight: close them now.
    // (Closed, not cancelled: a connection between reads, yielding before
    // its next one, has nothing pending that a cancel would reach.)
    if (!c.in_request) c.socket->close(ignored);
  }
  s.grace_timer.emplace(s.io, grace);
  s.grace_timer->async_wait([this, &s](boost::system::error_code ec) {
    if (ec) return;
    // Grace is over: close what is left. Their coroutines see the error,
    // cancel their upstream calls and finish; the shard then stops by itself.
    // Should anything ignore that, stop the shard shortly after regardless.
    boost::system::error_code ignored2;
    for (auto& c : s.reg->connections) {
      if (c.in_request) c.watch->signal.emit(asio::cancellation_type::terminal);
      c.socket->close(ignored2);
    }
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
}

server::~server() = default;

void server::listen() {
  auto& self = *impl_;
  if (self.options.tls) {
    self.tls_context.emplace(ssl::context::tls_server);
    self.tls_context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                  ssl::context::no_tlsv1_1);
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

std::size_t server::open_connections() const {
  return impl_->open_connections.load(std::memory_order_relaxed);
}

}  // namespace gatewayz::http
