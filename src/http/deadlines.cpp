#include "http/deadlines.hpp"

#include <time.h>

#include <algorithm>

namespace gatewayz::http {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

clock::time_point coarse_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  // steady_clock is CLOCK_MONOTONIC on Linux: same epoch, so the two mix.
  return clock::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

// ---- io_deadline

io_deadline::io_deadline(deadline_sweeper& sweeper, asio::ip::tcp::socket& socket) noexcept
    : sweeper_(&sweeper), socket_(&socket) {
  sweeper_->link(*this);
}

io_deadline::~io_deadline() {
  if (sweeper_ == nullptr) return;  // the sweeper went first (io_context teardown)
  clear();
  sweeper_->unlink(*this);
}

void io_deadline::expires_after(clock::duration timeout) noexcept {
  // The coarse clock lags the real one by up to a kernel tick; the sweep's
  // own granularity is coarser still, so the deadline errs on the late side.
  expires_at(coarse_now() + timeout);
}

void io_deadline::expires_at(clock::time_point when) noexcept {
  expired_ = false;
  if (sweeper_ == nullptr) return;
  if (deadline_ == never) ++sweeper_->armed_;
  deadline_ = when;
  sweeper_->armed_one(when);
}

void io_deadline::clear() noexcept {
  if (deadline_ == never || sweeper_ == nullptr) return;
  deadline_ = never;
  --sweeper_->armed_;
}

// ---- deadline_sweeper

deadline_sweeper::deadline_sweeper(asio::io_context& io, std::chrono::milliseconds tick) : timer_(io), tick_(tick) {}

deadline_sweeper::~deadline_sweeper() {
  stopped_ = true;
  // Deadlines still registered (their owners outlive us during io_context
  // teardown) must not reach back into a destroyed sweeper: detach them.
  for (io_deadline* d = head_; d != nullptr;) {
    io_deadline* next = d->next_;
    d->prev_ = d->next_ = nullptr;
    d->deadline_ = io_deadline::never;
    d->sweeper_ = nullptr;
    d = next;
  }
  head_ = nullptr;
}

void deadline_sweeper::link(io_deadline& d) noexcept {
  d.prev_ = nullptr;
  d.next_ = head_;
  if (head_ != nullptr) head_->prev_ = &d;
  head_ = &d;
}

void deadline_sweeper::unlink(io_deadline& d) noexcept {
  if (d.prev_ != nullptr) {
    d.prev_->next_ = d.next_;
  } else if (head_ == &d) {
    head_ = d.next_;
  }
  if (d.next_ != nullptr) d.next_->prev_ = d.prev_;
  d.prev_ = d.next_ = nullptr;
}

void deadline_sweeper::armed_one(clock::time_point when) noexcept {
  earliest_ = std::min(earliest_, when);
  if (!scheduled_ && !stopped_) schedule();
}

void deadline_sweeper::schedule() {
  scheduled_ = true;
  timer_.expires_after(tick_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    // Aborted: the sweeper is shutting down or destroyed; touch nothing.
    if (ec) return;
    scheduled_ = false;
    if (stopped_) return;
    sweep();
  });
}

void deadline_sweeper::sweep() {
  const auto now = coarse_now();
  if (now >= earliest_) {
    earliest_ = io_deadline::never;
    // cancel() only queues the aborted handlers, so the list cannot change
    // under this loop.
    for (io_deadline* d = head_; d != nullptr; d = d->next_) {
      if (d->deadline_ == io_deadline::never) continue;
      if (d->deadline_ <= now) {
        d->deadline_ = io_deadline::never;
        --armed_;
        d->expired_ = true;
        boost::system::error_code ignored;
        d->socket_->cancel(ignored);
      } else {
        earliest_ = std::min(earliest_, d->deadline_);
      }
    }
  }
  if (armed_ > 0) schedule();
}

// ---- one sweeper per io_context

struct deadline_service : asio::execution_context::service {
  using key_type = deadline_service;
  static asio::execution_context::id id;

  explicit deadline_service(asio::execution_context& context)
      : asio::execution_context::service(context),
        // Only deadline_sweeper::of() creates this service, always for an io_context.
        sweeper(static_cast<asio::io_context&>(context)) {}

  void shutdown() override {
    sweeper.stopped_ = true;
    sweeper.timer_.cancel();
  }

  deadline_sweeper sweeper;
};

asio::execution_context::id deadline_service::id;

deadline_sweeper& deadline_sweeper::of(asio::io_context& io) { return asio::use_service<deadline_service>(io).sweeper; }

}  // namespace gatewayz::http
