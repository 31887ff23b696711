// gw_stats_bench: GET /models/stats with a million requests in the window.
//
// Opens a fresh store, migrates it, writes N ledger rows (default 1,000,000)
// spread evenly over the last 24 hours across MODELS x PROVIDERS pairs with
// store::write_ledger in batches (default 8192 rows, the bulk-load case; the
// ledger writer's own transactions are up to 4096 rows), then times store.stats() for the 1h, 24h and 7d windows and
// render_models_stats() of the result. Reports the write throughput (rows/s,
// per-batch latency) and the stats latency (min / median / max of R runs).
//
//   build-release/bench/gw_stats_bench                     # SQLite, then PostgreSQL if installed
//   build-release/bench/gw_stats_bench --backend sqlite --rows 200000
//
// Options: --backend sqlite|postgres|all (all)  --rows N (1000000)  --batch N (8192)
//          --models N (20)  --providers N (5)  --runs N (7)  --dir DIR (/tmp, for the SQLite file)
//          --ids random|sequential (random: req_<24 random hex>, the worst case, like ids clients
//          choose with X-Request-ID; sequential: in insertion order, closer to the gateway's own)
//          --keep 1 (keep the SQLite file, to inspect it with sqlite3)
// PostgreSQL uses the throwaway server of the tests (tests/support/postgres_server.hpp:
// initdb + pg_ctl of the Debian postgresql package, fsync off); with --backend all
// it is skipped, with a message, when the server binaries are missing.

#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "deterministic_random.hpp"
#include "store/models_stats.hpp"
#include "store/open_store.hpp"
#include "support/postgres_server.hpp"

namespace {

using namespace gatewayz;
using steady = std::chrono::steady_clock;

struct options {
  std::string backend = "all";
  std::int64_t rows = 1'000'000;
  std::int64_t batch = 8192;  // ledger::writer_options::batch_max
  int models = 20;
  int providers = 5;
  int runs = 7;
  std::string dir = "/tmp";
  bool sequential_ids = false;
  bool keep = false;
};

// CPU time of the calling thread (user + system). The ledger writer thread
// shares one pinned core with the server in production, so the CPU it spends
// per row, not the wall time, is what a row costs request serving.
double thread_cpu_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double ms_since(steady::time_point start) {
  return std::chrono::duration<double, std::milli>(steady::now() - start).count();
}

using bench::lcg;

struct summary {
  double min = 0, median = 0, max = 0;
};

summary summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return {};
  return {v.front(), v[v.size() / 2], v.back()};
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void run(store::store& db, const options& o, std::string_view label) {
  std::cout << fmt::format(
      "== {}: {} ledger rows over the last 24 h, {} models x {} providers, batches of {}, {} request ids\n", label,
      o.rows, o.models, o.providers, o.batch, o.sequential_ids ? "sequential" : "random (the worst case)");
  db.migrate();
  const store::customer customer = db.create_customer("bench", 1'000'000 * store::nanos_per_usd);

  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  // Leave a minute of margin so every row stays inside the 24 h window while the benchmark runs.
  const std::int64_t span_ms = 24LL * 3600 * 1000 - 5 * 60 * 1000;
  const std::int64_t start_ms = now_ms - span_ms;
  const int pairs = o.models * o.providers;

  lcg rng{0x2545f4914f6cdd1dULL};
  std::mt19937_64 id_rng{42};
  std::vector<store::ledger_row> batch;
  batch.reserve(static_cast<std::size_t>(o.batch));
  std::vector<double> batch_ms;
  double write_cpu_ms = 0;
  std::int64_t written = 0;
  const auto write_start = steady::now();
  for (std::int64_t i = 0; i < o.rows; ++i) {
    store::ledger_row row;
    // Random ids (req_ + 24 hex digits, like ids clients choose with X-Request-ID) land
    // each insert on a random page of the ledger's primary key index: the worst case.
    // The gateway's own ids sort by time (core/request_id.cpp), like --ids sequential.
    row.request_id = o.sequential_ids
                         ? fmt::format("req_{:024}", i)
                         : fmt::format("req_{:016x}{:08x}", id_rng(), static_cast<std::uint32_t>(id_rng()));
    row.unix_ms = start_ms + i * span_ms / o.rows;  // in time order, as the gateway writes them
    row.customer_id = customer.id;
    row.key_id = 1;
    const int pair = static_cast<int>(rng.next01() * pairs);
    row.model = fmt::format("vendor/model-{:02}", pair % o.models);
    row.provider = fmt::format("provider-{}", pair / o.models);
    row.attempts = 1;
    const bool ok = rng.next01() >= 0.02;
    row.status = ok ? "success" : "error";
    row.http_status = ok ? 200 : 502;
    row.input_tokens = static_cast<std::int64_t>(10 + 2000 * rng.next01());
    row.output_tokens = ok ? static_cast<std::int64_t>(1 + 800 * rng.next01()) : 0;
    row.cost = (row.input_tokens * 150 + row.output_tokens * 600);  // nano-USD
    row.latency_ms = 40.0 + 4000.0 * rng.next01() * rng.next01() * rng.next01();
    row.streamed = rng.next01() < 0.5;
    if (row.streamed) row.ttft_ms = row.latency_ms * 0.2;
    batch.push_back(std::move(row));
    if (static_cast<std::int64_t>(batch.size()) == o.batch || i + 1 == o.rows) {
      const auto t = steady::now();
      const double cpu = thread_cpu_ms();
      written += static_cast<std::int64_t>(db.write_ledger(batch));
      write_cpu_ms += thread_cpu_ms() - cpu;
      batch_ms.push_back(ms_since(t));
      batch.clear();
    }
  }
  const double write_s = ms_since(write_start) / 1000.0;
  double write_only_ms = 0;
  for (const double b : batch_ms) write_only_ms += b;
  std::cout << fmt::format(
      "write_ledger: {} rows in {:.1f} s = {:.0f} rows/s (write_ledger calls alone: {:.0f} rows/s); "
      "per batch of {}: p50 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms\n",
      written, write_s, static_cast<double>(written) / write_s, static_cast<double>(written) / (write_only_ms / 1000.0),
      o.batch, percentile(batch_ms, 0.5), percentile(batch_ms, 0.99), percentile(batch_ms, 1.0));
  std::cout << fmt::format(
      "write_ledger CPU (calling thread, user + system): {:.2f} us/row = {:.0f} rows per CPU-second\n",
      write_cpu_ms * 1000.0 / static_cast<double>(std::max<std::int64_t>(written, 1)),
      static_cast<double>(written) / (write_cpu_ms / 1000.0));
  std::cout << fmt::format("ledger rows in the store: {}\n", db.count_ledger_rows());

  for (const std::string_view w : {"1h", "24h", "7d"}) {
    const auto window = store::parse_time_window(w);
    std::vector<double> stats_ms;
    std::vector<double> render_ms;
    std::vector<store::model_stats> result;
    std::size_t body_bytes = 0;
    for (int r = 0; r < o.runs; ++r) {
      auto t = steady::now();
      result = db.stats(window->length);
      stats_ms.push_back(ms_since(t));
      t = steady::now();
      const std::string body = store::render_models_stats(result, window->label, std::chrono::system_clock::now());
      render_ms.push_back(ms_since(t));
      body_bytes = body.size();
    }
    std::int64_t requests = 0;
    for (const auto& m : result) requests += m.total_requests;
    const summary s = summarize(stats_ms);
    const summary rs = summarize(render_ms);
    std::cout << fmt::format(
        "stats({:>3}): {:>8} requests in {:>3} lines: store.stats min {:8.2f} ms  median {:8.2f} ms  max {:8.2f} ms"
        " | render_models_stats median {:.3f} ms ({} bytes)\n",
        w, requests, result.size(), s.min, s.median, s.max, rs.median, body_bytes);
  }
}

bool postgres_installed() {
  return std::filesystem::exists("/usr/lib/postgresql") && !std::filesystem::is_empty("/usr/lib/postgresql");
}

int usage() {
  std::cerr << "usage: gw_stats_bench [--backend sqlite|postgres|all] [--rows N] [--batch N] [--models N]"
               " [--providers N] [--runs N] [--dir DIR] [--ids random|sequential]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string v = argv[++i];
    try {
      if (a == "--backend") o.backend = v;
      else if (a == "--rows") o.rows = std::stoll(v);
      else if (a == "--batch") o.batch = std::stoll(v);
      else if (a == "--models") o.models = std::stoi(v);
      else if (a == "--providers") o.providers = std::stoi(v);
      else if (a == "--runs") o.runs = std::stoi(v);
      else if (a == "--dir") o.dir = v;
      else if (a == "--keep") o.keep = v == "1";
      else if (a == "--ids") {
        if (v != "random" && v != "sequential") return usage();
        o.sequential_ids = v == "sequential";
      } else return usage();
    } catch (const std::exception&) {
      return usage();
    }
  }
  if (o.rows <= 0 || o.batch <= 0 || o.models <= 0 || o.providers <= 0 || o.runs <= 0) return usage();
  if (o.backend != "sqlite" && o.backend != "postgres" && o.backend != "all") return usage();

  try {
    if (o.backend == "sqlite" || o.backend == "all") {
      const std::string path = fmt::format("{}/gw-stats-bench-{}.db", o.dir, ::getpid());
      {
        auto db = store::open_store("sqlite://" + path, nullptr);
        run(*db, o, "sqlite " + path);
      }
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(path, ec);
      if (!ec) std::cout << fmt::format("sqlite file: {:.1f} MB\n", static_cast<double>(bytes) / 1e6);
      if (o.keep) {
        std::cout << "kept " << path << '\n';
      } else {
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
      }
    }
    if (o.backend == "postgres" || o.backend == "all") {
      if (!postgres_installed()) {
        std::cout << "== postgres: skipped (no server binaries under /usr/lib/postgresql)\n";
      } else {
        test_support::postgres_server server;
        const std::string url = server.create_database();
        auto db = store::open_store(url, nullptr);
        run(*db, o, fmt::format("postgres 127.0.0.1:{} (fsync off)", server.port()));
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "gw_stats_bench: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
