#include "http/disconnect_watch.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace gatewayz::http::detail {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// 1: bytes waiting, 0: the peer closed or failed, -1: nothing to read yet.
int peek_state(int fd) {
  char probe;
  const auto n = ::recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return 1;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return -1;
  return 0;
}

void queue_watch(tcp::socket& socket, const std::shared_ptr<disconnect_watch>& watch, std::uint64_t generation) {
  socket.async_wait(tcp::socket::wait_read, [watch, generation, &socket](const boost::system::error_code& ec) {
    if (!watch->armed || watch->generation != generation) return;
    if (ec == asio::error::operation_aborted) {
      // Cancelled by something else on the socket (an expiring write
      // deadline), not by end_watch: the request still runs, so keep watching.
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

}  // namespace

void arm_watch(tcp::socket& socket, const std::shared_ptr<disconnect_watch>& watch) {
  watch->armed = true;
  queue_watch(socket, watch, ++watch->generation);
}

}  // namespace gatewayz::http::detail
