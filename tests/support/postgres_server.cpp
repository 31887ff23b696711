#include "support/postgres_server.hpp"

#include "support/server_process.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <glob.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace gatewayz::test_support {
namespace {

// The bin directory of the newest installed server version.
std::string find_bin_dir() {
  glob_t matches{};
  std::vector<std::string> found;
  if (glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &matches) == 0) {
    for (std::size_t i = 0; i < matches.gl_pathc; ++i) {
      const std::string initdb = matches.gl_pathv[i];
      const std::string dir = initdb.substr(0, initdb.size() - std::string_view("/initdb").size());
      if (access((dir + "/pg_ctl").c_str(), X_OK) == 0) found.push_back(dir);
    }
  }
  globfree(&matches);
  if (found.empty()) {
    throw std::runtime_error(
        "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb and pg_ctl): "
        "install the Debian 'postgresql' package to run the PostgreSQL store tests");
  }
  // Versions are numbers ("15", "16"): order by length first, then text.
  std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return found.back();
}

}  // namespace

postgres_server::postgres_server() : bin_dir_(find_bin_dir()), port_(find_free_loopback_port("postgres_server")) {
  std::string root_template = (std::filesystem::temp_directory_path() / "gwz-pg-XXXXXX").string();
  if (mkdtemp(root_template.data()) == nullptr) throw std::runtime_error("postgres_server: mkdtemp failed");
  root_dir_ = root_template;
  data_dir_ = root_dir_ + "/data";
  log_file_ = root_dir_ + "/server.log";

  as_postgres_user_ = geteuid() == 0;
  if (as_postgres_user_) {
    const passwd* pg = getpwnam("postgres");
    if (pg == nullptr) {
      std::filesystem::remove_all(root_dir_);
      throw std::runtime_error(
          "postgres_server: running as root but there is no 'postgres' system user to run initdb "
          "(the Debian postgresql package creates it)");
    }
    if (chown(root_dir_.c_str(), pg->pw_uid, pg->pw_gid) != 0) {
      std::filesystem::remove_all(root_dir_);
      throw std::runtime_error("postgres_server: cannot chown the temporary directory to postgres");
    }
  }
  try {
    run_tool("initdb", fmt::format("-D {} -U postgres -A trust -E UTF8 --locale=C --no-sync --no-instructions",
                                   shell_quote(data_dir_)));
    start();
  } catch (...) {
    std::filesystem::remove_all(root_dir_);
    throw;
  }
}

postgres_server::~postgres_server() {
  if (running_) {
    try {
      run_tool("pg_ctl", fmt::format("-D {} -m immediate -w stop", shell_quote(data_dir_)));
    } catch (...) {
      // Best effort: the directory is removed below either way.
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(root_dir_, ignored);
}

postgres_server& postgres_server::shared() {
  static postgres_server server;
  return server;
}

std::string postgres_server::url(std::string_view database) const {
  return fmt::format("postgres://postgres@127.0.0.1:{}/{}", port_, database);
}

std::string postgres_server::create_database() {
  start();  // in case a test stopped the server and failed before starting it again
  const std::string name = fmt::format("gwz_test_{}_{}", getpid(), next_database_++);
  const std::string admin_url = url("postgres");
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(admin_url.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error(std::string("postgres_server: cannot connect: ") + PQerrorMessage(conn.get()));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), ("CREATE DATABASE " + name).c_str()),
                                                       &PQclear);
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    throw std::runtime_error(std::string("postgres_server: CREATE DATABASE failed: ") + PQerrorMessage(conn.get()));
  }
  return url(name);
}

void postgres_server::start() {
  if (running_) return;
  const std::string options = fmt::format(
      "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off "
      "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
      port_, root_dir_);
  run_tool("pg_ctl", fmt::format("-D {} -l {} -w -t 60 -o {} start", shell_quote(data_dir_), shell_quote(log_file_),
                                 shell_quote(options)));
  running_ = true;
}

void postgres_server::stop() {
  if (!running_) return;
  run_tool("pg_ctl", fmt::format("-D {} -m fast -w -t 60 stop", shell_quote(data_dir_)));
  running_ = false;
}

void postgres_server::run_tool(std::string_view tool, const std::string& arguments) const {
  const std::string binary = bin_dir_ + "/" + std::string(tool);
  const std::string output_file = root_dir_ + "/last_command.out";
  std::string command = shell_quote(binary) + " " + arguments;
  if (as_postgres_user_) command = "runuser -u postgres -- " + command;
  command = "cd / && " + command + " >" + shell_quote(output_file) + " 2>&1";
  const int status = std::system(command.c_str());
  if (status != 0) {
    std::ifstream in(output_file);
    std::stringstream output;
    output << in.rdbuf();
    throw std::runtime_error(fmt::format("postgres_server: `{} {}` failed (status {}):\n{}\n{}", tool, arguments,
                                         status, output.str(), read_log_tail()));
  }
}

std::string postgres_server::read_log_tail() const {
  std::ifstream in(log_file_);
  std::stringstream all;
  all << in.rdbuf();
  const std::string text = all.str();
  return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

}  // namespace gatewayz::test_support
