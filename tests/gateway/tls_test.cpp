// HTTPS upstreams: certificate chain and host-name verification. A throwaway
// CA and server certificates are made with the openssl CLI at test time.

#include <cstdlib>
#include <filesystem>
#include <string>

#include "harness.hpp"

namespace gatewayz::test {
namespace {

class TlsUpstreamTest : public GatewayTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("gatewayz-gw-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const std::string d = dir_.string();
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    auto leaf = [&](const std::string& name, const std::string& cn, const std::string& san) {
      return "openssl req " + key + " -keyout " + name + ".key -out " + name + ".csr -subj '/CN=" + cn +
             "' && printf 'subjectAltName=" + san + "\\n' > " + name + ".ext && openssl x509 -req -in " + name +
             ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -out " + name + ".pem -days 2 -extfile " + name + ".ext";
    };
    const std::string script = "cd '" + d + "' && (openssl req -x509 " + key +
                               " -keyout ca.key -out ca.pem -days 2 -subj '/CN=gatewayz gateway-test CA' && " +
                               leaf("server", "localhost", "DNS:localhost,IP:127.0.0.1") + " && " +
                               leaf("dnsonly", "localhost", "DNS:localhost") + " && " +
                               leaf("other", "other.example", "DNS:other.example") + ") >openssl.log 2>&1";
    setup_ok_ = std::system(script.c_str()) == 0;
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void SetUp() override { ASSERT_TRUE(setup_ok_) << "openssl failed; see " << file("openssl.log"); }

  static std::string file(const std::string& name) { return (dir_ / name).string(); }
  static http::tls_files cert(const std::string& name) { return {file(name + ".pem"), file(name + ".key")}; }

  static config::gateway_config tls_config(const mock::mock_provider& m, std::string host, std::string ca_file,
                                           bool verify = true) {
    config::gateway_config cfg;
    auto p = make_provider("secure", url_of(m, host, "https"), {make_model("gpt-4o-mini")});
    p.ca_file = std::move(ca_file);
    p.verify_tls = verify;
    cfg.providers.push_back(std::move(p));
    return cfg;
  }

  static inline std::filesystem::path dir_;
  static inline bool setup_ok_ = false;
};

TEST_F(TlsUpstreamTest, TrustedCertificateWithMatchingNameIsAccepted) {
  auto& m = add_mock(cert("server"));
  for (const char* host : {"localhost", "127.0.0.1"}) {
    SCOPED_TRACE(host);
    start_gateway(tls_config(m, host, file("ca.pem")));
    const reply r = post("/v1/chat/completions", chat_body);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.json().at("object").as_string(), "chat.completion");
    EXPECT_EQ(r.header("x-gatewayz-provider"), "secure");
  }
  // Streaming over TLS, then a reuse of the pooled TLS connection on the same client connection.
  client c(port());
  const reply s = c.post("/v1/chat/completions", stream_chat_body);
  ASSERT_EQ(s.status, 200u) << s.body;
  EXPECT_NE(s.body.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(c.post("/v1/chat/completions", chat_body).status, 200u);
  EXPECT_EQ(header_of(m.recent_requests().back(), "host"), "127.0.0.1:" + std::to_string(m.port()));
}

TEST_F(TlsUpstreamTest, UntrustedCertificateIs502) {
  auto& m = add_mock(cert("server"));
  start_gateway(tls_config(m, "localhost", ""));
  expect_openai_error(post("/v1/chat/completions", chat_body), 502, "upstream_unreachable");
  expect_openai_error(post("/v1/chat/completions", stream_chat_body), 502, "upstream_unreachable");
  EXPECT_EQ(m.stats().requests, 0u) << "no request may be sent over an unverified connection";
}

TEST_F(TlsUpstreamTest, CertificateForAnotherNameIs502) {
  // Trusted chain, but the certificate names localhost only and we dial the IP.
  auto& dns_only = add_mock(cert("dnsonly"));
  start_gateway(tls_config(dns_only, "127.0.0.1", file("ca.pem")));
  expect_openai_error(post("/v1/chat/completions", chat_body), 502, "upstream_unreachable");
  // Trusted chain, certificate for other.example, dialled as localhost.
  auto& other = add_mock(cert("other"));
  start_gateway(tls_config(other, "localhost", file("ca.pem")));
  expect_openai_error(post("/v1/chat/completions", chat_body), 502, "upstream_unreachable");
  EXPECT_EQ(dns_only.stats().requests + other.stats().requests, 0u);
  // Sanity: the same dns-only certificate is fine under its own name.
  start_gateway(tls_config(dns_only, "localhost", file("ca.pem")));
  EXPECT_EQ(post("/v1/chat/completions", chat_body).status, 200u);
}

TEST_F(TlsUpstreamTest, VerificationCanBeTurnedOff) {
  auto& m = add_mock(cert("other"));
  start_gateway(tls_config(m, "127.0.0.1", "", false));
  const reply r = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(m.stats().requests, 1u);
}

TEST_F(TlsUpstreamTest, SchemeMismatchIs502NotAHang) {
  auto& tls_mock = add_mock(cert("server"));
  auto& plain_mock = add_mock();
  config::gateway_config cfg;
  auto plain_to_tls = make_provider("plain-to-tls", url_of(tls_mock), {make_model("a")});
  auto tls_to_plain = make_provider("tls-to-plain", url_of(plain_mock, "127.0.0.1", "https"), {make_model("b")});
  tls_to_plain.ca_file = file("ca.pem");
  cfg.providers = {plain_to_tls, tls_to_plain};
  start_gateway(cfg);
  const auto t0 = clock_type::now();
  const reply a = post("/v1/chat/completions", R"({"model":"a","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(a.status, 502u) << a.body;
  const reply b = post("/v1/chat/completions", R"({"model":"b","messages":[{"role":"user","content":"x"}]})");
  expect_openai_error(b, 502, "upstream_unreachable");
  EXPECT_LT(ms_since(t0), 4000.0);
}

}  // namespace
}  // namespace gatewayz::test
