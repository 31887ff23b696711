#include "support/redis_server.hpp"

#include "support/server_process.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace gatewayz::test_support {
namespace {

constexpr const char* server_binary = "/usr/bin/redis-server";
constexpr const char* cli_binary = "/usr/bin/redis-cli";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  return all.str();
}

}  // namespace

redis_server::redis_server(redis_server_options options) : options_(std::move(options)) {
  if (access(server_binary, X_OK) != 0 || access(cli_binary, X_OK) != 0) {
    throw std::runtime_error(
        "redis_server: /usr/bin/redis-server or redis-cli not found: install the Debian 'redis-server' package "
        "(scripts/install-deps.sh) to run the Redis tests");
  }
  std::string root_template = (std::filesystem::temp_directory_path() / "gwz-redis-XXXXXX").string();
  if (mkdtemp(root_template.data()) == nullptr) throw std::runtime_error("redis_server: mkdtemp failed");
  root_dir_ = root_template;
  port_ = find_free_loopback_port("redis_server");
  try {
    start();
  } catch (...) {
    std::filesystem::remove_all(root_dir_);
    throw;
  }
}

redis_server::~redis_server() {
  if (pid_ > 0) {
    ::kill(pid_, SIGCONT);
    stop();
  }
  std::error_code ignored;
  std::filesystem::remove_all(root_dir_, ignored);
}

std::string redis_server::url(int database) const {
  if (options_.password.empty()) return fmt::format("redis://127.0.0.1:{}/{}", port_, database);
  return fmt::format("redis://:{}@127.0.0.1:{}/{}", options_.password, port_, database);
}

void redis_server::start() {
  if (pid_ > 0) return;
  std::vector<std::string> args = {server_binary, "--bind",      "127.0.0.1", "--port",    std::to_string(port_),
                                   "--dir",       root_dir_,     "--save",    "",          "--appendonly",
                                   "no",          "--daemonize", "no",        "--logfile", root_dir_ + "/server.log"};
  if (!options_.password.empty()) {
    args.push_back("--requirepass");
    args.push_back(options_.password);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("redis_server: fork failed");
  if (pid == 0) {
    // Dies with the test process, however that ends.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // Not the test's sockets: a listener kept open by the child would outlive the test's own close.
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    ::execv(server_binary, argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < give_up) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("redis_server: redis-server exited at start:\n" + read_file(root_dir_ + "/server.log"));
    }
    if (cli("PING") == "PONG") return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop();
  throw std::runtime_error("redis_server: redis-server did not answer PING within 20 s");
}

void redis_server::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void redis_server::pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void redis_server::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

std::string redis_server::cli(const std::string& arguments) const {
  std::string command = fmt::format("{} -h 127.0.0.1 -p {} ", cli_binary, port_);
  if (!options_.password.empty()) command += "--no-auth-warning -a " + shell_quote(options_.password) + " ";
  command += arguments + " 2>&1";
  std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(command.c_str(), "r"), &pclose);
  if (!pipe) throw std::runtime_error("redis_server: popen failed");
  std::string out;
  std::array<char, 4096> chunk{};
  while (const std::size_t n = std::fread(chunk.data(), 1, chunk.size(), pipe.get())) out.append(chunk.data(), n);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace gatewayz::test_support
