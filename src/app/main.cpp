// gatewayz: the command line. Parses it, loads the config, has the
// composition root (app/compose.hpp) build the gateway and runs it.

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "app/admin_commands.hpp"
#include "app/compose.hpp"
#include "app/options.hpp"
#include "config/config.hpp"
#include "gateway/gateway.hpp"
#include "http/server.hpp"
#include "logging/log.hpp"
#include "mock/mock_provider.hpp"

#ifndef GATEWAYZ_VERSION
#define GATEWAYZ_VERSION "0.0.0"
#endif

namespace {

namespace asio = boost::asio;
using namespace gatewayz;

// Writes the bound port so that scripts and tests using port 0 can find it;
// rename makes the file appear complete or not at all.
void write_port_file(const std::string& path, std::uint16_t port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << '\n';
  }
  std::filesystem::rename(tmp, path);
}

// Runs `stop` on SIGINT/SIGTERM from a small thread of its own, so shard
// threads never run signal code.
class signal_watcher {
 public:
  explicit signal_watcher(std::function<void()> stop) : signals_(io_, SIGINT, SIGTERM), stop_(std::move(stop)) {
    signals_.async_wait([this](const boost::system::error_code& ec, int) {
      if (!ec) stop_();
    });
    thread_ = std::thread([this] { io_.run(); });
  }
  ~signal_watcher() {
    io_.stop();
    thread_.join();
  }

 private:
  asio::io_context io_;
  asio::signal_set signals_;
  std::function<void()> stop_;
  std::thread thread_;
};

// What storage.url names, without the URL (it may hold a password).
std::string_view storage_kind(std::string_view url) {
  if (url == "none") return "none";
  if (url.starts_with("sqlite://")) return "sqlite";
  return "postgres";
}

// `gatewayz serve`. Every line it prints is a log line in the configured
// format (JSON until the config is read): start-up, config errors, shutdown.
int serve(const std::string& config_path) {
  // Until the config names the format and level: JSON at info on stdout.
  auto boot = std::make_unique<logging::logger>(logging::logger_options{});
  auto result = config::load_config_file(config_path, config::process_env());
  if (!result.errors.empty()) {
    for (const auto& error : result.errors) {
      logging::event e{logging::level::error, "invalid configuration"};
      e.text("config_file", config_path).text("path", error.path).text("error", error.message);
      boot->write(e);
    }
    return 2;
  }
  auto cfg = std::move(*result.config);
  const auto server_cfg = cfg.server;
  const unsigned threads = gateway::resolve_threads(server_cfg.threads);
  boot.reset();  // its lines are written; the configured logger takes over
  logging::logger log{app::logger_options(cfg.logging, threads)};

  {
    logging::event e{logging::level::info, "starting"};
    e.text("version", GATEWAYZ_VERSION)
        .text("config_file", config_path)
        .text("listen", server_cfg.listen)
        .integer("threads", threads)
        .integer("providers", static_cast<std::int64_t>(cfg.providers.size()))
        .text("auth_mode", cfg.auth.mode)
        .text("storage", storage_kind(cfg.storage.url))
        .boolean("metrics", cfg.metrics.enabled)
        .text("log_level", cfg.logging.level)
        .boolean("loki", !cfg.logging.loki.url.empty());
    log.write(e);
  }
  if (const auto warning = app::open_gateway_warning(cfg)) log.write(logging::event{logging::level::warning, *warning});

  app::compose_options options;
  options.logger = &log;
  std::unique_ptr<app::gateway_app> gw;
  try {
    gw = std::make_unique<app::gateway_app>(std::move(cfg), std::move(options));
  } catch (const app::store_open_error& e) {
    // The store's URL may hold a password: the error names only the cause.
    logging::event line{logging::level::error, "cannot open the store"};
    line.text("error", e.what());
    log.write(line);
    return 1;
  } catch (const std::exception& e) {
    logging::event line{logging::level::error, "invalid configuration"};
    line.text("config_file", config_path).text("error", e.what());
    log.write(line);
    return 2;
  }
  const http::server_options server_options = gw->server_options();
  http::server server{server_options, gw->handler_factory()};
  try {
    server.listen();
  } catch (const std::exception& e) {
    logging::event line{logging::level::error, "cannot listen"};
    line.text("listen", server_cfg.listen).text("error", e.what());
    log.write(line);
    return 1;
  }
  if (server_cfg.port_file) write_port_file(*server_cfg.port_file, server.port());
  {
    logging::event e{logging::level::info, "listening"};
    e.text("host", server_options.host).integer("port", server.port()).integer("threads", server_options.threads);
    log.write(e);
  }

  const auto grace = std::chrono::milliseconds(static_cast<long>(server_cfg.shutdown_grace_s * 1000));
  {
    signal_watcher watcher{[&server, &log, grace] {
      logging::event e{logging::level::info, "shutting down, draining in-flight requests"};
      e.number("grace_s", std::chrono::duration<double>(grace).count());
      log.write(e);
      server.shutdown(grace);
    }};
    server.run();
  }
  // In-flight requests are done: write every queued ledger row (or spill it).
  logging::event stopped{logging::level::info, "stopped"};
  if (auto* ledger = gw->ledger()) {
    gw->stop_ledger();
    const auto ledger_stats = ledger->stats();
    stopped.integer("ledger_written", static_cast<std::int64_t>(ledger_stats.written))
        .integer("ledger_spilled", static_cast<std::int64_t>(ledger_stats.spilled))
        .integer("ledger_dropped", static_cast<std::int64_t>(ledger_stats.dropped));
  }
  gw.reset();
  log.write(stopped);
  log.stop();
  return 0;
}

int check_config(const std::string& path) {
  auto result = config::load_config_file(path, config::process_env());
  if (!result.errors.empty()) {
    std::cerr << fmt::format("{}: invalid configuration\n{}", path, config::format_errors(result.errors));
    return 2;
  }
  if (const auto warning = app::open_gateway_warning(*result.config)) std::cerr << *warning << '\n';
  // Composing the gateway validates what the schema cannot (e.g. base URLs),
  // without opening the store or starting any thread.
  try {
    app::compose_options options;
    options.open_store = false;
    options.start = false;
    app::gateway_app gw{std::move(*result.config), std::move(options)};
    std::cout << fmt::format("{}: OK ({} provider(s))\n", path, gw.config().providers.size());
  } catch (const std::exception& e) {
    std::cerr << fmt::format("{}: invalid configuration\n{}\n", path, e.what());
    return 2;
  }
  return 0;
}

// Every metric family the gateway composed from `path` declares, one per line:
// name, type, comma-separated label names, help, tab-separated. Hidden from
// --help: scripts/metrics-reference.sh turns it into docs/metrics.md.
int metrics_catalog(const std::string& path) {
  auto result = config::load_config_file(path, config::process_env());
  if (!result.errors.empty()) {
    std::cerr << fmt::format("{}: invalid configuration\n{}", path, config::format_errors(result.errors));
    return 2;
  }
  app::compose_options options;
  options.open_store = false;
  options.active_probes = false;
  options.start = false;
  app::gateway_app gw{std::move(*result.config), std::move(options)};
  for (const auto& family : gw.metrics().reg.describe()) {
    std::cout << fmt::format("{}\t{}\t{}\t{}\n", family.name, family.type, fmt::join(family.label_names, ","),
                             family.help);
  }
  return 0;
}

struct mock_cli {
  std::string listen = "127.0.0.1:9100";
  unsigned threads = 1;
  mock::behaviour behaviour;
  std::string failure = "500";
  std::string fixed_body_file;
  std::string tls_cert;
  std::string tls_key;
  std::string port_file;
  std::string api_key;
};

int run_mock(const mock_cli& cli) {
  mock::mock_options options;
  const auto colon = cli.listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "--listen must be host:port\n";
    return 2;
  }
  std::string host = cli.listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  options.server.host = host;
  try {
    options.server.port = static_cast<std::uint16_t>(std::stoul(cli.listen.substr(colon + 1)));
  } catch (const std::exception&) {
    std::cerr << "--listen port must be a number\n";
    return 2;
  }
  options.server.threads = cli.threads == 0 ? 1 : cli.threads;
  options.initial = cli.behaviour;
  if (!mock::parse_failure_mode(cli.failure, options.initial.failure)) {
    std::cerr << "--failure must be one of 500, 429, hang, reset, malformed\n";
    return 2;
  }
  if (!cli.fixed_body_file.empty()) {
    std::ifstream in(cli.fixed_body_file, std::ios::binary);
    if (!in) {
      std::cerr << fmt::format("cannot read {}\n", cli.fixed_body_file);
      return 2;
    }
    options.initial.fixed_body.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (!cli.tls_cert.empty() || !cli.tls_key.empty()) {
    options.server.tls = http::tls_files{cli.tls_cert, cli.tls_key};
  }
  if (!cli.port_file.empty()) options.port_file = cli.port_file;
  options.required_api_key = cli.api_key;
  mock::mock_provider provider{std::move(options)};
  provider.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A log reader that went away must not kill the gateway: writes to a
  // closed stdout fail with EPIPE instead.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"gatewayz: an observable, OpenAI-compatible gateway to many LLM providers"};
  app.require_subcommand(1);

  std::string serve_config;
  auto* serve_cmd = app.add_subcommand("serve", "Run the gateway");
  serve_cmd->add_option("-c,--config", serve_config, "YAML config file")->required();

  std::string check_path;
  auto* check_cmd = app.add_subcommand("check-config", "Validate a config file and exit (0 = valid)");
  check_cmd->add_option("file", check_path, "YAML config file")->required();

  auto* version_cmd = app.add_subcommand("version", "Print the version");

  std::string catalog_config;
  auto* catalog_cmd = app.add_subcommand("metrics-catalog", "Print every metric family (for docs/metrics.md)");
  catalog_cmd->group("");  // hidden: a tool for scripts/metrics-reference.sh
  catalog_cmd->add_option("-c,--config", catalog_config, "YAML config file")->required();

  mock_cli mock_args;
  auto* mock_cmd =
      app.add_subcommand("mock-provider", "Run a simulated provider speaking OpenAI's and Anthropic's APIs");
  mock_cmd->add_option("--listen", mock_args.listen, "host:port (port 0 = any)")->capture_default_str();
  mock_cmd->add_option("--threads", mock_args.threads, "server threads")->capture_default_str();
  mock_cmd->add_option("--latency-ms", mock_args.behaviour.latency_ms, "delay before answering");
  mock_cmd->add_option("--ttft-ms", mock_args.behaviour.ttft_ms, "streaming: delay before the first token");
  mock_cmd->add_option("--tokens-per-s", mock_args.behaviour.tokens_per_s, "streaming token rate (0 = unpaced)");
  mock_cmd->add_option("--output-tokens", mock_args.behaviour.output_tokens, "tokens per answer without max_tokens");
  mock_cmd->add_option("--error-rate", mock_args.behaviour.error_rate, "fraction of requests that fail")
      ->check(CLI::Range(0.0, 1.0));
  mock_cmd->add_option("--failure", mock_args.failure, "how failing requests fail: 500|429|hang|reset|malformed")
      ->capture_default_str();
  mock_cmd->add_option("--fixed-body", mock_args.fixed_body_file, "answer chat completions with this file's bytes");
  mock_cmd->add_option("--tls-cert", mock_args.tls_cert, "serve HTTPS with this certificate chain (PEM)");
  mock_cmd->add_option("--tls-key", mock_args.tls_key, "private key for --tls-cert (PEM)");
  mock_cmd->add_option("--port-file", mock_args.port_file, "write the bound port here");
  mock_cmd->add_option("--api-key", mock_args.api_key, "require this API key");

  app::admin_cli_state admin;
  app::add_admin_commands(app, admin);

  CLI11_PARSE(app, argc, argv);

  try {
    if (*serve_cmd) return serve(serve_config);
    if (*check_cmd) return check_config(check_path);
    if (*catalog_cmd) return metrics_catalog(catalog_config);
    if (*version_cmd) {
      std::cout << "gatewayz " << GATEWAYZ_VERSION << '\n';
      return 0;
    }
    if (*mock_cmd) return run_mock(mock_args);
    if (auto code = app::run_admin_commands(admin)) return *code;
  } catch (const std::exception& e) {
    std::cerr << "gatewayz: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
