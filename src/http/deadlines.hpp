#pragma once
// Coarse I/O deadlines for the sockets of one io_context.
//
// Why not a timer per operation: Beast's tcp_stream arms a steady_timer for
// every read and write, cancels it when the operation completes and then runs
// the cancelled timer's handler, so each I/O costs a timer-queue insert and
// removal and an extra trip through the scheduler. On a proxied request with
// six I/O operations that was a large share of the user-space CPU. Instead, a
// socket's pending operation gets a deadline stamp (a few stores), and one
// sweep per io_context, every `tick` while any stamp is set, cancels the
// sockets whose stamp has passed. Timeouts therefore fire up to one tick late,
// which is fine for limits measured in seconds.
//
// An expired deadline cancels the socket (every pending operation on it ends
// with operation_aborted) and sets expired(), so the owner can tell a timeout
// from its own cancellation. The owner closes the socket; the sweeper never
// does.
//
// Thread safety: none. A sweeper belongs to one io_context run by one thread,
// and every call happens on that thread.

#include <chrono>
#include <cstddef>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace gatewayz::http {

// CLOCK_MONOTONIC_COARSE: the kernel's tick-resolution clock, read without
// touching the clock source. Deadlines need no more precision than the sweep.
std::chrono::steady_clock::time_point coarse_now() noexcept;

class deadline_sweeper;

// One socket's deadline. Registers with a sweeper on construction and leaves
// it on destruction; the socket must outlive the deadline (declare it first).
class io_deadline {
 public:
  io_deadline(deadline_sweeper& sweeper, boost::asio::ip::tcp::socket& socket) noexcept;
  ~io_deadline();
  io_deadline(const io_deadline&) = delete;
  io_deadline& operator=(const io_deadline&) = delete;

  // Expire `timeout` from now (coarse clock) / at `when`. Clears expired().
  void expires_after(std::chrono::steady_clock::duration timeout) noexcept;
  void expires_at(std::chrono::steady_clock::time_point when) noexcept;
  // No deadline until the next expires_*().
  void clear() noexcept;

  // The deadline passed while set, and the socket was cancelled.
  bool expired() const noexcept { return expired_; }

 private:
  friend class deadline_sweeper;
  static constexpr auto never = std::chrono::steady_clock::time_point::max();

  deadline_sweeper* sweeper_;  // null once the sweeper is destroyed
  boost::asio::ip::tcp::socket* socket_;
  io_deadline* prev_ = nullptr;
  io_deadline* next_ = nullptr;
  std::chrono::steady_clock::time_point deadline_ = never;
  bool expired_ = false;
};

class deadline_sweeper {
 public:
  explicit deadline_sweeper(boost::asio::io_context& io,
                            std::chrono::milliseconds tick = std::chrono::milliseconds(10));
  ~deadline_sweeper();
  deadline_sweeper(const deadline_sweeper&) = delete;
  deadline_sweeper& operator=(const deadline_sweeper&) = delete;

  // The io_context's own sweeper, created on first use (an asio service, so
  // the server's connections and the upstream pools of a shard share one).
  static deadline_sweeper& of(boost::asio::io_context& io);

  // Deadlines currently set (for tests).
  std::size_t armed() const noexcept { return armed_; }

 private:
  friend class io_deadline;
  void link(io_deadline& d) noexcept;
  void unlink(io_deadline& d) noexcept;
  void armed_one(std::chrono::steady_clock::time_point when) noexcept;
  void schedule();
  void sweep();

  boost::asio::steady_timer timer_;
  std::chrono::milliseconds tick_;
  io_deadline* head_ = nullptr;
  std::size_t armed_ = 0;
  // No set deadline is earlier than this; a sweep before it scans nothing.
  std::chrono::steady_clock::time_point earliest_ = io_deadline::never;
  bool scheduled_ = false;
  bool stopped_ = false;

  friend struct deadline_service;
};

}  // namespace gatewayz::http
