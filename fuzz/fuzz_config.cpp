// Fuzzes the config loader (YAML text => gateway_config or a list of errors).
//
// Input: the YAML document. The environment is a fixed function: variables
// whose name starts with 'V' are set (to a value derived from the name),
// every other variable is unset, so "${VAR}" and "${VAR:-default}" are
// exercised on both branches.
//
// Invariants:
//  - no crash, sanitizer report or escaping exception: bad input is only
//    ever reported;
//  - exactly one of config / errors; every error has a message and a
//    message stays on one line;
//  - a loaded config has at least one provider, each named, and models with
//    ids and upstream names;
//  - loading is deterministic (the same text gives the same errors);
//  - secrets are not echoed: a literal providers[].api_key, auth.admin_key,
//    auth.read_token or metrics.bearer_token value (8+ characters, letters
//    digits and dashes, found once in the text) is in no error message.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/config.hpp"

#include "fuzz_check.hpp"

namespace {

using namespace gatewayz;

std::optional<std::string> environment(std::string_view name) {
  if (!name.empty() && name.front() == 'V') return "value-of-" + std::string(name);
  return std::nullopt;
}

bool secret_like(const std::string& value, std::string_view text) {
  if (value.size() < 8) return false;
  for (const char c : value) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  const std::size_t first = text.find(value);
  return first != std::string_view::npos && text.find(value, first + 1) == std::string_view::npos;
}

// Literal secret values in the document, read with yaml-cpp directly
// (best effort: a document yaml-cpp rejects has none).
std::vector<std::string> literal_secrets(std::string_view text) {
  std::vector<std::string> out;
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsMap()) return out;
    const auto take = [&](const YAML::Node& parent, const char* key) {
      if (!parent.IsMap()) return;
      const YAML::Node value = parent[key];
      if (value.IsScalar() && secret_like(value.Scalar(), text)) out.push_back(value.Scalar());
    };
    take(root["auth"], "admin_key");
    take(root["auth"], "read_token");
    take(root["metrics"], "bearer_token");
    const YAML::Node providers = root["providers"];
    if (providers.IsSequence()) {
      for (const YAML::Node& p : providers) take(p, "api_key");
    }
  } catch (const std::exception&) {
    out.clear();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return 0;  // yaml-cpp is recursive; the loader reads files of a few KiB
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const config::env_lookup env = environment;
  const config::load_result result = config::load_config_string(text, env);
  FUZZ_CHECK(result.config.has_value() == result.errors.empty());
  for (const config::config_error& e : result.errors) {
    FUZZ_CHECK(!e.message.empty());
    FUZZ_CHECK(e.message.find('\n') == std::string::npos);
  }
  if (result.config) {
    const config::gateway_config& c = *result.config;
    FUZZ_CHECK(!c.providers.empty());
    for (const config::provider_config& p : c.providers) {
      FUZZ_CHECK(!p.name.empty());
      for (const config::model_config& m : p.models) FUZZ_CHECK(!m.id.empty() && !m.upstream.empty());
    }
  }

  const config::load_result again = config::load_config_string(text, env);
  FUZZ_CHECK(again.errors.size() == result.errors.size());
  for (std::size_t i = 0; i < again.errors.size(); ++i) {
    FUZZ_CHECK(again.errors[i].path == result.errors[i].path && again.errors[i].message == result.errors[i].message);
  }

  const std::string all = config::format_errors(result.errors);
  for (const std::string& secret : literal_secrets(text)) FUZZ_CHECK(all.find(secret) == std::string::npos);
  return 0;
}
