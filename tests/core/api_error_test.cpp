#include "core/api_error.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace gatewayz {
namespace {

// The body must be OpenAI's error shape, since client SDKs parse it.
void expect_openai_shape(const api_error& err) {
  const boost::json::value doc = boost::json::parse(err.to_json());
  const boost::json::object& inner = doc.as_object().at("error").as_object();
  EXPECT_EQ(inner.at("message").as_string(), err.message);
  EXPECT_EQ(inner.at("type").as_string(), err.type);
  EXPECT_EQ(inner.at("code").as_string(), err.code);
  EXPECT_TRUE(inner.at("param").is_null());
}

TEST(ApiError, ToJsonHasOpenAiShape) {
  expect_openai_shape(api_error::bad_request("bad \"quoted\" input\n"));
  expect_openai_shape(api_error::model_not_found("gpt-\xC3\xA9"));
  expect_openai_shape(api_error::internal("x"));
}

TEST(ApiError, ToJsonEscapesHostileMessage) {
  api_error err = api_error::bad_request(std::string("a\0b\x01\"}{", 7));
  const boost::json::value doc = boost::json::parse(err.to_json());
  EXPECT_EQ(doc.at("error").at("message").as_string(), err.message);
}

TEST(ApiError, FactoryStatuses) {
  EXPECT_EQ(api_error::bad_request("m").status, 400);
  EXPECT_EQ(api_error::invalid_json("m").status, 400);
  EXPECT_EQ(api_error::model_not_found("m").status, 404);
  EXPECT_EQ(api_error::not_found("/x").status, 404);
  EXPECT_EQ(api_error::method_not_allowed("GET", "/x").status, 405);
  EXPECT_EQ(api_error::payload_too_large(10).status, 413);
  EXPECT_EQ(api_error::unauthorized("m").status, 401);
  EXPECT_EQ(api_error::upstream_unreachable("p").status, 502);
  EXPECT_EQ(api_error::upstream_bad_response("p", "m").status, 502);
  EXPECT_EQ(api_error::upstream_timeout("p").status, 504);
  EXPECT_EQ(api_error::no_provider_available("m").status, 503);
  EXPECT_EQ(api_error::service_unavailable("m").status, 503);
  EXPECT_EQ(api_error::internal("m").status, 500);
}

TEST(ApiError, FactoryCodesAndTypes) {
  EXPECT_EQ(api_error::model_not_found("m").code, "model_not_found");
  EXPECT_EQ(api_error::invalid_json("m").code, "invalid_json");
  EXPECT_EQ(api_error::unauthorized("m").type, "authentication_error");
  EXPECT_EQ(api_error::bad_request("m").type, "invalid_request_error");
  EXPECT_NE(api_error::payload_too_large(1234).message.find("1234"), std::string::npos);
}

TEST(ApiError, UpstreamStatusKeepsStatusAndMapsType) {
  EXPECT_EQ(api_error::upstream_status(429, "p", "m").status, 429);
  EXPECT_EQ(api_error::upstream_status(429, "p", "m").type, "rate_limit_error");
  EXPECT_EQ(api_error::upstream_status(401, "p", "m").type, "authentication_error");
  EXPECT_EQ(api_error::upstream_status(403, "p", "m").type, "authentication_error");
  EXPECT_EQ(api_error::upstream_status(500, "p", "m").type, "api_error");
  EXPECT_EQ(api_error::upstream_status(422, "p", "m").type, "invalid_request_error");
  EXPECT_EQ(api_error::upstream_status(502, "p", "m").code, "upstream_502");
  expect_openai_shape(api_error::upstream_status(503, "p", "m"));
}

}  // namespace
}  // namespace gatewayz
