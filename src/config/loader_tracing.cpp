// The tracing section and the OpenTelemetry SDK environment variables that
// override it:
//   OTEL_SDK_DISABLED=true                      tracing off
//   OTEL_TRACES_EXPORTER=none | otlp            off / on
//   OTEL_EXPORTER_OTLP_ENDPOINT                 base URL (turns tracing on)
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT          full URL, used as is (turns tracing on)
//   OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL        http/protobuf | http/json (grpc is refused)
//   OTEL_EXPORTER_OTLP_[TRACES_]HEADERS         k=v,k2=v2 (percent-decoded), added over tracing.headers
//   OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION     gzip | none
//   OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT         export timeout, ms
//   OTEL_SERVICE_NAME                           service.name (wins over OTEL_RESOURCE_ATTRIBUTES)
//   OTEL_RESOURCE_ATTRIBUTES                    k=v,... (percent-decoded; the whole variable is
//                                               rejected when one entry is malformed)
//   OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG
//   OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT, OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE
// A malformed variable is a config error under the variable's name.

#include <fmt/format.h>

#include "config/loader.hpp"

namespace gatewayz::config::detail {

namespace {

constexpr std::string_view samplers[] = {"always_on",
                                         "always_off",
                                         "traceidratio",
                                         "parentbased_always_on",
                                         "parentbased_always_off",
                                         "parentbased_traceidratio"};

bool known_sampler(std::string_view name) {
  for (const auto s : samplers) {
    if (s == name) return true;
  }
  return false;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(s[i + 1]);
    const int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// "k1=v1,k2=v2" (W3C baggage style, no properties); nullopt when malformed.
std::optional<std::map<std::string, std::string>> key_values(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto entry = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (trim(entry).empty()) continue;
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    auto key = percent_decode(trim(entry.substr(0, eq)));
    auto value = percent_decode(trim(entry.substr(eq + 1)));
    if (!key || !value || key->empty()) return std::nullopt;
    out[*key] = *value;
  }
  return out;
}

template <class T>
std::optional<T> unsigned_number(std::string_view text, T minimum) {
  T value{};
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || value < minimum) return std::nullopt;
  return value;
}

}  // namespace

void loader::load_tracing(const YAML::Node& node, const std::string& path, tracing_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "enabled") {
      read_bool(value, at, out.enabled);
    } else if (key == "otlp_endpoint") {
      read_nonempty(value, at, out.otlp_endpoint);
    } else if (key == "protocol") {
      std::string protocol;
      if (!read_nonempty(value, at, protocol)) return true;
      if (protocol != "http/protobuf" && protocol != "http/json") {
        fail(at, fmt::format("must be http/protobuf or http/json (got {})", shown(protocol)));
      } else {
        out.protocol = protocol;
      }
    } else if (key == "compression") {
      std::string compression;
      if (!read_nonempty(value, at, compression)) return true;
      if (compression != "gzip" && compression != "none") {
        fail(at, fmt::format("must be gzip or none (got {})", shown(compression)));
      } else {
        out.gzip = compression == "gzip";
      }
    } else if (key == "sampler") {
      std::string sampler;
      if (!read_nonempty(value, at, sampler)) return true;
      if (!known_sampler(sampler)) {
        fail(at, fmt::format("must be one of always_on, always_off, traceidratio, parentbased_always_on, "
                             "parentbased_always_off, parentbased_traceidratio (got {})",
                             shown(sampler)));
      } else {
        out.sampler = sampler;
      }
    } else if (key == "sample_ratio") {
      read_ratio(value, at, out.sample_ratio);
    } else if (key == "service_name") {
      read_nonempty(value, at, out.service_name);
    } else if (key == "environment") {
      read_string(value, at, out.environment);
    } else if (key == "headers") {
      load_headers(value, at, out.headers);
    } else if (key == "max_queue_size") {
      read_integer<std::size_t>(value, at, out.max_queue_size, 1);
    } else if (key == "schedule_delay_ms") {
      read_integer(value, at, out.schedule_delay_ms, 1U);
    } else if (key == "max_export_batch_size") {
      read_integer<std::size_t>(value, at, out.max_export_batch_size, 1);
    } else if (key == "export_timeout_ms") {
      read_integer(value, at, out.export_timeout_ms, 1U);
    } else {
      return false;
    }
    return true;
  });
  if (out.max_export_batch_size > out.max_queue_size) {
    fail(child_path(path, "max_export_batch_size"), "must not exceed max_queue_size");
  }
}

void loader::apply_otel_environment(tracing_config& out) {
  const auto env = [&](std::string_view name) -> std::optional<std::string> {
    auto v = lookup(name);
    if (v && trim(*v).empty()) return std::nullopt;  // set but empty: as if unset
    if (v) *v = trim(*v);
    return v;
  };
  // The signal-specific variable wins over the general one.
  const auto either = [&](std::string_view traces,
                          std::string_view general) -> std::pair<std::string, std::optional<std::string>> {
    if (auto v = env(traces)) return {std::string(traces), v};
    return {std::string(general), env(general)};
  };

  if (auto v = env("OTEL_EXPORTER_OTLP_ENDPOINT")) {
    out.otlp_endpoint = *v;
    out.enabled = true;
  }
  if (auto v = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
    out.traces_endpoint = *v;
    out.enabled = true;
  }
  if (auto [name, v] = either("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"); v) {
    if (*v == "http/protobuf" || *v == "http/json") {
      out.protocol = *v;
    } else {
      fail(name, fmt::format("must be http/protobuf or http/json (got {}; grpc is not supported)", shown(*v)));
    }
  }
  if (auto [name, v] = either("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"); v) {
    if (*v == "gzip" || *v == "none") {
      out.gzip = *v == "gzip";
    } else {
      fail(name, fmt::format("must be gzip or none (got {})", shown(*v)));
    }
  }
  if (auto [name, v] = either("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"); v) {
    if (auto ms = unsigned_number<unsigned>(*v, 0)) {
      out.export_timeout_ms = *ms == 0 ? 30000 : *ms;  // 0: no limit; a bounded 30 s here
    } else {
      fail(name, "must be a whole number of milliseconds");
    }
  }
  for (const auto* name : {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}) {
    if (auto v = env(name)) {
      // Values may be secrets: the message never shows them.
      auto parsed = key_values(*v);
      if (!parsed) {
        fail(name, "must be key=value pairs separated by commas");
        continue;
      }
      for (auto& [k, value] : *parsed) out.headers[k] = std::move(value);
    }
  }
  if (auto v = env("OTEL_RESOURCE_ATTRIBUTES")) {
    if (auto parsed = key_values(*v)) {
      for (auto& [k, value] : *parsed) {
        if (k == "service.name") {
          out.service_name = value;
        } else if (k == "deployment.environment") {
          out.environment = value;
        } else {
          out.resource_attributes[k] = std::move(value);
        }
      }
    } else {
      fail("OTEL_RESOURCE_ATTRIBUTES", "must be key=value pairs separated by commas (percent-encoded)");
    }
  }
  if (auto v = env("OTEL_SERVICE_NAME")) out.service_name = *v;
  if (auto v = env("OTEL_TRACES_SAMPLER")) {
    if (known_sampler(*v)) {
      out.sampler = *v;
    } else {
      fail("OTEL_TRACES_SAMPLER", fmt::format("unsupported sampler {}", shown(*v)));
    }
  }
  if (auto v = env("OTEL_TRACES_SAMPLER_ARG")) {
    char* end = nullptr;
    const double ratio = std::strtod(v->c_str(), &end);
    if (end != v->c_str() + v->size() || !(ratio >= 0.0 && ratio <= 1.0)) {
      fail("OTEL_TRACES_SAMPLER_ARG", "must be a probability between 0 and 1");
    } else {
      out.sample_ratio = ratio;
    }
  }
  const auto bsp = [&](const char* name, auto& field, auto minimum) {
    if (auto v = env(name)) {
      using T = std::remove_reference_t<decltype(field)>;
      if (auto n = unsigned_number<T>(*v, static_cast<T>(minimum))) {
        field = *n;
      } else {
        fail(name, fmt::format("must be a whole number of at least {}", minimum));
      }
    }
  };
  bsp("OTEL_BSP_SCHEDULE_DELAY", out.schedule_delay_ms, 1U);
  bsp("OTEL_BSP_EXPORT_TIMEOUT", out.export_timeout_ms, 1U);
  bsp("OTEL_BSP_MAX_QUEUE_SIZE", out.max_queue_size, std::size_t{1});
  bsp("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", out.max_export_batch_size, std::size_t{1});
  if (auto v = env("OTEL_TRACES_EXPORTER")) {
    if (*v == "none") {
      out.enabled = false;
    } else if (*v == "otlp") {
      out.enabled = true;
    } else {
      fail("OTEL_TRACES_EXPORTER", fmt::format("must be otlp or none (got {})", shown(*v)));
    }
  }
  if (auto v = env("OTEL_SDK_DISABLED"); v && (*v == "true" || *v == "TRUE" || *v == "True")) out.enabled = false;
  if (out.max_export_batch_size > out.max_queue_size) out.max_export_batch_size = out.max_queue_size;
  // The endpoint must be a URL the exporter can POST to.
  const auto& url = out.traces_endpoint.empty() ? out.otlp_endpoint : out.traces_endpoint;
  if (out.enabled && !url.starts_with("http://") && !url.starts_with("https://")) {
    fail(out.traces_endpoint.empty() ? "tracing.otlp_endpoint" : "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
         "must start with http:// or https://");
  }
}

}  // namespace gatewayz::config::detail
