#pragma once
// Reading and writing HTTP/1.1 messages on a connection, shared by the server
// and the upstream client (private to the http library).
//
// Both sides use plain sockets or TLS over them, with io_deadline for
// timeouts, and drive Beast's parser themselves instead of calling Beast's
// composed read operations: what is already buffered is parsed without any
// asynchronous operation (a small response often arrives with its head), and
// a write that fits the socket's send buffer completes without one too. Each
// asynchronous operation avoided is a trip through the scheduler saved.

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/error.hpp>

#include "http/deadlines.hpp"

namespace gatewayz::http::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

using plain_stream = asio::ip::tcp::socket;
using tls_stream = asio::ssl::stream<asio::ip::tcp::socket>;

inline asio::ip::tcp::socket& lowest_socket(plain_stream& s) { return s; }
inline asio::ip::tcp::socket& lowest_socket(tls_stream& s) { return s.next_layer(); }

template <class Stream>
constexpr bool is_plain = std::is_same_v<Stream, plain_stream>;

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// The direct reads and writes below go to the kernel through syscall(2), not
// libc's recv/sendmsg: those are cancellation points, and in a threaded
// process each call brackets the syscall with switching asynchronous
// cancellation on and off, a measurable share of a proxied request's CPU
// (docs/decisions/http-direct-syscalls.md). Nothing here uses thread
// cancellation.
// errno after a failed direct read or write, as Asio reports it.
inline boost::system::error_code socket_error(int error) {
  if (error == EAGAIN || error == EWOULDBLOCK) return asio::error::would_block;
  return {error, asio::error::get_system_category()};
}

inline std::size_t send_direct(asio::ip::tcp::socket& socket, const iovec* parts, std::size_t count,
                               boost::system::error_code& ec) {
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(parts);
  message.msg_iovlen = count;
  for (;;) {
    const long n = ::syscall(SYS_sendmsg, socket.native_handle(), &message, MSG_NOSIGNAL);
    if (n >= 0) {
      ec = {};
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) continue;
    ec = socket_error(errno);
    return 0;
  }
}

inline std::size_t receive_direct(asio::ip::tcp::socket& socket, asio::mutable_buffer into,
                                  boost::system::error_code& ec) {
  for (;;) {
    const long n = ::syscall(SYS_recvfrom, socket.native_handle(), into.data(), into.size(), 0, nullptr, nullptr);
    if (n > 0) {
      ec = {};
      return static_cast<std::size_t>(n);
    }
    if (n == 0) {
      ec = into.size() == 0 ? boost::system::error_code{} : boost::system::error_code(asio::error::eof);
      return 0;
    }
    if (errno == EINTR) continue;
    ec = socket_error(errno);
    return 0;
  }
}

// Most reads and writes here complete without waiting, so each comes as a
// plain function for that case and a coroutine only for the rest: calling a
// coroutine costs a frame and a trip through Asio's coroutine machinery even
// when it never suspends, and a proxied request makes a dozen such calls.

// Writes what the socket takes of `buffers` now, without waiting, and returns
// how many bytes that was; `all` says whether that was everything. On a plain
// socket (which must be in non-blocking mode) that is usually the whole
// message, as in nginx. TLS streams write nothing here. `ec` is set on an
// error other than a full send buffer.
template <class Stream, class Buffers>
std::size_t write_now(Stream& stream, const Buffers& buffers, bool& all, boost::system::error_code& ec) {
  all = false;
  ec = {};
  if constexpr (is_plain<Stream>) {
    std::array<iovec, 8> parts;
    std::size_t count = 0;
    bool fits = true;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      const asio::const_buffer b(*it);
      if (b.size() == 0) continue;
      if (count == parts.size()) {
        fits = false;  // more pieces than one direct write takes: the rest goes asynchronously
        break;
      }
      parts[count++] = iovec{const_cast<void*>(b.data()), b.size()};
    }
    const std::size_t sent = send_direct(stream, parts.data(), count, ec);
    if (ec == asio::error::would_block) ec = {};
    all = !ec && fits && sent == asio::buffer_size(buffers);
    return sent;
  } else {
    (void)stream;
    (void)buffers;
    return 0;
  }
}

// Writes `buffers` after their first `sent` bytes, waiting as needed, by
// `until`. Returns the error and the bytes this call wrote.
template <class Stream, class Buffers>
asio::awaitable<std::pair<boost::system::error_code, std::size_t>> write_rest(
    Stream& stream, const Buffers& buffers, std::size_t sent, io_deadline& deadline,
    std::chrono::steady_clock::time_point until) {
  beast::buffers_suffix<Buffers> rest(buffers);
  rest.consume(sent);
  deadline.expires_at(until);
  auto [ec, n] = co_await asio::async_write(stream, rest, use_tuple);
  deadline.clear();
  if (ec && deadline.expired()) ec = beast::error::timeout;
  co_return std::pair{ec, n};
}

// Writes all of `buffers`, by `until`: write_now(), then write_rest() for
// whatever did not fit.
template <class Stream, class Buffers>
asio::awaitable<std::pair<boost::system::error_code, std::size_t>> write_all(
    Stream& stream, const Buffers& buffers, io_deadline& deadline, std::chrono::steady_clock::time_point until) {
  bool all = false;
  boost::system::error_code ec;
  const std::size_t sent = write_now(stream, buffers, all, ec);
  if (ec || all) co_return std::pair{ec, sent};
  auto [rec, n] = co_await write_rest(stream, buffers, sent, deadline, until);
  co_return std::pair{rec, sent + n};
}

// Reads what a plain socket has waiting into `buffer` (at most `max` bytes),
// without waiting: asio::error::would_block when nothing is there (and always
// for TLS streams, whose bytes need the TLS engine).
template <class Stream>
boost::system::error_code read_now(Stream& stream, beast::flat_buffer& buffer, std::size_t max) {
  if constexpr (is_plain<Stream>) {
    boost::system::error_code ec;
    const std::size_t n = receive_direct(stream, buffer.prepare(beast::read_size(buffer, max)), ec);
    if (ec != asio::error::would_block) buffer.commit(n);
    return ec;
  } else {
    (void)stream;
    (void)buffer;
    (void)max;
    return asio::error::would_block;
  }
}

// Waits for bytes and reads them into `buffer` (at most `max`), by `until`.
template <class Stream>
asio::awaitable<boost::system::error_code> read_waiting(Stream& stream, beast::flat_buffer& buffer, std::size_t max,
                                                        io_deadline& deadline,
                                                        std::chrono::steady_clock::time_point until) {
  deadline.expires_at(until);
  auto [ec, n] = co_await stream.async_read_some(buffer.prepare(beast::read_size(buffer, max)), use_tuple);
  deadline.clear();
  buffer.commit(n);
  if (ec && ec != asio::error::eof && deadline.expired()) ec = beast::error::timeout;
  co_return ec;
}

// Feeds what is buffered to `parser` until it has the header (`header_only`)
// or the whole message, or needs more input. Returns true when it stopped for
// a reason other than needing input (`ec` then says whether that was an
// error); false when more bytes must be read.
template <class Parser>
bool parse_buffered(beast::flat_buffer& buffer, Parser& parser, bool header_only, boost::system::error_code& ec) {
  namespace bhttp = beast::http;
  const auto complete = [&] { return header_only ? parser.is_header_done() : parser.is_done(); };
  ec = {};
  if (complete()) return true;
  while (buffer.size() > 0) {
    const std::size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == bhttp::error::need_more) {
      ec = {};
      return false;
    }
    if (ec || complete()) return true;
    if (used == 0) return false;
  }
  return false;
}

// Reads until `parser` has the header (`header_only`) or the whole message,
// by `until`. Errors are those of Beast's own read: end_of_stream when the
// connection ends before the first byte, partial_message within one,
// timeout, or a parse error.
//
// Before each read the coroutine lets the shard's other ready work run: the
// peer is usually still answering what we just wrote, and reading at once
// would mostly cost a recv() failing with EAGAIN, a syscall, where a trip
// through the scheduler costs far less. Then a plain socket is read directly,
// which needs no asynchronous operation when bytes are waiting; only when
// none are does it wait asynchronously (with the deadline).
template <class Stream, class Parser>
asio::awaitable<boost::system::error_code> read_message(Stream& stream, beast::flat_buffer& buffer, Parser& parser,
                                                        bool header_only, io_deadline& deadline,
                                                        std::chrono::steady_clock::time_point until) {
  namespace bhttp = beast::http;
  constexpr std::size_t max_read = 64 * 1024;
  boost::system::error_code ec;
  while (!parse_buffered(buffer, parser, header_only, ec)) {
    co_await asio::post(asio::use_awaitable);
    auto rec = read_now(stream, buffer, max_read);
    if (rec == asio::error::would_block) rec = co_await read_waiting(stream, buffer, max_read, deadline, until);
    if (rec == asio::error::eof) {
      if (!parser.got_some()) {
        ec = bhttp::error::end_of_stream;
      } else {
        ec = {};
        parser.put_eof(ec);
        if (!ec && !(header_only ? parser.is_header_done() : parser.is_done())) ec = bhttp::error::partial_message;
      }
      break;
    }
    if (rec) {
      ec = rec;
      break;
    }
  }
  co_return ec;
}

}  // namespace gatewayz::http::detail
