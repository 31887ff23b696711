#pragma once
// The per-request pieces of a server connection (private to the http
// library; server.cpp is their only user):
//
// - connection_writer: the response_writer handed to a handler. It writes on
//   the connection's stream, directly when the socket takes the bytes at
//   once and with a coroutine only for the rest (see http/stream_io.hpp),
//   each write bounded by the write timeout through the connection's
//   io_deadline. It tracks whether bytes were committed and whether the
//   connection may be reused. A failed write makes every later call answer
//   false; it never throws for I/O errors.
// - observed_exchange: reports one request to the server's exchange_observer
//   exactly once.
//
// Ownership: both borrow what they are given (stream, deadline, head
// buffer, observer), which must outlive them. Threads: the connection's
// shard thread only.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include "http/deadlines.hpp"
#include "http/server.hpp"
#include "http/stream_io.hpp"
#include "http/wire.hpp"

namespace gatewayz::http::detail {

namespace bhttp = beast::http;

inline constexpr std::string_view server_name = "gatewayz";

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
    socket.set_option(asio::ip::tcp::socket::linger(true, 0), ignored);
    socket.close(ignored);
  }

  bool started() const override { return started_; }

  // The usual answer: a status that carries a body and none of the fields
  // the connection manages set by the handler.
  static bool fields_left_to_us(const response& m) {
    const auto status = m.result();
    if (bhttp::to_status_class(status) == bhttp::status_class::informational || status == bhttp::status::no_content ||
        status == bhttp::status::not_modified) {
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
    sent = write_now(stream_, buffers, all, ec);
    bytes_sent_ += sent;
    if (ec) note(ec);
    return ec || all;
  }

  template <class Buffers>
  asio::awaitable<bool> finish_write(Buffers buffers, std::size_t sent) {
    const auto until = coarse_now() + write_timeout_;
    auto [ec, n] = co_await write_rest(stream_, buffers, sent, deadline_, until);
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
// the server's connection leaves it (answered, rejected, client gone,
// shutdown).
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
  void set(unsigned status, std::size_t request_bytes, std::size_t response_bytes, std::string_view trace_id = {}) {
    status_ = status == 0 ? 499 : status;
    request_bytes_ = request_bytes;
    response_bytes_ = response_bytes;
    trace_id_size_ = static_cast<std::uint8_t>(std::min(trace_id.size(), trace_id_.size()));
    std::copy_n(trace_id.data(), trace_id_size_, trace_id_.data());
  }
  void finish() {
    if (!active_) return;
    active_ = false;
    observer_->finished(shard_, token_, method_, status_, request_bytes_, response_bytes_,
                        std::chrono::steady_clock::now() - started_at_,
                        std::string_view(trace_id_.data(), trace_id_size_));
    trace_id_size_ = 0;
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
  std::array<char, 32> trace_id_{};  // copied: the request context is gone by finish()
  std::uint8_t trace_id_size_ = 0;
};

}  // namespace gatewayz::http::detail
