#include "telemetry/metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <system_error>

namespace gatewayz::telemetry {
namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// System boot time in epoch seconds (`btime` in /proc/stat): /proc/self/stat
// gives the start time only as clock ticks since boot.
double boot_time_seconds() {
  std::istringstream in(read_file("/proc/stat"));
  std::string key;
  double value = 0.0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0.0;
}

}  // namespace

process_collector::process_collector(registry& reg)
    : resident_memory_(reg.gauge("process_resident_memory_bytes", "Resident memory size in bytes.").series()),
      virtual_memory_(reg.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.").series()),
      cpu_seconds_(
          reg.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.").series()),
      start_time_(
          reg.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.").series()),
      open_fds_(reg.gauge("process_open_fds", "Number of open file descriptors.").series()),
      max_fds_(reg.gauge("process_max_fds", "Maximum number of open file descriptors.").series()) {}

void process_collector::collect() const {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_size = static_cast<double>(sysconf(_SC_PAGESIZE));

  // /proc/self/stat: the command name (field 2) is parenthesised and may hold
  // spaces, so fields are counted from the last ')'.
  const std::string stat = read_file("/proc/self/stat");
  const std::size_t close = stat.rfind(')');
  if (close != std::string::npos && ticks > 0) {
    std::istringstream in(stat.substr(close + 1));
    // Fields 3.. in order; we need utime(14), stime(15), starttime(22), vsize(23), rss(24).
    std::string field;
    double utime = 0, stime = 0, starttime = 0, vsize = 0, rss = 0;
    bool complete = false;
    for (int index = 3; in >> field; ++index) {
      double v = 0;
      std::from_chars(field.data(), field.data() + field.size(), v);
      if (index == 14) utime = v;
      if (index == 15) stime = v;
      if (index == 22) starttime = v;
      if (index == 23) vsize = v;
      if (index == 24) {
        rss = v;
        complete = true;
        break;
      }
    }
    if (complete) {
      cpu_seconds_.set_mirrored_total((utime + stime) / ticks);
      virtual_memory_.set(vsize);
      resident_memory_.set(rss * page_size);
      start_time_.set(boot_time_seconds() + starttime / ticks);
    }
  }

  std::error_code ec;
  double open = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++open;
  // The iterator's own descriptor is closed again by now, but was counted.
  if (!ec && open > 0) open_fds_.set(open - 1);

  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    max_fds_.set(limit.rlim_cur == RLIM_INFINITY ? std::numeric_limits<double>::infinity()
                                                 : static_cast<double>(limit.rlim_cur));
  }
}

}  // namespace gatewayz::telemetry
