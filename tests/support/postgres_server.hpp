#pragma once
// A throwaway PostgreSQL server for tests.
//
// Uses the server binaries of the Debian postgresql package
// (/usr/lib/postgresql/<version>/bin: initdb, pg_ctl). initdb refuses to
// run as root, and the tests run as root, so every server command runs as
// the `postgres` system user (runuser) with the temporary directory
// chowned to it; as any other user the commands run directly.
//
// The server listens only on 127.0.0.1 on a free port, keeps its unix
// socket inside the temporary directory, trusts loopback connections and
// runs with fsync off. stop()/start() restart it on the same port and data
// directory (to test reconnection); the destructor stops it and deletes
// the directory.
//
// Missing binaries are an error (std::runtime_error), never a skip: the
// test command installs postgresql.

#include <cstdint>
#include <string>
#include <string_view>

namespace gatewayz::test_support {

class postgres_server {
 public:
  postgres_server();
  ~postgres_server();
  postgres_server(const postgres_server&) = delete;
  postgres_server& operator=(const postgres_server&) = delete;

  // One server per test process, started on first use.
  static postgres_server& shared();

  // postgres://postgres@127.0.0.1:<port>/<database>
  std::string url(std::string_view database) const;
  // Creates a new, empty database and returns its URL.
  std::string create_database();

  std::uint16_t port() const { return port_; }
  bool running() const { return running_; }

  // Fast shutdown: clients are disconnected. Blocks until the server is down.
  void stop();
  // Starts again on the same port and data directory; blocks until it accepts connections.
  void start();

 private:
  // Runs a server binary (as `postgres` when we are root); throws with the
  // command's output on failure.
  void run_tool(std::string_view tool, const std::string& arguments) const;
  std::string read_log_tail() const;

  std::string bin_dir_;
  std::string root_dir_;
  std::string data_dir_;
  std::string log_file_;
  std::uint16_t port_ = 0;
  bool as_postgres_user_ = false;
  bool running_ = false;
  int next_database_ = 0;
};

}  // namespace gatewayz::test_support
