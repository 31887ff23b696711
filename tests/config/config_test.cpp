#include "config/config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace gatewayz::config {
namespace {

namespace fs = std::filesystem;

// Tests inject variables instead of calling setenv, so they stay independent
// of the process environment and of each other.
env_lookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    const auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const env_lookup no_env = env_of({});

// "path: message" lines, which is what a user sees and what the tests pin.
std::vector<std::string> error_lines(const load_result& result) {
  std::vector<std::string> lines;
  for (const auto& error : result.errors) lines.push_back(format_errors({error}));
  for (auto& line : lines) line.pop_back();  // the trailing '\n'
  return lines;
}

std::vector<std::string> errors_of(std::string_view yaml, const env_lookup& env = no_env) {
  const auto result = load_config_string(yaml, env);
  EXPECT_FALSE(result.config.has_value()) << "config loaded despite errors";
  return error_lines(result);
}

gateway_config parse_ok(std::string_view yaml, const env_lookup& env = no_env) {
  const auto result = load_config_string(yaml, env);
  EXPECT_TRUE(result.errors.empty()) << format_errors(result.errors);
  EXPECT_TRUE(result.config.has_value());
  return result.config.value_or(gateway_config{});
}

// Exactly one error, at `path`, whose message is `message`.
void expect_single_error(std::string_view yaml, std::string_view path, std::string_view message,
                         const env_lookup& env = no_env) {
  const auto result = load_config_string(yaml, env);
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.errors.size(), 1U) << format_errors(result.errors);
  EXPECT_EQ(result.errors[0].path, path);
  EXPECT_EQ(result.errors[0].message, message);
}

// Exactly one error, at `path`, whose message starts with `prefix`.
void expect_error_at(std::string_view yaml, std::string_view path, std::string_view prefix,
                     const env_lookup& env = no_env) {
  const auto result = load_config_string(yaml, env);
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.errors.size(), 1U) << format_errors(result.errors);
  EXPECT_EQ(result.errors[0].path, path);
  EXPECT_EQ(result.errors[0].message.substr(0, prefix.size()), prefix) << result.errors[0].message;
}

// A valid provider whose first line can be extended with more provider keys.
std::string provider_with(std::string_view extra) {
  return std::string(R"(providers:
  - name: p
    base_url: "http://127.0.0.1:9100/v1"
    models:
      - id: m
)") + std::string(extra);
}

// Adds `server_yaml` under a server section next to a valid provider.
std::string server_with(std::string_view server_yaml) {
  return "server:\n" + std::string(server_yaml) + provider_with("");
}

constexpr std::string_view issue_example = R"(server:
  listen: "127.0.0.1:8080"
  threads: 0                 # 0 = one per core
auth:
  mode: none                 # none | keys
providers:
  - name: openrouter
    kind: openai
    base_url: "https://openrouter.ai/api/v1"
    api_key: "${OPENROUTER_API_KEY}"
    timeout_s: 120
    models:
      - id: "anthropic/claude-opus-4.5"
        upstream: "anthropic/claude-opus-4.5"
        input_per_million: 15.0
        output_per_million: 75.0
)";

TEST(ConfigLoad, IssueExampleParses) {
  const auto config = parse_ok(issue_example, env_of({{"OPENROUTER_API_KEY", "sk-or-123"}}));
  EXPECT_EQ(config.server.listen, "127.0.0.1:8080");
  EXPECT_EQ(config.server.host, "127.0.0.1");
  EXPECT_EQ(config.server.port, 8080);
  EXPECT_EQ(config.server.threads, 0U);
  EXPECT_EQ(config.auth.mode, "none");
  ASSERT_EQ(config.providers.size(), 1U);
  const auto& provider = config.providers[0];
  EXPECT_EQ(provider.name, "openrouter");
  EXPECT_EQ(provider.kind, provider_kind::openai);
  EXPECT_EQ(provider.base_url, "https://openrouter.ai/api/v1");
  EXPECT_EQ(provider.api_key, "sk-or-123");
  EXPECT_DOUBLE_EQ(provider.timeout_s, 120);
  ASSERT_EQ(provider.models.size(), 1U);
  EXPECT_EQ(provider.models[0].id, "anthropic/claude-opus-4.5");
  EXPECT_EQ(provider.models[0].upstream, "anthropic/claude-opus-4.5");
  EXPECT_DOUBLE_EQ(provider.models[0].input_per_million, 15.0);
  EXPECT_DOUBLE_EQ(provider.models[0].output_per_million, 75.0);
}

TEST(ConfigLoad, IssueExampleWithoutItsVariableNamesTheVariable) {
  expect_single_error(issue_example, "providers[0].api_key", "environment variable OPENROUTER_API_KEY is not set");
}

TEST(ConfigLoad, OmittedKeysKeepTheDocumentedDefaults) {
  const auto config = parse_ok(provider_with(""));
  const server_config server_defaults;
  EXPECT_EQ(config.server.listen, server_defaults.listen);
  EXPECT_EQ(config.server.host, "127.0.0.1");
  EXPECT_EQ(config.server.port, 8080);
  EXPECT_EQ(config.server.max_body_bytes, server_defaults.max_body_bytes);
  EXPECT_EQ(config.server.max_attempts, 3U);
  EXPECT_FALSE(config.server.port_file.has_value());
  EXPECT_EQ(config.auth.mode, "none");
  const auto& provider = config.providers.at(0);
  EXPECT_EQ(provider.kind, provider_kind::openai);
  EXPECT_TRUE(provider.api_key.empty());
  EXPECT_TRUE(provider.verify_tls);
  EXPECT_EQ(provider.anthropic_version, "2023-06-01");
  EXPECT_TRUE(provider.headers.empty());
  EXPECT_EQ(provider.models.at(0).upstream, "m");  // upstream defaults to id
  EXPECT_DOUBLE_EQ(provider.models.at(0).input_per_million, 0);
}

TEST(ConfigLoad, EveryDocumentedKeyIsAccepted) {
  const fs::path ca = fs::path(::testing::TempDir()) / ("gw_config_ca_" + std::to_string(::getpid()));
  std::ofstream(ca) << "not really a PEM, existence is what config checks\n";
  const std::string yaml = R"(server:
  listen: "[::1]:9000"
  threads: 4
  max_body_bytes: 1000
  max_header_bytes: 2000
  max_connections: 3000
  max_connections_per_ip: 100
  header_timeout_s: 1.5
  body_timeout_s: 2
  idle_timeout_s: 3
  request_timeout_s: 4
  shutdown_grace_s: 0
  max_attempts: 5
  port_file: /tmp/port
auth:
  mode: keys
  admin_key: "${ADMIN}"
providers:
  - name: anthropic.direct_1
    kind: anthropic
    base_url: "https://api.anthropic.com/v1/"
    api_key: "${ANTHROPIC_API_KEY}"
    timeout_s: 60
    connect_timeout_s: 5
    max_idle_connections: 0
    max_response_bytes: 123456
    verify_tls: false
    ca_file: ")" + ca.string() +
                           R"("
    anthropic_version: "2024-01-01"
    headers:
      X-Title: gatewayz
      HTTP-Referer: "https://example.com"
    models:
      - id: claude-sonnet-4.5
        upstream: claude-sonnet-4-5
        input_per_million: 3
        output_per_million: 15
)";
  const auto config = parse_ok(yaml, env_of({{"ADMIN", "admin-secret"}, {"ANTHROPIC_API_KEY", "sk-ant"}}));
  fs::remove(ca);
  EXPECT_EQ(config.server.listen, "[::1]:9000");
  EXPECT_EQ(config.server.host, "::1");
  EXPECT_EQ(config.server.port, 9000);
  EXPECT_EQ(config.server.threads, 4U);
  EXPECT_EQ(config.server.max_body_bytes, 1000U);
  EXPECT_EQ(config.server.max_header_bytes, 2000U);
  EXPECT_EQ(config.server.max_connections, 3000U);
  EXPECT_EQ(config.server.max_connections_per_ip, 100U);
  EXPECT_DOUBLE_EQ(config.server.header_timeout_s, 1.5);
  EXPECT_DOUBLE_EQ(config.server.body_timeout_s, 2);
  EXPECT_DOUBLE_EQ(config.server.idle_timeout_s, 3);
  EXPECT_DOUBLE_EQ(config.server.request_timeout_s, 4);
  EXPECT_DOUBLE_EQ(config.server.shutdown_grace_s, 0);
  EXPECT_EQ(config.server.max_attempts, 5U);
  EXPECT_EQ(config.server.port_file, "/tmp/port");
  EXPECT_EQ(config.auth.mode, "keys");
  EXPECT_EQ(config.auth.admin_key, "admin-secret");
  const auto& provider = config.providers.at(0);
  EXPECT_EQ(provider.name, "anthropic.direct_1");
  EXPECT_EQ(provider.kind, provider_kind::anthropic);
  EXPECT_EQ(provider.base_url, "https://api.anthropic.com/v1/");
  EXPECT_EQ(provider.api_key, "sk-ant");
  EXPECT_DOUBLE_EQ(provider.timeout_s, 60);
  EXPECT_DOUBLE_EQ(provider.connect_timeout_s, 5);
  EXPECT_EQ(provider.max_idle_connections, 0U);
  EXPECT_EQ(provider.max_response_bytes, 123456U);
  EXPECT_FALSE(provider.verify_tls);
  EXPECT_EQ(provider.ca_file, ca.string());
  EXPECT_EQ(provider.anthropic_version, "2024-01-01");
  const std::map<std::string, std::string> headers{{"HTTP-Referer", "https://example.com"}, {"X-Title", "gatewayz"}};
  EXPECT_EQ(provider.headers, headers);
  EXPECT_EQ(provider.models.at(0).upstream, "claude-sonnet-4-5");
  EXPECT_DOUBLE_EQ(provider.models.at(0).output_per_million, 15);
}

TEST(ConfigLoad, SameModelFromTwoProvidersIsFailoverNotDuplication) {
  const auto config = parse_ok(R"(providers:
  - name: a
    base_url: "http://a.example/v1"
    models: [{id: shared}]
  - name: b
    base_url: "http://b.example/v1"
    models: [{id: shared}]
)");
  EXPECT_EQ(config.providers.size(), 2U);
}

// --- environment expansion ---

std::string api_key_after_expansion(std::string_view value, const env_lookup& env) {
  const auto config = parse_ok(provider_with("    api_key: '" + std::string(value) + "'\n"), env);
  return config.providers.empty() ? std::string() : config.providers[0].api_key;
}

TEST(ConfigEnv, ExpandsSeveralReferencesAnywhereInAScalar) {
  const auto env = env_of({{"A", "one"}, {"B", "two"}});
  EXPECT_EQ(api_key_after_expansion("${A}", env), "one");
  EXPECT_EQ(api_key_after_expansion("x-${A}-${B}-y", env), "x-one-two-y");
  EXPECT_EQ(api_key_after_expansion("${A}${A}", env), "oneone");
}

TEST(ConfigEnv, DefaultAppliesWhenUnsetOrEmpty) {
  const auto env = env_of({{"SET", "value"}, {"EMPTY", ""}});
  EXPECT_EQ(api_key_after_expansion("${UNSET:-fallback}", env), "fallback");
  EXPECT_EQ(api_key_after_expansion("${EMPTY:-fallback}", env), "fallback");
  EXPECT_EQ(api_key_after_expansion("${SET:-fallback}", env), "value");
  EXPECT_EQ(api_key_after_expansion("${UNSET:-}", env), "");
  EXPECT_EQ(api_key_after_expansion("${UNSET:-a:-b}", env), "a:-b");
  EXPECT_EQ(api_key_after_expansion("${EMPTY}", env), "");  // set-but-empty is not missing
}

TEST(ConfigEnv, DollarSignsOutsideReferencesAreLiteral) {
  const auto env = env_of({{"A", "one"}});
  EXPECT_EQ(api_key_after_expansion("pa$word$", env), "pa$word$");
  EXPECT_EQ(api_key_after_expansion("$$", env), "$$");
  EXPECT_EQ(api_key_after_expansion("$${A}", env), "$one");
  EXPECT_EQ(api_key_after_expansion("{A}$", env), "{A}$");
}

TEST(ConfigEnv, ExpandedValuesAreNotExpandedAgain) {
  EXPECT_EQ(api_key_after_expansion("${A}", env_of({{"A", "${B}"}, {"B", "leak"}})), "${B}");
}

TEST(ConfigEnv, ExpansionAppliesToTypedValues) {
  const auto config = parse_ok(server_with("  listen: '${HOST:-0.0.0.0}:${PORT}'\n  threads: '${THREADS:-2}'\n"),
                               env_of({{"PORT", "9999"}}));
  EXPECT_EQ(config.server.host, "0.0.0.0");
  EXPECT_EQ(config.server.port, 9999);
  EXPECT_EQ(config.server.threads, 2U);
}

TEST(ConfigEnv, EveryMissingVariableIsReported) {
  const auto errors = errors_of(provider_with("    api_key: '${K1}/${K2:-ok}/${K3}'\n"));
  EXPECT_EQ(errors, (std::vector<std::string>{"providers[0].api_key: environment variable K1 is not set",
                                              "providers[0].api_key: environment variable K3 is not set"}));
}

TEST(ConfigEnv, MissingVariableInNestedValuesNamesThePath) {
  expect_single_error(provider_with("    headers:\n      X-Team: '${TEAM}'\n"), "providers[0].headers.X-Team",
                      "environment variable TEAM is not set");
  expect_single_error("auth:\n  mode: keys\n  admin_key: ${ADMIN_KEY}\n" + provider_with(""), "auth.admin_key",
                      "environment variable ADMIN_KEY is not set");
}

TEST(ConfigEnv, EmptyLookupFunctionMeansNothingIsSet) {
  const auto result = load_config_string(issue_example, env_lookup{});
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].message, "environment variable OPENROUTER_API_KEY is not set");
}

TEST(ConfigEnv, MalformedReferencesAreErrors) {
  expect_error_at(provider_with("    api_key: 'abc${OPEN'\n"), "providers[0].api_key", "unterminated \"${\"");
  expect_error_at(provider_with("    api_key: '${1BAD}'\n"), "providers[0].api_key",
                  "invalid environment variable reference");
  expect_error_at(provider_with("    api_key: '${}'\n"), "providers[0].api_key",
                  "invalid environment variable reference");
  expect_error_at(provider_with("    api_key: '${A:-${B}}'\n"), "providers[0].api_key",
                  "nested ${...} in the default of ${A}");
}

TEST(ConfigEnv, KeysAreNotExpanded) {
  expect_single_error(provider_with("    headers:\n      ${H}: v\n"), "providers[0].headers.${H}",
                      "is not a valid HTTP header name", env_of({{"H", "X-Ok"}}));
}

TEST(ConfigEnv, ProcessEnvReadsTheEnvironment) {
  const auto env = process_env();
  EXPECT_TRUE(env("PATH").has_value());
  EXPECT_FALSE(env("GATEWAYZ_CONFIG_TEST_SURELY_UNSET_VARIABLE").has_value());
}

// --- secrets ---

TEST(ConfigSecrets, SecretValuesNeverAppearInErrors) {
  const std::string secret = "sk-live-SECRET123";
  std::string yaml = "auth:\n  mode: keys\n  admin_key: '${" + secret + "}'\n";
  yaml += provider_with("    api_key: '${" + secret + ":-x}${UNSET_" + secret.substr(0, 2) +
                        "}'\n    headers:\n      X-Key: \"" + secret + "\\r\\n\"\n");
  const auto result = load_config_string(yaml, no_env);
  // admin_key and api_key name invalid variables, api_key a missing one, X-Key has a CRLF.
  ASSERT_EQ(result.errors.size(), 4U) << format_errors(result.errors);
  EXPECT_EQ(format_errors(result.errors).find("SECRET123"), std::string::npos) << format_errors(result.errors);
}

// --- unknown keys ---

TEST(ConfigUnknownKeys, AreReportedAtEveryLevel) {
  expect_single_error("sever: {}\n" + provider_with(""), "sever", "unknown key");
  expect_single_error(server_with("  listen_on: x\n"), "server.listen_on", "unknown key");
  expect_single_error("auth:\n  key: x\n" + provider_with(""), "auth.key", "unknown key");
  expect_single_error(provider_with("    model: x\n"), "providers[0].model", "unknown key");
  expect_single_error(provider_with("        idd: x\n"), "providers[0].models[0].idd", "unknown key");
}

TEST(ConfigUnknownKeys, DerivedServerFieldsAreNotKeys) {
  const auto errors = errors_of(server_with("  host: 0.0.0.0\n  port: 80\n"));
  EXPECT_EQ(errors, (std::vector<std::string>{"server.host: unknown key", "server.port: unknown key"}));
}

TEST(ConfigUnknownKeys, IssuePathExample) {
  const auto errors = errors_of(R"(providers:
  - name: a
    base_url: "http://a/v1"
    models: [{id: x}]
  - name: b
    base_url: "http://b/v1"
    models:
      - id: y
      - idd: z
)");
  EXPECT_EQ(errors, (std::vector<std::string>{"providers[1].models[1].idd: unknown key",
                                              "providers[1].models[1].id: is required"}));
  const auto first = errors_of(R"(providers:
  - name: a
    base_url: "http://a/v1"
    models: [{id: x}]
  - name: b
    base_url: "http://b/v1"
    models:
      - idd: y
        id: y
)");
  EXPECT_EQ(first, (std::vector<std::string>{"providers[1].models[0].idd: unknown key"}));
}

TEST(ConfigUnknownKeys, DuplicateKeysAreErrors) {
  expect_single_error(server_with("  threads: 1\n  threads: 2\n"), "server.threads", "duplicate key");
}

// --- types and ranges ---

TEST(ConfigTypes, WrongScalarValuesNameThePathAndValue) {
  expect_single_error(server_with("  threads: abc\n"), "server.threads",
                      "must be a non-negative integer (got \"abc\")");
  expect_single_error(server_with("  threads: -1\n"), "server.threads", "must be a non-negative integer (got \"-1\")");
  expect_single_error(server_with("  threads: 2.5\n"), "server.threads",
                      "must be a non-negative integer (got \"2.5\")");
  expect_single_error(server_with("  threads: 99999999999\n"), "server.threads",
                      "must be at most 4294967295 (got \"99999999999\")");
  expect_single_error(server_with("  max_body_bytes: 0\n"), "server.max_body_bytes",
                      "must be a positive integer (got \"0\")");
  expect_single_error(server_with("  max_attempts: 0\n"), "server.max_attempts",
                      "must be a positive integer (got \"0\")");
  expect_single_error(provider_with("    timeout_s: -1\n"), "providers[0].timeout_s",
                      "must be a number of seconds > 0 (got \"-1\")");
  expect_single_error(provider_with("    timeout_s: 0\n"), "providers[0].timeout_s",
                      "must be a number of seconds > 0 (got \"0\")");
  expect_single_error(provider_with("    connect_timeout_s: .inf\n"), "providers[0].connect_timeout_s",
                      "must be a number of seconds > 0 (got \".inf\")");
  expect_single_error(server_with("  shutdown_grace_s: -0.5\n"), "server.shutdown_grace_s",
                      "must be a number of seconds >= 0 (got \"-0.5\")");
  expect_single_error(server_with("  request_timeout_s: 1e9\n"), "server.request_timeout_s",
                      "must be at most 604800 seconds (got \"1e9\")");
  expect_single_error(provider_with("    kind: foo\n"), "providers[0].kind",
                      "must be one of openai, anthropic (got \"foo\")");
  expect_single_error(provider_with("    verify_tls: yes\n"), "providers[0].verify_tls",
                      "must be true or false (got \"yes\")");
  expect_single_error(provider_with("    max_idle_connections: many\n"), "providers[0].max_idle_connections",
                      "must be a non-negative integer (got \"many\")");
  expect_single_error(provider_with("        input_per_million: -1\n"), "providers[0].models[0].input_per_million",
                      "must be a price in USD >= 0 (got \"-1\")");
  expect_single_error(provider_with("        output_per_million: free\n"), "providers[0].models[0].output_per_million",
                      "must be a price in USD >= 0 (got \"free\")");
  expect_single_error("auth:\n  mode: token\n" + provider_with(""), "auth.mode",
                      "must be one of none, keys (got \"token\")");
}

TEST(ConfigTypes, WrongShapesNameThePath) {
  expect_single_error("server: [1]\n" + provider_with(""), "server", "must be a mapping");
  expect_single_error(server_with("  listen: [a, b]\n"), "server.listen", "must be a single value, not a list");
  expect_single_error(provider_with("    api_key: {a: b}\n"), "providers[0].api_key",
                      "must be a single value, not a mapping");
  expect_single_error(provider_with("    headers: [a]\n"), "providers[0].headers", "must be a mapping");
  expect_single_error(provider_with("    headers:\n      X-A: [1]\n"), "providers[0].headers.X-A",
                      "must be a single value, not a list");
  expect_single_error("providers:\n  name: x\n", "providers", "must be a list");
  expect_single_error("providers: [hello]\n", "providers[0]", "must be a mapping");
  expect_error_at(R"(providers:
  - name: p
    base_url: "http://h/v1"
    models: gpt
)",
                  "providers[0].models", "must be a list");
  expect_error_at("- a\n- b\n", "", "the configuration must be a mapping");
}

TEST(ConfigTypes, ScalarWithoutValueIsAnErrorButEmptySectionsKeepDefaults) {
  expect_error_at(provider_with("    api_key:\n"), "providers[0].api_key", "has no value");
  expect_error_at(server_with("  threads: ~\n"), "server.threads", "has no value");
  const auto config = parse_ok("server:\nauth:\n" + provider_with("    headers:\n"));
  EXPECT_EQ(config.server.port, 8080);
}

TEST(ConfigTypes, QuotedNumbersAndCoreBooleansAreAccepted) {
  const auto config = parse_ok(R"(server:
  threads: "8"
providers:
  - name: p
    base_url: "http://h/v1"
    verify_tls: False
    models:
      - id: m
        input_per_million: "0.5"
)");
  EXPECT_EQ(config.server.threads, 8U);
  EXPECT_FALSE(config.providers.at(0).verify_tls);
  EXPECT_DOUBLE_EQ(config.providers.at(0).models.at(0).input_per_million, 0.5);
}

// --- required fields and validation ---

TEST(ConfigRequired, ProvidersMustExist) {
  expect_single_error("", "providers", "is required (at least one provider)");
  expect_single_error("# only a comment\n", "providers", "is required (at least one provider)");
  expect_single_error("server: {threads: 1}\n", "providers", "is required (at least one provider)");
  expect_single_error("providers: []\n", "providers", "must list at least one provider");
  expect_single_error("providers:\n", "providers", "must list at least one provider");
}

TEST(ConfigRequired, ProviderAndModelFields) {
  const auto errors = errors_of(R"(providers:
  - kind: openai
  - name: b
    base_url: "http://b/v1"
    models: []
  - name: c
    base_url: "http://c/v1"
    models:
      - upstream: x
      - id: ""
      - id: ok
        upstream: ""
)");
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "providers[0].name: is required",
                        "providers[0].base_url: is required",
                        "providers[0].models: is required",
                        "providers[1].models: must list at least one model",
                        "providers[2].models[0].id: is required",
                        "providers[2].models[1].id: must not be empty",
                        "providers[2].models[2].upstream: must not be empty",
                    }));
}

TEST(ConfigRequired, ProviderNamesAreLabelSafeAndUnique) {
  expect_error_at(R"(providers:
  - name: "Open Router"
    base_url: "http://a/v1"
    models: [{id: x}]
)",
                  "providers[0].name", "must be non-empty and use only a-z, 0-9");
  expect_error_at(R"(providers:
  - name: ""
    base_url: "http://a/v1"
    models: [{id: x}]
)",
                  "providers[0].name", "must be non-empty");
  // /models/stats names the requests no provider was tried for "none".
  expect_error_at(R"(providers:
  - name: none
    base_url: "http://a/v1"
    models: [{id: x}]
)",
                  "providers[0].name", "none is reserved");
  expect_single_error(R"(providers:
  - name: dup
    base_url: "http://a/v1"
    models: [{id: x}]
  - name: other
    base_url: "http://a/v1"
    models: [{id: x}]
  - name: dup
    base_url: "http://b/v1"
    models: [{id: x}]
)",
                      "providers[2].name", "duplicate provider name \"dup\" (also providers[0])");
}

TEST(ConfigRequired, ModelIdsAreUniqueWithinAProvider) {
  expect_single_error(provider_with("      - id: n\n      - id: m\n"), "providers[0].models[2].id",
                      "duplicate model id \"m\" (also providers[0].models[0])");
}

TEST(ConfigValidation, BaseUrlMustBeHttpOrHttps) {
  const auto base_url_error = [](std::string_view url) {
    const auto result = load_config_string(
        "providers:\n  - name: p\n    base_url: '" + std::string(url) + "'\n    models: [{id: m}]\n", no_env);
    if (result.errors.size() != 1 || result.errors[0].path != "providers[0].base_url") {
      return "unexpected: " + format_errors(result.errors);
    }
    return result.errors[0].message;
  };
  EXPECT_EQ(base_url_error("ftp://example.com/v1"), "must be an absolute http:// or https:// URL");
  EXPECT_EQ(base_url_error("example.com/v1"), "must be an absolute http:// or https:// URL");
  EXPECT_EQ(base_url_error("https://"), "URL has no host");
  EXPECT_EQ(base_url_error("https://user:sk-abc@example.com/v1"), "URL must not contain credentials; use api_key");
  EXPECT_EQ(base_url_error("https://example.com/v1?x=1"), "URL must not contain a query or a fragment");
  EXPECT_EQ(base_url_error("https://example.com:0/v1"), "URL port must be a number from 1 to 65535");
  EXPECT_EQ(base_url_error(""), "must be an absolute http:// or https:// URL");
  parse_ok("providers:\n  - name: p\n    base_url: 'http://[::1]:9100'\n    models: [{id: m}]\n");
}

TEST(ConfigValidation, AdminKeyIsRequiredForKeysMode) {
  expect_single_error("auth:\n  mode: keys\n" + provider_with(""), "auth.admin_key",
                      "is required when auth.mode is keys");
  expect_single_error("auth:\n  mode: keys\n  admin_key: ''\n" + provider_with(""), "auth.admin_key",
                      "is required when auth.mode is keys");
  const auto config = parse_ok("auth:\n  mode: '${MODE:-keys}'\n  admin_key: k\n" + provider_with(""));
  EXPECT_EQ(config.auth.mode, "keys");
  EXPECT_EQ(config.auth.read_token, "");
}

TEST(ConfigValidation, ReadTokenIsOptional) {
  const auto config = parse_ok("auth:\n  mode: keys\n  admin_key: k\n  read_token: r\n" + provider_with(""));
  EXPECT_EQ(config.auth.read_token, "r");
  expect_single_error("auth:\n  read_token: [r]\n" + provider_with(""), "auth.read_token",
                      "must be a single value, not a list");
}

TEST(ConfigValidation, Headers) {
  expect_single_error(provider_with("    headers:\n      Host: evil\n"), "providers[0].headers.Host",
                      "is managed by the gateway and cannot be set");
  expect_single_error(provider_with("    headers:\n      \"Bad Name\": v\n"), "providers[0].headers.Bad Name",
                      "is not a valid HTTP header name");
  expect_single_error(provider_with("    headers:\n      X-A: a\n      x-a: b\n"), "providers[0].headers.x-a",
                      "repeats header X-A (names are case-insensitive)");
  expect_single_error(provider_with("    headers:\n      X-A: \"a\\nInjected: 1\"\n"), "providers[0].headers.X-A",
                      "header value must not contain CR, LF or NUL");
}

class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("gw_config_test_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, std::string_view content) const {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  fs::path dir_;
};

TEST_F(ConfigFiles, CaFileMustExistAndBeAFile) {
  const auto ca = write("ca.pem", "pem");
  parse_ok(provider_with("    ca_file: '" + ca.string() + "'\n"));
  const auto missing = (dir_ / "missing.pem").string();
  expect_single_error(provider_with("    ca_file: '" + missing + "'\n"), "providers[0].ca_file",
                      "file \"" + missing + "\" does not exist");
  expect_single_error(provider_with("    ca_file: '" + dir_.string() + "'\n"), "providers[0].ca_file",
                      "\"" + dir_.string() + "\" is not a regular file");
}

TEST_F(ConfigFiles, LoadsAFile) {
  const auto path = write("gw.yaml", issue_example);
  const auto result = load_config_file(path.string(), env_of({{"OPENROUTER_API_KEY", "k"}}));
  ASSERT_TRUE(result.config.has_value()) << format_errors(result.errors);
  EXPECT_EQ(result.config->providers.at(0).api_key, "k");
}

TEST_F(ConfigFiles, MissingFileOrDirectoryIsAnError) {
  const auto missing = (dir_ / "nope.yaml").string();
  auto result = load_config_file(missing, no_env);
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(error_lines(result), std::vector<std::string>{"config file " + missing + ": not found"});
  result = load_config_file(dir_.string(), no_env);
  EXPECT_EQ(error_lines(result), std::vector<std::string>{"config file " + dir_.string() + ": is a directory"});
}

TEST(ConfigSyntax, YamlSyntaxErrorReportsLineAndColumn) {
  expect_single_error("server:\n  listen: \"127.0.0.1:8080\"\n threads: 0\n", "",
                      "YAML syntax error at line 3, column 2: end of map not found");
  expect_error_at("providers: [\n  {name: a,\n", "", "YAML syntax error at line ");
  expect_error_at("server:\n\tthreads: 1\n", "", "YAML syntax error at line 2, column ");
}

// Found by fuzz_config: yaml-cpp names a bad escape by its raw character
// (a control character here; a line feed split the error across lines).
TEST(ConfigSyntax, YamlSyntaxErrorHasNoControlCharacters) {
  expect_single_error("a: \"x\\\x04\"\n", "", "YAML syntax error at line 1, column 8: unknown escape character: \\x04");
}

// Found by fuzz_config: yaml-cpp 0.7's LoadAll loops forever, growing memory,
// on a stray comma (jbeder/yaml-cpp#1040); it must be a syntax error.
TEST(ConfigSyntax, StrayCommaIsASyntaxErrorNotAHang) {
  expect_single_error(",", "", "YAML syntax error at line 1, column 1: unexpected \",\"");
  expect_single_error(",ynp", "", "YAML syntax error at line 1, column 1: unexpected \",\"");
  expect_error_at("server:\n  threads: 2\n---\n,\n", "", "YAML syntax error at line 4, column 1");
}

TEST(ConfigSyntax, SeveralDocumentsAreRejected) {
  expect_single_error(provider_with("") + "---\nserver: {}\n", "", "expected one YAML document, found 2");
}

// --- error collection and formatting ---

TEST(ConfigErrors, AllErrorsAreCollectedInDocumentOrder) {
  const auto errors = errors_of(R"(server:
  listen: "localhost:8080"
  threads: abc
  bogus: 1
auth:
  mode: keys
providers:
  - name: Bad
    kind: foo
    base_url: "ftp://x"
    api_key: "${MISSING}"
    timeout_s: -1
    models:
      - id: m
        idd: m
        input_per_million: -2
)");
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "server.listen: must be host:port with an IP address host, e.g. 127.0.0.1:8080 "
                        "or [::1]:8080 (got \"localhost:8080\")",
                        "server.threads: must be a non-negative integer (got \"abc\")",
                        "server.bogus: unknown key",
                        "auth.admin_key: is required when auth.mode is keys",
                        "providers[0].name: must be non-empty and use only a-z, 0-9, '_', '.', '-' (it "
                        "is a metrics label) (got \"Bad\")",
                        "providers[0].kind: must be one of openai, anthropic (got \"foo\")",
                        "providers[0].base_url: must be an absolute http:// or https:// URL",
                        "providers[0].api_key: environment variable MISSING is not set",
                        "providers[0].timeout_s: must be a number of seconds > 0 (got \"-1\")",
                        "providers[0].models[0].idd: unknown key",
                        "providers[0].models[0].input_per_million: must be a price in USD >= 0 (got "
                        "\"-2\")",
                    }));
}

TEST(ConfigErrors, FormatErrorsWritesOneLinePerError) {
  EXPECT_EQ(format_errors({{"providers[0].kind", "must be one of openai, anthropic"},
                           {"", "YAML syntax error at line 1, column 1: x"}}),
            "providers[0].kind: must be one of openai, anthropic\n"
            "YAML syntax error at line 1, column 1: x\n");
  EXPECT_EQ(format_errors({}), "");
}

// --- listen ---

TEST(ConfigListen, ParsesIpv4Ipv6AndPortZero) {
  struct good_case {
    std::string_view listen;
    std::string_view host;
    std::uint16_t port;
  };
  for (const auto& c : {good_case{"127.0.0.1:8080", "127.0.0.1", 8080}, good_case{"[::1]:8080", "::1", 8080},
                        good_case{"0.0.0.0:0", "0.0.0.0", 0}, good_case{"[::]:65535", "::", 65535},
                        good_case{"[2001:db8::1]:443", "2001:db8::1", 443}}) {
    server_config server;
    const auto problem = set_listen(server, c.listen);
    EXPECT_FALSE(problem.has_value()) << c.listen << ": " << problem.value_or("");
    EXPECT_EQ(server.listen, c.listen);
    EXPECT_EQ(server.host, c.host);
    EXPECT_EQ(server.port, c.port);

    const auto config = parse_ok(server_with("  listen: '" + std::string(c.listen) + "'\n"));
    EXPECT_EQ(config.server.host, c.host);
    EXPECT_EQ(config.server.port, c.port);
  }
}

TEST(ConfigListen, RejectsMalformedAddressesWithoutChangingTheServer) {
  for (const std::string_view bad :
       {"127.0.0.1", "localhost:8080", ":8080", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:abc", "1.2.3.4:-1",
        "::1:8080", "[::1]8080", "[::1]", "[zz::]:80", "[::1:80", "256.0.0.1:80", ""}) {
    server_config server;
    const auto problem = set_listen(server, bad);
    EXPECT_TRUE(problem.has_value()) << bad;
    EXPECT_EQ(server.listen, "127.0.0.1:8080");
    EXPECT_EQ(server.port, 8080);
    expect_error_at(server_with("  listen: '" + std::string(bad) + "'\n"), "server.listen", "");
  }
  server_config server;
  EXPECT_EQ(set_listen(server, "::1:8080"), "IPv6 addresses must be in brackets, e.g. [::1]:8080 (got \"::1:8080\")");
  EXPECT_EQ(set_listen(server, "127.0.0.1:70000"), "port must be a number from 0 to 65535 (got \"70000\")");
}

// --- the shipped config files ---

constexpr std::string_view one_provider = R"(
providers:
  - name: p
    base_url: "http://127.0.0.1:9100/v1"
    probe_interval_s: 15
    probe_path: /health
    models: [{id: m}]
)";

TEST(ConfigSections, HealthBreakerStorageMetricsDefaults) {
  const auto config = parse_ok(one_provider);
  EXPECT_DOUBLE_EQ(config.health.window_s, 300);
  EXPECT_DOUBLE_EQ(config.health.interval_s, 30);
  EXPECT_EQ(config.circuit_breaker.failure_threshold, 5U);
  EXPECT_DOUBLE_EQ(config.circuit_breaker.error_rate_threshold, 0.5);
  EXPECT_EQ(config.circuit_breaker.min_requests, 10U);
  EXPECT_DOUBLE_EQ(config.circuit_breaker.open_s, 60);
  EXPECT_EQ(config.circuit_breaker.half_open_requests, 2U);
  EXPECT_EQ(config.storage.url, "sqlite://./gatewayz.db");
  EXPECT_EQ(config.storage.flush_interval_ms, 200U);
  EXPECT_TRUE(config.metrics.enabled);
  EXPECT_DOUBLE_EQ(config.providers[0].probe_interval_s, 15);
  EXPECT_EQ(config.providers[0].probe_path, "/health");
}

TEST(ConfigSections, ParsesEveryKey) {
  const auto config = parse_ok(std::string(one_provider) + R"(
health: {window_s: 60, interval_s: 5, dashboard_cache_s: 45}
circuit_breaker: {failure_threshold: 3, error_rate_threshold: 0.25, min_requests: 4, open_s: 2,
                  half_open_requests: 1, max_open_s: 8}
storage: {url: "postgres://u:pw@127.0.0.1:5432/db", flush_interval_ms: 50, spill_path: /tmp/x.spill,
          queue_capacity: 20000, stats_cache_s: 60}
metrics: {enabled: false, bearer_token: "${TOKEN}"}
auth: {mode: none, key_cache_ttl_s: 5}
)",
                               env_of({{"TOKEN", "scrape-secret"}}));
  EXPECT_DOUBLE_EQ(config.health.window_s, 60);
  EXPECT_DOUBLE_EQ(config.health.dashboard_cache_s, 45);
  EXPECT_EQ(config.circuit_breaker.failure_threshold, 3U);
  EXPECT_DOUBLE_EQ(config.circuit_breaker.error_rate_threshold, 0.25);
  EXPECT_DOUBLE_EQ(config.circuit_breaker.max_open_s, 8);
  EXPECT_EQ(config.storage.url, "postgres://u:pw@127.0.0.1:5432/db");
  EXPECT_EQ(config.storage.spill_path, "/tmp/x.spill");
  EXPECT_EQ(config.storage.queue_capacity, 20000U);
  EXPECT_FALSE(config.metrics.enabled);
  EXPECT_EQ(config.metrics.bearer_token, "scrape-secret");
  EXPECT_DOUBLE_EQ(config.auth.key_cache_ttl_s, 5);
}

TEST(ConfigSections, RejectsBadValuesByPathWithoutEchoingSecrets) {
  const auto base = std::string(one_provider);
  expect_error_at(base + "circuit_breaker: {error_rate_threshold: 1.5}\n", "circuit_breaker.error_rate_threshold",
                  "must be a number in (0, 1]");
  expect_error_at(base + "circuit_breaker: {open_s: 10, max_open_s: 5}\n", "circuit_breaker.max_open_s",
                  "must be at least open_s");
  expect_error_at(base + "health: {interval_s: 0}\n", "health.interval_s", "must be a number of seconds");
  expect_error_at(base + "storage: {queue_capacity: 100}\n", "storage.queue_capacity",
                  "must be at least server.max_connections (10000)");
  expect_error_at(base + "health: {windows: 3}\n", "health.windows", "unknown key");
  const auto lines = errors_of(base + "storage: {url: \"mysql://root:hunter2@db/x\"}\n");
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0], "storage.url: must be none or start with sqlite://, postgres:// or postgresql://");
  EXPECT_EQ(parse_ok(base + "storage: {url: none}\n").storage.url, "none");
  expect_error_at(base + "metrics: {enabled: yes}\n", "metrics.enabled", "must be true or false");
}

TEST(ConfigRedis, ParsesTheSectionAndSharedHealth) {
  const auto base = std::string(one_provider);
  const auto defaults = parse_ok(base);
  EXPECT_TRUE(defaults.redis.url.empty());
  EXPECT_EQ(defaults.redis.timeout_ms, 100);
  EXPECT_EQ(defaults.redis.pool_size, 2);
  EXPECT_FALSE(defaults.health.shared);

  const auto set = parse_ok(base +
                            "redis: {url: \"redis://:pw@cache:6380/2\", timeout_ms: 250, pool_size: 4}\n"
                            "health: {shared: true}\n");
  EXPECT_EQ(set.redis.url, "redis://:pw@cache:6380/2");
  EXPECT_EQ(set.redis.timeout_ms, 250);
  EXPECT_EQ(set.redis.pool_size, 4);
  EXPECT_TRUE(set.health.shared);
  // An unset ${GATEWAYZ_REDIS_URL:-} is "no Redis".
  EXPECT_TRUE(parse_ok(base + "redis: {url: \"\"}\n").redis.url.empty());
}

TEST(ConfigRedis, RejectsBadValuesWithoutEchoingThePassword) {
  const auto base = std::string(one_provider);
  const auto lines = errors_of(base + "redis: {url: \"redis://:hunter2@cache:99999/0\"}\n");
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0], "redis.url: the port must be a number from 1 to 65535");
  expect_error_at(base + "redis: {url: \"http://cache\"}\n", "redis.url", "must start with redis://");
  expect_error_at(base + "redis: {timeout_ms: 0}\n", "redis.timeout_ms", "must be a positive integer");
  expect_error_at(base + "redis: {pool_size: 65}\n", "redis.pool_size", "must be at most 64");
  expect_error_at(base + "redis: {urls: x}\n", "redis.urls", "unknown key");
  expect_error_at(base + "health: {shared: true}\n", "health.shared", "true needs redis.url");
}

TEST(ConfigLogging, EveryKeyParsesAndDefaultsMatchTheContract) {
  const auto base = std::string(one_provider);
  const auto defaults = parse_ok(base).logging;
  EXPECT_EQ(defaults.level, "info");
  EXPECT_EQ(defaults.format, "json");
  EXPECT_EQ(defaults.app, "gatewayz");
  EXPECT_EQ(defaults.env, "production");
  EXPECT_EQ(defaults.service, "gatewayz-api");
  EXPECT_FALSE(defaults.log_content);
  EXPECT_TRUE(defaults.loki.url.empty());  // no shipping
  const auto config = parse_ok(base + R"(logging:
  level: warning
  format: text
  app: gw
  env: staging
  service: api
  log_content: true
  log_emails: true
  loki:
    url: "http://loki:3100/loki/api/v1/push"
    tenant_id: team-a
    headers: {Authorization: "Basic ${LOKI_AUTH}"}
    batch_max_bytes: 65536
    flush_interval_ms: 250
    queue_max_records: 500
)",
                               env_of({{"LOKI_AUTH", "dXNlcjpwYXNz"}}));
  const auto& l = config.logging;
  EXPECT_EQ(l.level, "warning");
  EXPECT_EQ(l.format, "text");
  EXPECT_EQ(l.app + "/" + l.env + "/" + l.service, "gw/staging/api");
  EXPECT_TRUE(l.log_content);
  EXPECT_TRUE(l.log_emails);
  EXPECT_EQ(l.loki.url, "http://loki:3100/loki/api/v1/push");
  EXPECT_EQ(l.loki.tenant_id, "team-a");
  EXPECT_EQ(l.loki.headers.at("Authorization"), "Basic dXNlcjpwYXNz");
  EXPECT_EQ(l.loki.batch_max_bytes, 65536U);
  EXPECT_EQ(l.loki.flush_interval_ms, 250U);
  EXPECT_EQ(l.loki.queue_max_records, 500U);
}

TEST(ConfigLogging, RejectsBadValuesWithoutEchoingTheLokiUrl) {
  const auto base = std::string(one_provider);
  expect_error_at(base + "logging: {level: verbose}\n", "logging.level", "must be one of debug, info, warning, error");
  expect_error_at(base + "logging: {format: xml}\n", "logging.format", "must be one of json, text");
  expect_error_at(base + "logging: {env: \"\"}\n", "logging.env", "must be 1 to 2048 characters");
  expect_error_at(base + "logging: {loki: {tenant_id: \"a b\"}}\n", "logging.loki.tenant_id", "must be at most 150");
  expect_error_at(base + "logging: {loki: {batch_max_bytes: 10}}\n", "logging.loki.batch_max_bytes", "must be");
  expect_error_at(base + "logging: {loki: {port: 1}}\n", "logging.loki.port", "unknown key");
  const auto lines = errors_of(base + "logging: {loki: {url: \"ftp://user:hunter2@loki/push\"}}\n");
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_TRUE(lines[0].starts_with("logging.loki.url: ")) << lines[0];
  EXPECT_EQ(lines[0].find("hunter2"), std::string::npos) << lines[0];
}

TEST(ConfigCache, OffByDefaultAndParsesEveryKey) {
  const auto defaults = parse_ok(one_provider).cache;
  EXPECT_EQ(defaults.mode, "off");
  EXPECT_DOUBLE_EQ(defaults.ttl_s, 3600);
  EXPECT_EQ(defaults.max_bytes, 64U * 1024 * 1024);
  EXPECT_EQ(defaults.models, std::vector<std::string>{"*"});
  EXPECT_DOUBLE_EQ(defaults.hit_cost_fraction, 0);
  EXPECT_EQ(defaults.local_max_bytes, 16U * 1024 * 1024);
  EXPECT_DOUBLE_EQ(defaults.local_ttl_s, 60);

  const auto c = parse_ok(std::string(one_provider) + R"(
cache: {mode: memory, ttl_s: 60, max_bytes: 1048576, max_entry_bytes: 4096, models: [gpt-4o-mini, claude],
        hit_cost_fraction: 0.25}
)")
                     .cache;
  EXPECT_EQ(c.mode, "memory");
  EXPECT_DOUBLE_EQ(c.ttl_s, 60);
  EXPECT_EQ(c.max_bytes, 1048576U);
  EXPECT_EQ(c.max_entry_bytes, 4096U);
  EXPECT_EQ(c.models, (std::vector<std::string>{"gpt-4o-mini", "claude"}));
  EXPECT_DOUBLE_EQ(c.hit_cost_fraction, 0.25);
  EXPECT_TRUE(parse_ok(std::string(one_provider) + "cache: {models: []}\n").cache.models.empty());
  const auto tier = parse_ok(std::string(one_provider) + "cache: {local_max_bytes: 0, local_ttl_s: 5}\n").cache;
  EXPECT_EQ(tier.local_max_bytes, 0U) << "0 turns the local tier off";
  EXPECT_DOUBLE_EQ(tier.local_ttl_s, 5);
}

TEST(ConfigCache, RejectsBadValues) {
  const auto base = std::string(one_provider);
  expect_error_at(base + "cache: {mode: disk}\n", "cache.mode", "must be one of off, memory, redis");
  expect_error_at(base + "cache: {ttl_s: 0}\n", "cache.ttl_s", "must be a number of seconds");
  expect_error_at(base + "cache: {hit_cost_fraction: 1.5}\n", "cache.hit_cost_fraction", "must be a number in [0, 1]");
  expect_error_at(base + "cache: {max_bytes: 100}\n", "cache.max_bytes", "must be");
  expect_error_at(base + "cache: {max_bytes: 8192, max_entry_bytes: 16384}\n", "cache.max_entry_bytes",
                  "must be at most cache.max_bytes");
  expect_error_at(base + "cache: {models: [\"\"]}\n", "cache.models[0]", "must not be empty");
  expect_error_at(base + "cache: {size: 1}\n", "cache.size", "unknown key");
  expect_error_at(base + "cache: {local_ttl_s: 0}\n", "cache.local_ttl_s", "must be a number of seconds");
  expect_error_at(base + "cache: {local_max_bytes: -1}\n", "cache.local_max_bytes", "must be");
  expect_error_at(base + "cache: {mode: redis}\n", "cache.mode", "redis needs redis.url");
  EXPECT_EQ(parse_ok(base + "cache: {mode: redis}\nredis: {url: \"redis://127.0.0.1:6379/0\"}\n").cache.mode, "redis");
}

TEST(ConfigTracing, OffByDefaultAndParsesEveryKey) {
  const auto defaults = parse_ok(one_provider).tracing;
  EXPECT_FALSE(defaults.enabled);
  EXPECT_EQ(defaults.otlp_endpoint, "http://localhost:4318");
  EXPECT_EQ(defaults.protocol, "http/protobuf");
  EXPECT_EQ(defaults.service_name, "gatewayz-api");
  EXPECT_DOUBLE_EQ(defaults.sample_ratio, 1.0);
  EXPECT_EQ(defaults.max_queue_size, 2048U);
  EXPECT_EQ(defaults.schedule_delay_ms, 5000U);
  EXPECT_EQ(defaults.max_export_batch_size, 512U);
  EXPECT_EQ(defaults.export_timeout_ms, 30000U);

  const auto t = parse_ok(std::string(one_provider) + R"(
tracing: {enabled: true, otlp_endpoint: "http://tempo:4318", protocol: http/json, compression: none,
          sampler: traceidratio, sample_ratio: 0.25, service_name: gw, environment: prod,
          headers: {authorization: "Bearer ${OTLP_TOKEN}"}, max_queue_size: 100, schedule_delay_ms: 10,
          max_export_batch_size: 50, export_timeout_ms: 1000}
)",
                          env_of({{"OTLP_TOKEN", "s3cret"}}))
                     .tracing;
  EXPECT_TRUE(t.enabled);
  EXPECT_EQ(t.otlp_endpoint, "http://tempo:4318");
  EXPECT_EQ(t.protocol, "http/json");
  EXPECT_FALSE(t.gzip);
  EXPECT_EQ(t.sampler, "traceidratio");
  EXPECT_DOUBLE_EQ(t.sample_ratio, 0.25);
  EXPECT_EQ(t.service_name, "gw");
  EXPECT_EQ(t.environment, "prod");
  EXPECT_EQ(t.headers.at("authorization"), "Bearer s3cret");
  EXPECT_EQ(t.max_queue_size, 100U);
  EXPECT_EQ(t.max_export_batch_size, 50U);

  const auto base = std::string(one_provider);
  expect_error_at(base + "tracing: {protocol: grpc}\n", "tracing.protocol", "must be http/protobuf or http/json");
  expect_error_at(base + "tracing: {sampler: jaeger_remote}\n", "tracing.sampler", "must be one of");
  expect_error_at(base + "tracing: {max_queue_size: 10, max_export_batch_size: 20}\n", "tracing.max_export_batch_size",
                  "must not exceed max_queue_size");
  expect_error_at(base + "tracing: {enabled: true, otlp_endpoint: \"tempo:4318\"}\n", "tracing.otlp_endpoint",
                  "must start with http:// or https://");
  expect_error_at(base + "tracing: {sample: 1}\n", "tracing.sample", "unknown key");
}

TEST(ConfigTracing, StandardOtelVariablesOverrideTheSection) {
  const auto yaml = std::string(one_provider) + "tracing: {service_name: from-file, headers: {x-a: file}}\n";
  const auto t =
      parse_ok(yaml,
               env_of({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"},
                       {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/custom"},
                       {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
                       {"OTEL_EXPORTER_OTLP_HEADERS", "x-a=env, authorization=Bearer%20t"},
                       {"OTEL_EXPORTER_OTLP_COMPRESSION", "none"},
                       {"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"},
                       {"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,deployment.environment=stage,team=a%2Cb"},
                       {"OTEL_SERVICE_NAME", "from-env"},
                       {"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
                       {"OTEL_TRACES_SAMPLER_ARG", "0.1"},
                       {"OTEL_BSP_MAX_QUEUE_SIZE", "64"},
                       {"OTEL_BSP_SCHEDULE_DELAY", "200"}}))
          .tracing;
  EXPECT_TRUE(t.enabled);  // an endpoint in the environment turns tracing on
  EXPECT_EQ(t.otlp_endpoint, "http://collector:4318");
  EXPECT_EQ(t.traces_endpoint, "http://collector:4318/custom");
  EXPECT_EQ(t.protocol, "http/json");
  EXPECT_EQ(t.headers.at("x-a"), "env");
  EXPECT_EQ(t.headers.at("authorization"), "Bearer t");
  EXPECT_FALSE(t.gzip);
  EXPECT_EQ(t.export_timeout_ms, 2500U);
  EXPECT_EQ(t.service_name, "from-env");  // OTEL_SERVICE_NAME wins over OTEL_RESOURCE_ATTRIBUTES
  EXPECT_EQ(t.environment, "stage");
  EXPECT_EQ(t.resource_attributes.at("team"), "a,b");
  EXPECT_DOUBLE_EQ(t.sample_ratio, 0.1);
  EXPECT_EQ(t.max_queue_size, 64U);
  EXPECT_EQ(t.max_export_batch_size, 64U);  // never above the queue size
  EXPECT_EQ(t.schedule_delay_ms, 200U);

  EXPECT_FALSE(
      parse_ok(std::string(one_provider) + "tracing: {enabled: true}\n", env_of({{"OTEL_SDK_DISABLED", "true"}}))
          .tracing.enabled);
  EXPECT_FALSE(
      parse_ok(std::string(one_provider) + "tracing: {enabled: true}\n", env_of({{"OTEL_TRACES_EXPORTER", "none"}}))
          .tracing.enabled);
  expect_error_at(one_provider, "OTEL_EXPORTER_OTLP_PROTOCOL", "must be http/protobuf or http/json",
                  env_of({{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}}));
  expect_error_at(one_provider, "OTEL_TRACES_SAMPLER_ARG", "must be a probability",
                  env_of({{"OTEL_TRACES_SAMPLER_ARG", "2"}}));
  // A header value may be a secret: a malformed list is reported without it.
  const auto lines = errors_of(one_provider, env_of({{"OTEL_EXPORTER_OTLP_HEADERS", "authorization"}}));
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0], "OTEL_EXPORTER_OTLP_HEADERS: must be key=value pairs separated by commas");
}

TEST(ConfigShipped, DefaultConfigLoadsWithoutAnyEnvironment) {
  const auto result = load_config_file(GATEWAYZ_SOURCE_DIR "/config/gatewayz.yaml", no_env);
  ASSERT_TRUE(result.config.has_value()) << format_errors(result.errors);
  const auto& config = *result.config;
  EXPECT_EQ(config.server.host, "127.0.0.1");
  EXPECT_EQ(config.server.port, 8080);
  EXPECT_EQ(config.server.threads, 0U);
  EXPECT_EQ(config.auth.mode, "none");
  ASSERT_EQ(config.providers.size(), 2U);
  EXPECT_EQ(config.providers[0].name, "mock");
  EXPECT_EQ(config.providers[0].kind, provider_kind::openai);
  EXPECT_EQ(config.providers[0].base_url, "http://127.0.0.1:9100/v1");
  EXPECT_EQ(config.providers[0].api_key, "demo-key");
  ASSERT_EQ(config.providers[0].models.size(), 2U);
  EXPECT_EQ(config.providers[0].models[0].id, "gpt-4o-mini");
  EXPECT_DOUBLE_EQ(config.providers[0].models[0].input_per_million, 0.15);
  EXPECT_DOUBLE_EQ(config.providers[0].models[0].output_per_million, 0.60);
  EXPECT_EQ(config.providers[0].models[1].id, "mock-large");
  EXPECT_DOUBLE_EQ(config.providers[0].models[1].input_per_million, 2.5);
  EXPECT_DOUBLE_EQ(config.providers[0].models[1].output_per_million, 10);
  EXPECT_EQ(config.providers[1].name, "mock-anthropic");
  EXPECT_EQ(config.providers[1].kind, provider_kind::anthropic);
  EXPECT_EQ(config.providers[1].base_url, "http://127.0.0.1:9100/v1");
  ASSERT_EQ(config.providers[1].models.size(), 1U);
  EXPECT_EQ(config.providers[1].models[0].id, "claude-sonnet-4.5");
  EXPECT_EQ(config.providers[1].models[0].upstream, "claude-sonnet-4-5");
  EXPECT_DOUBLE_EQ(config.providers[1].models[0].input_per_million, 3);
  EXPECT_DOUBLE_EQ(config.providers[1].models[0].output_per_million, 15);

  const auto overridden =
      load_config_file(GATEWAYZ_SOURCE_DIR "/config/gatewayz.yaml", env_of({{"MOCK_API_KEY", "from-env"}}));
  ASSERT_TRUE(overridden.config.has_value());
  EXPECT_EQ(overridden.config->providers[1].api_key, "from-env");
}

TEST(ConfigShipped, ProductionExampleLoadsWithItsKeysSet) {
  const std::string path = GATEWAYZ_SOURCE_DIR "/config/example-production.yaml";
  const auto env = env_of({{"OPENROUTER_API_KEY", "a"},
                           {"CEREBRAS_API_KEY", "b"},
                           {"ANTHROPIC_API_KEY", "c"},
                           {"GATEWAYZ_ADMIN_KEY", "d"}});
  const auto result = load_config_file(path, env);
  ASSERT_TRUE(result.config.has_value()) << format_errors(result.errors);
  std::vector<std::string> names;
  std::map<std::string, int> providers_per_model;
  for (const auto& provider : result.config->providers) {
    names.push_back(provider.name);
    for (const auto& model : provider.models) ++providers_per_model[model.id];
  }
  EXPECT_EQ(names, (std::vector<std::string>{"openrouter", "cerebras", "anthropic"}));
  EXPECT_TRUE(std::any_of(providers_per_model.begin(), providers_per_model.end(), [](const auto& entry) {
    return entry.second >= 2;
  })) << "the example should show failover: one model served by two providers";

  // Without the environment, every unset key is reported, not just the first.
  const auto missing = load_config_file(path, no_env);
  EXPECT_FALSE(missing.config.has_value());
  EXPECT_GE(missing.errors.size(), 3U) << format_errors(missing.errors);
}

}  // namespace
}  // namespace gatewayz::config
