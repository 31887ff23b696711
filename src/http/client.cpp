#include "http/client.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "http/deadlines.hpp"
#include "http/stream_io.hpp"
#include "http/wire.hpp"

namespace gatewayz::http {

namespace {

namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;

using detail::use_tuple;
constexpr std::size_t read_chunk_bytes = 16 * 1024;
constexpr std::string_view user_agent = "gatewayz/0.1";
// A pooled connection idle for less than this is reused without checking it
// (see send()). Under load the pool (last in, first out) hands out
// connections idle for microseconds; the coarse clock ticks in 4 ms steps.
constexpr std::chrono::milliseconds fresh_idle{5};

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

upstream_failure classify(const boost::system::error_code& ec) {
  if (ec == beast::error::timeout) return upstream_failure::timeout;
  if (ec == asio::error::operation_aborted) return upstream_failure::cancelled;
  if (ec == bhttp::error::body_limit || ec == bhttp::error::buffer_overflow || ec == bhttp::error::header_limit) {
    return upstream_failure::too_large;
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    return upstream_failure::protocol;
  }
  return upstream_failure::closed;
}

// True when nothing waits to be read on an idle socket: no bytes, no EOF, no error.
bool idle_socket_quiet(tcp::socket& socket) {
  char probe;
  const auto n = ::recv(socket.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::string_view to_string(upstream_failure failure) {
  switch (failure) {
    case upstream_failure::none: return "none";
    case upstream_failure::connect: return "connect";
    case upstream_failure::timeout: return "timeout";
    case upstream_failure::closed: return "closed";
    case upstream_failure::protocol: return "protocol";
    case upstream_failure::too_large: return "too_large";
    case upstream_failure::cancelled: return "cancelled";
  }
  return "unknown";
}

bool parse_base_url(std::string_view url, upstream_endpoint& out, std::string& error) {
  auto parsed = gatewayz::parse_base_url(url, error);
  if (parsed) out = std::move(*parsed);
  return parsed.has_value();
}

struct upstream_pool::tls_state {
  ssl::context context{ssl::context::tls_client};
};

struct upstream_pool::connection {
  // One of the two is set. Not Beast's tcp_stream: timeouts come from the
  // shard's deadline sweeper, not a timer per operation (http/deadlines.hpp).
  std::optional<detail::plain_stream> plain;
  std::optional<detail::tls_stream> secure;
  std::optional<io_deadline> deadline;  // after the streams: destroyed before them
  // Sized for a whole small response (head and body) in one read.
  beast::flat_buffer buffer{};
  std::string head;              // the request head being sent, reused per exchange
  clock::time_point idle_since;  // when it was last returned to the pool

  tcp::socket& lowest() { return secure ? secure->next_layer() : *plain; }
};

namespace {

// Beast's parser with nothing stored: the gateway needs an upstream
// response's status, framing and body, and of its header fields only
// Retry-After, so none are copied into a fields container (an allocation
// each), and body bytes go straight into the caller's string.
class response_reader final : public bhttp::basic_parser<false> {
 public:
  unsigned status() const { return status_; }
  std::string_view retry_after() const { return {retry_after_.data(), retry_after_size_}; }
  // put(), with the body bytes it parses appended to `out`. (Plain put()
  // leaves body bytes in the input: the head is read that way.)
  std::size_t put_into(std::string& out, asio::const_buffer input, boost::system::error_code& ec) {
    sink_ = &out;
    const std::size_t used = put(input, ec);
    sink_ = nullptr;
    return used;
  }

 private:
  void on_request_impl(bhttp::verb, beast::string_view, beast::string_view, int, boost::system::error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, boost::system::error_code&) override {
    status_ = static_cast<unsigned>(code);
  }
  void on_field_impl(bhttp::field name, beast::string_view, beast::string_view value,
                     boost::system::error_code&) override {
    // Delay-seconds or an HTTP-date (29 bytes); anything longer is not one.
    if (name == bhttp::field::retry_after && !value.empty() && value.size() <= retry_after_.size()) {
      std::copy(value.begin(), value.end(), retry_after_.begin());
      retry_after_size_ = value.size();
    }
  }
  void on_header_impl(boost::system::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, boost::system::error_code&) override {}
  std::size_t on_body_impl(beast::string_view body, boost::system::error_code&) override { return take(body); }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, boost::system::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, boost::system::error_code&) override {
    return take(body);
  }
  void on_finish_impl(boost::system::error_code&) override {}

  std::size_t take(beast::string_view body) {
    if (sink_ == nullptr) return 0;
    sink_->append(body.data(), body.size());
    return body.size();
  }

  unsigned status_ = 0;
  std::array<char, 64> retry_after_{};
  std::size_t retry_after_size_ = 0;
  std::string* sink_ = nullptr;
};

}  // namespace

struct upstream_exchange::state {
  std::shared_ptr<upstream_pool> pool;
  std::unique_ptr<upstream_pool::connection> conn;
  std::optional<response_reader> parser;  // re-emplaced per attempt
  upstream_failure failure = upstream_failure::none;
  std::string detail;
  bool complete = false;
  clock::time_point deadline;
  std::chrono::milliseconds read_timeout{0};

  void fail(upstream_failure f, std::string d) {
    failure = f;
    detail = std::move(d);
    if (conn) {
      boost::system::error_code ignored;
      conn->lowest().close(ignored);
    }
  }
};

namespace {

template <class Stream>
asio::awaitable<boost::system::error_code> write_and_read_head(Stream& stream, beast::flat_buffer& buffer,
                                                               std::string& head, const outgoing_request& request,
                                                               const upstream_endpoint& endpoint,
                                                               response_reader& parser, io_deadline& deadline,
                                                               clock::time_point write_until,
                                                               clock::time_point head_until, bool& response_started) {
  head.clear();
  wire::append_request_head(request.method, endpoint.base_path, request.target, endpoint.host_header, user_agent,
                            request.headers, request.body.size(), head);
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(request.body)};

  bool all = false;
  boost::system::error_code wec;
  const std::size_t sent = detail::write_now(stream, buffers, all, wec);
  if (!wec && !all) {
    auto [rest_ec, rest_n] = co_await detail::write_rest(stream, buffers, sent, deadline, write_until);
    wec = rest_ec;
  }
  if (wec) co_return wec;
  auto rec = co_await detail::read_message(stream, buffer, parser, true, deadline, head_until);
  response_started = parser.got_some() || buffer.size() > 0;
  co_return rec;
}

}  // namespace

upstream_exchange::upstream_exchange(std::unique_ptr<state> s) : state_(std::move(s)) {}

std::unique_ptr<upstream_exchange::state> upstream_pool::take_state() {
  if (spare_states_.empty()) return std::make_unique<upstream_exchange::state>();
  auto s = std::move(spare_states_.back());
  spare_states_.pop_back();
  return s;
}

void upstream_pool::recycle(std::unique_ptr<upstream_exchange::state> s) {
  s->conn.reset();  // one not released above is closed here
  s->parser.reset();
  s->failure = upstream_failure::none;
  s->detail.clear();
  s->complete = false;
  // As many as connections may be pooled: enough for the exchanges in flight.
  if (spare_states_.size() < settings_.max_idle_connections) spare_states_.push_back(std::move(s));
}

upstream_exchange::upstream_exchange() = default;

upstream_exchange::~upstream_exchange() { end(); }

upstream_exchange::upstream_exchange(upstream_exchange&& other) noexcept : state_(std::move(other.state_)) {}

upstream_exchange& upstream_exchange::operator=(upstream_exchange&& other) noexcept {
  if (this != &other) {
    end();
    state_ = std::move(other.state_);
  }
  return *this;
}

void upstream_exchange::end() noexcept {
  if (!state_) return;
  // Taken out of the state first: a state kept by its pool must not keep the
  // pool alive.
  const std::shared_ptr<upstream_pool> pool = std::move(state_->pool);
  if (state_->conn && state_->complete && state_->failure == upstream_failure::none && state_->parser &&
      state_->parser->keep_alive()) {
    pool->release(std::move(state_->conn));
  }
  pool->recycle(std::move(state_));
}

upstream_failure upstream_exchange::failure() const { return state_->failure; }
const std::string& upstream_exchange::failure_detail() const { return state_->detail; }
unsigned upstream_exchange::status() const { return state_->parser ? state_->parser->status() : 0; }

std::string_view upstream_exchange::retry_after() const {
  return state_->parser ? state_->parser->retry_after() : std::string_view{};
}
bool upstream_exchange::body_complete() const { return state_->complete; }

void upstream_exchange::shorten_deadline(std::chrono::steady_clock::time_point until) {
  state_->deadline = std::min(state_->deadline, until);
}

upstream_exchange::body_step upstream_exchange::parse_buffered(std::string& out) {
  auto& s = *state_;
  auto& conn = *s.conn;
  auto& parser = *s.parser;
  for (;;) {
    // The sweeper enforces the deadline only on a read that waits; bytes that
    // are always already there (an upstream trickling to a busy shard) would
    // otherwise let a read loop run past it.
    if (coarse_now() >= s.deadline) {
      s.fail(upstream_failure::timeout, "reading response body: deadline passed");
      return body_step::finished;
    }
    const std::size_t before = out.size();
    boost::system::error_code ec;
    std::size_t used = 0;
    if (conn.buffer.size() > 0) {
      used = parser.put_into(out, conn.buffer.data(), ec);
      conn.buffer.consume(used);
      if (ec == bhttp::error::need_more) ec = {};  // a chunk header is split across reads
    }
    if (ec) {
      s.fail(classify(ec), fmt::format("reading response body: {}", ec.message()));
      return body_step::finished;
    }
    if (parser.is_done()) {
      s.complete = true;
      return body_step::finished;
    }
    if (out.size() > before) return body_step::progress;
    if (used > 0 && conn.buffer.size() > 0) continue;  // the parser took a step (e.g. a chunk header)
    return body_step::need_input;
  }
}

bool upstream_exchange::read_buffered(std::string& out, std::size_t limit) {
  auto& s = *state_;
  for (;;) {
    if (s.failure != upstream_failure::none || s.complete) return true;
    const auto step = parse_buffered(out);
    if (out.size() > limit) {
      s.fail(upstream_failure::too_large, fmt::format("response body over {} bytes", limit));
      return true;
    }
    if (step == body_step::need_input) return false;
  }
}

asio::awaitable<bool> upstream_exchange::read_some(std::string& out) {
  auto& s = *state_;
  if (s.failure != upstream_failure::none || s.complete) co_return false;
  auto& conn = *s.conn;
  auto& parser = *s.parser;
  for (;;) {
    // Parse what is buffered first: a small body usually came with the head.
    const std::size_t before = out.size();
    const auto step = parse_buffered(out);
    if (step == body_step::finished) co_return out.size() > before;
    if (step == body_step::progress) co_return true;

    // Let the shard's other ready work run first, then read what is there
    // and wait only if nothing is (see detail::read_message).
    co_await asio::post(asio::use_awaitable);
    boost::system::error_code rec = asio::error::would_block;
    if (!conn.secure) rec = detail::read_now(*conn.plain, conn.buffer, read_chunk_bytes);
    if (rec == asio::error::would_block) {
      const auto until = std::min(s.deadline, coarse_now() + s.read_timeout);
      if (conn.secure) {
        rec = co_await detail::read_waiting(*conn.secure, conn.buffer, read_chunk_bytes, *conn.deadline, until);
      } else {
        rec = co_await detail::read_waiting(*conn.plain, conn.buffer, read_chunk_bytes, *conn.deadline, until);
      }
    }
    if (rec == asio::error::eof) {
      // A body delimited by the connection's end is complete now; any other is
      // cut short. (put_eof() delivers no body bytes: put() took them all.)
      boost::system::error_code eof_ec;
      parser.put_eof(eof_ec);
      if (eof_ec) {
        s.fail(classify(eof_ec), fmt::format("reading response body: {}", eof_ec.message()));
        co_return false;
      }
      s.complete = true;
      co_return false;
    }
    if (rec) {
      s.fail(classify(rec), fmt::format("reading response body: {}", rec.message()));
      co_return false;
    }
  }
}

asio::awaitable<bool> upstream_exchange::read_all(std::string& out, std::size_t limit) {
  if (read_buffered(out, limit)) co_return state_->failure == upstream_failure::none;
  // (co_await is kept out of loop conditions: GCC 12 miscompiles some of those.)
  for (;;) {
    const bool more = co_await read_some(out);
    if (!more) break;
    if (out.size() > limit) {
      state_->fail(upstream_failure::too_large, fmt::format("response body over {} bytes", limit));
      co_return false;
    }
  }
  co_return state_->failure == upstream_failure::none;
}

upstream_pool::upstream_pool(asio::io_context& io, upstream_endpoint endpoint, client_settings settings)
    : io_(io), endpoint_(std::move(endpoint)), settings_(std::move(settings)) {
  if (endpoint_.tls) {
    tls_ = std::make_unique<tls_state>();
    tls_->context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                              ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls_->context.set_default_verify_paths();
    if (!settings_.ca_file.empty()) tls_->context.load_verify_file(settings_.ca_file);
    tls_->context.set_verify_mode(settings_.verify_tls ? ssl::verify_peer : ssl::verify_none);
  }
}

upstream_pool::~upstream_pool() = default;

std::size_t upstream_pool::idle_connections() const { return idle_.size(); }

void upstream_pool::release(std::unique_ptr<connection> c) {
  if (idle_.size() >= settings_.max_idle_connections) return;  // closes on destruction
  c->deadline->clear();
  c->idle_since = coarse_now();
  idle_.push_back(std::move(c));
}

asio::awaitable<std::unique_ptr<upstream_pool::connection>> upstream_pool::connect(clock::time_point deadline,
                                                                                   upstream_failure& failure,
                                                                                   std::string& detail) {
  const auto until = std::min(deadline, clock::now() + settings_.connect_timeout);
  tcp::resolver resolver{io_};
  asio::steady_timer timer{io_, until};
  auto raced = co_await (resolver.async_resolve(endpoint_.host, std::to_string(endpoint_.port), use_tuple) ||
                         timer.async_wait(use_tuple));
  if (raced.index() == 1) {
    failure = upstream_failure::timeout;
    detail = fmt::format("resolving {} timed out", endpoint_.host);
    co_return nullptr;
  }
  auto [rec, results] = std::get<0>(std::move(raced));
  if (rec) {
    failure = rec == asio::error::operation_aborted ? upstream_failure::cancelled : upstream_failure::connect;
    detail = fmt::format("resolving {}: {}", endpoint_.host, rec.message());
    co_return nullptr;
  }

  auto c = std::make_unique<connection>();
  c->buffer.reserve(read_chunk_bytes);
  if (tls_) {
    c->secure.emplace(io_, tls_->context);
  } else {
    c->plain.emplace(io_);
  }
  auto& lowest = c->lowest();
  c->deadline.emplace(deadline_sweeper::of(io_), lowest);
  // One deadline for connect and TLS handshake together.
  c->deadline->expires_at(until);
  // The deadline only cancels the attempt in progress; the condition keeps
  // async_connect from going on to the next address (with no deadline left).
  auto& deadline_ref = *c->deadline;
  const auto before_expiry = [&deadline_ref](const boost::system::error_code&, const tcp::endpoint&) {
    return !deadline_ref.expired();
  };
  auto [cec, ep] = co_await asio::async_connect(lowest, results, before_expiry, use_tuple);
  if (!cec && c->deadline->expired()) cec = asio::error::timed_out;  // connected just as time ran out
  if (cec) {
    failure = c->deadline->expired()                  ? upstream_failure::timeout
              : cec == asio::error::operation_aborted ? upstream_failure::cancelled
                                                      : upstream_failure::connect;
    detail = fmt::format("connecting to {}:{}: {}", endpoint_.host, endpoint_.port,
                         failure == upstream_failure::timeout ? "timed out" : cec.message());
    co_return nullptr;
  }
  boost::system::error_code ignored;
  lowest.set_option(tcp::no_delay(true), ignored);
  lowest.non_blocking(true, ignored);  // for write_all's direct write

  if (tls_) {
    auto& stream = *c->secure;
    // SNI carries DNS names only (RFC 6066); IP literals are verified against
    // the certificate's IP SANs by host_name_verification.
    if (!is_ip_literal(endpoint_.host) &&
        SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 static_cast<void*>(endpoint_.host.data())) != 1) {
      failure = upstream_failure::connect;
      detail = "could not set TLS SNI";
      co_return nullptr;
    }
    if (settings_.verify_tls) stream.set_verify_callback(ssl::host_name_verification(endpoint_.host));
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
    if (hec) {
      failure = c->deadline->expired()                  ? upstream_failure::timeout
                : hec == asio::error::operation_aborted ? upstream_failure::cancelled
                                                        : upstream_failure::connect;
      detail = fmt::format("TLS handshake with {}: {}", endpoint_.host, hec.message());
      co_return nullptr;
    }
  }
  c->deadline->clear();
  co_return c;
}

asio::awaitable<upstream_exchange> upstream_pool::send(const outgoing_request& request, clock::time_point deadline) {
  auto s = take_state();
  s->pool = shared_from_this();
  s->deadline = deadline;
  s->read_timeout = settings_.read_timeout;

  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = false;
    // An idle connection the upstream has since written to or closed is
    // dropped: what waits there (an unsolicited "408 Request Timeout", EOF)
    // would otherwise be read as the answer to this request. Checking costs
    // a syscall, a noticeable share of a short proxied request, so a
    // connection pooled only just now is taken unchecked: servers close or
    // time out idle connections after seconds, not within fresh_idle
    // (milliseconds), and one closed in the meantime fails before any
    // response byte and is retried below on a fresh connection.
    const auto now = coarse_now();
    while (attempt == 0 && !s->conn && !idle_.empty()) {
      auto candidate = std::move(idle_.back());
      idle_.pop_back();
      if (candidate->buffer.size() == 0 &&
          (now - candidate->idle_since < fresh_idle || idle_socket_quiet(candidate->lowest()))) {
        s->conn = std::move(candidate);
      }
    }
    if (s->conn) {
      reused = true;
    } else {
      upstream_failure failure = upstream_failure::none;
      std::string detail;
      s->conn = co_await connect(deadline, failure, detail);
      if (!s->conn) {
        s->fail(failure, std::move(detail));
        co_return upstream_exchange(std::move(s));
      }
    }

    s->parser.emplace();
    s->parser->header_limit(64 * 1024);
    s->parser->body_limit(boost::none);  // callers bound what they keep (read_all's limit)
    const auto sent_at = coarse_now();
    const auto write_until = std::min(deadline, sent_at + settings_.write_timeout);
    const auto head_until = std::min(deadline, sent_at + settings_.read_timeout);
    bool response_started = false;
    boost::system::error_code ec;
    auto& conn = *s->conn;
    if (conn.secure) {
      ec = co_await write_and_read_head(*conn.secure, conn.buffer, conn.head, request, endpoint_, *s->parser,
                                        *conn.deadline, write_until, head_until, response_started);
    } else {
      ec = co_await write_and_read_head(*conn.plain, conn.buffer, conn.head, request, endpoint_, *s->parser,
                                        *conn.deadline, write_until, head_until, response_started);
    }
    auto& lowest = conn.lowest();
    if (!ec) {
      // From here on the body is parsed as far as the input goes in one call.
      s->parser->eager(true);
      if (s->parser->is_done()) s->complete = true;
      co_return upstream_exchange(std::move(s));
    }
    const auto failure = classify(ec);
    // A kept-alive connection the upstream closed while idle fails before any
    // response byte: that says nothing about the provider, so retry once fresh.
    if (reused && !response_started && failure == upstream_failure::closed) {
      boost::system::error_code ignored;
      lowest.close(ignored);
      s->conn.reset();
      continue;
    }
    s->fail(failure, fmt::format("exchange with {}: {}", endpoint_.host, ec.message()));
    co_return upstream_exchange(std::move(s));
  }
  s->fail(upstream_failure::closed, "connection closed before a response");
  co_return upstream_exchange(std::move(s));
}

}  // namespace gatewayz::http
