#include "config/config.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "config/loader.hpp"

namespace gatewayz::config {

env_lookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const std::string key(name);
    // getenv is only unsafe against concurrent setenv, which the gateway never calls.
    const char* value = std::getenv(key.c_str());  // NOLINT(concurrency-mt-unsafe)
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

load_result load_config_string(std::string_view yaml, const env_lookup& env) { return detail::loader(env).load(yaml); }

load_result load_config_file(const std::string& path, const env_lookup& env) {
  const auto file_error = [&](std::string message) {
    load_result result;
    result.errors.push_back({"", fmt::format("config file {}: {}", path, message)});
    return result;
  };
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) return file_error("not found");
  if (std::filesystem::is_directory(status)) return file_error("is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return file_error("cannot be opened for reading");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return file_error("read failed");
  return load_config_string(text.str(), env);
}

std::string format_errors(const std::vector<config_error>& errors) {
  std::string out;
  for (const auto& error : errors) {
    if (!error.path.empty()) {
      out += error.path;
      out += ": ";
    }
    out += error.message;
    out += '\n';
  }
  return out;
}

}  // namespace gatewayz::config
