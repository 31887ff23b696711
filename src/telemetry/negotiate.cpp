#include "telemetry/metrics.hpp"

#include "core/text.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

namespace gatewayz::telemetry {
namespace {

using text::iequals;
using text::trim;

std::string_view unquote(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// One Accept entry: does it ask for OpenMetrics 1.0.0 with a positive q?
// Only the unversioned and 1.0.0 forms qualify: 0.0.1 is a different
// exposition we do not produce, so a scraper asking only for it gets text.
bool accepts_openmetrics_1(std::string_view entry) {
  std::size_t semi = entry.find(';');
  if (!iequals(trim(entry.substr(0, semi)), "application/openmetrics-text")) return false;
  double q = 1.0;
  bool version_ok = true;
  while (semi != std::string_view::npos) {
    entry.remove_prefix(semi + 1);
    semi = entry.find(';');
    const std::string_view param = trim(entry.substr(0, semi));
    const std::size_t eq = param.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = trim(param.substr(0, eq));
    const std::string_view value = unquote(trim(param.substr(eq + 1)));
    if (iequals(key, "q")) {
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), q);
      if (ec != std::errc() || ptr != value.data() + value.size()) q = 0.0;  // unparseable: not acceptable
    } else if (iequals(key, "version")) {
      version_ok = value == "1.0.0";
    }
  }
  return version_ok && q > 0.0;
}

// The q of one Accept-Encoding entry's parameters ("; q=0.5"): 1 without one,
// 0 when unparseable.
double quality(std::string_view params) {
  double q = 1.0;
  std::size_t semi = 0;
  while (semi != std::string_view::npos) {
    params.remove_prefix(semi + 1);
    semi = params.find(';');
    const std::string_view param = trim(params.substr(0, semi));
    const std::size_t eq = param.find('=');
    if (eq == std::string_view::npos || !iequals(trim(param.substr(0, eq)), "q")) continue;
    const std::string_view value = trim(param.substr(eq + 1));
    const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), q);
    if (ec != std::errc() || ptr != value.data() + value.size()) q = 0.0;
  }
  return q;
}

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) {
  std::optional<double> gzip_q;
  std::optional<double> any_q;
  while (!accept_encoding.empty()) {
    const std::size_t comma = accept_encoding.find(',');
    const std::string_view entry = accept_encoding.substr(0, comma);
    const std::size_t semi = entry.find(';');
    const std::string_view coding = trim(entry.substr(0, semi));
    const double q = semi == std::string_view::npos ? 1.0 : quality(entry.substr(semi));
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
      gzip_q = std::max(gzip_q.value_or(0.0), q);
    } else if (coding == "*") {
      any_q = std::max(any_q.value_or(0.0), q);
    }
    if (comma == std::string_view::npos) break;
    accept_encoding.remove_prefix(comma + 1);
  }
  if (gzip_q) return *gzip_q > 0.0;
  return any_q.value_or(0.0) > 0.0;
}

std::string_view negotiate(std::string_view accept_header) {
  while (!accept_header.empty()) {
    const std::size_t comma = accept_header.find(',');
    if (accepts_openmetrics_1(accept_header.substr(0, comma))) return content_type_openmetrics;
    if (comma == std::string_view::npos) break;
    accept_header.remove_prefix(comma + 1);
  }
  return content_type_text;
}

}  // namespace gatewayz::telemetry
