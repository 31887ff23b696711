#pragma once
// A throwaway Redis server for tests: the Debian redis-server binary on
// 127.0.0.1, a free port, a temporary directory, no persistence
// (--save '' --appendonly no). stop()/start() restart it on the same port
// (to test reconnection); pause()/resume() freeze it (SIGSTOP/SIGCONT) so
// it accepts nothing and answers nothing (to test timeouts). The destructor
// kills it and deletes the directory.
//
// A missing binary is an error (std::runtime_error), never a skip: the test
// command installs redis-server.

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace gatewayz::test_support {

struct redis_server_options {
  std::string password;  // requirepass when set
};

class redis_server {
 public:
  explicit redis_server(redis_server_options options = {});
  ~redis_server();
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  std::uint16_t port() const { return port_; }
  // redis://[:password@]127.0.0.1:<port>/<database>
  std::string url(int database = 0) const;
  bool running() const { return pid_ > 0; }

  // Kills the server (SIGKILL) and waits for it: clients see their connections reset.
  void stop();
  // Starts it again on the same port; blocks until it answers PING.
  void start();
  void pause();
  void resume();

  // Runs redis-cli against the server and returns its trimmed output
  // (for checking what the gateway wrote), e.g. cli("GET k").
  std::string cli(const std::string& arguments) const;

 private:
  redis_server_options options_;
  std::string root_dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace gatewayz::test_support
