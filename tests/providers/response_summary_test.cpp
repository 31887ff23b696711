#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "providers/provider.hpp"

namespace gatewayz::providers {
namespace {

using strings = std::vector<std::string>;

TEST(response_summary, reads_id_model_and_each_finish_reason) {
  response_summary out;
  summarize_openai_json(
      R"({"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[)"
      R"({"index":0,"message":{"role":"assistant","content":"a, [b] {c} \"d\"","tool_calls":[{"id":"x"},{"id":"y"}]},)"
      R"("finish_reason":"stop"},{"index":1,"finish_reason":null},{"index":2,"finish_reason":"length"}],)"
      R"("usage":{"prompt_tokens":9}})",
      out);
  EXPECT_EQ(out.id, "chatcmpl-1");
  EXPECT_EQ(out.model, "gpt-4o-mini");
  EXPECT_EQ(out.finish_reasons, (strings{"stop", "length"}));
}

TEST(response_summary, keeps_what_it_has_and_adds_reasons_of_later_chunks) {
  response_summary out;
  summarize_openai_sse(
      "data: {\"id\":\"c1\",\"model\":\"m1\",\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\r\n\r\n"
      "data: {\"id\":\"c2\",\"model\":\"m2\",\"choices\":[ {\"delta\":{},\"finish_reason\":\"stop\"} ]}\n\n"
      "data: [DONE]\n\n",
      out);
  EXPECT_EQ(out.id, "c1");
  EXPECT_EQ(out.model, "m1");
  EXPECT_EQ(out.finish_reasons, (strings{"stop"}));
}

TEST(response_summary, decodes_escapes_and_takes_the_last_duplicate) {
  response_summary out;
  summarize_openai_json(R"({"id":"a","id":"b\u00e9\"","model":"m\/1","choices":[{"finish_reason":"st\u006fp"}]})", out);
  EXPECT_EQ(out.id, "b\xC3\xA9\"");
  EXPECT_EQ(out.model, "m/1");
  EXPECT_EQ(out.finish_reasons, (strings{"stop"}));
}

TEST(response_summary, adds_nothing_from_malformed_or_other_shapes) {
  for (const char* body : {R"({"id":"x","choices":[{"finish_reason":"stop"}])", R"([{"id":"x"}])", "not json",
                           R"({"id":1,"model":null,"choices":{"finish_reason":"stop"}})",
                           R"({"choices":["stop",1,null,[{"finish_reason":"stop"}]]})", R"({"choices":[]})"}) {
    response_summary out;
    summarize_openai_json(body, out);
    EXPECT_TRUE(out.id.empty()) << body;
    EXPECT_TRUE(out.model.empty()) << body;
    EXPECT_TRUE(out.finish_reasons.empty()) << body;
  }
}

}  // namespace
}  // namespace gatewayz::providers
