#pragma once
// An inbound HTTP/1.1 request, as the server hands it to handlers, and the
// reader that fills it.
//
// Beast's basic_parser still does the parsing (request line, field syntax,
// Content-Length and chunked framing, limits); only the storage is ours.
// Beast's own request keeps every field in a node of its own (an allocation
// each, plus the target's), the largest share of a proxied request's
// allocations. Here a connection keeps one request and reuses it: the request
// line and the fields go into one text buffer, the fields' positions into a
// small vector and the body into a string, all of which keep their capacity
// from one request to the next, so a kept-alive connection parses requests
// without allocating.
//
// The accessors follow Beast's message (method(), target(), find(), [],
// iteration, keep_alive()), so handlers read it the same way. One difference:
// fields iterate in arrival order, where Beast lists a repeated name's fields
// together.

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/container/small_vector.hpp>

namespace gatewayz::http {

class request_reader;

class request {
 public:
  // One header field. Valid until the request is read again.
  class field_entry {
   public:
    boost::beast::http::field name() const { return name_; }
    std::string_view name_string() const { return {text_->data() + name_at_, name_size_}; }
    std::string_view value() const { return {text_->data() + value_at_, value_size_}; }

   private:
    friend class request;
    const std::string* text_ = nullptr;
    boost::beast::http::field name_ = boost::beast::http::field::unknown;
    std::uint32_t name_at_ = 0;
    std::uint32_t name_size_ = 0;
    std::uint32_t value_at_ = 0;
    std::uint32_t value_size_ = 0;
  };
  using const_iterator = const field_entry*;

  request() = default;
  // Fields point into the request's own text: neither copied nor moved.
  request(const request&) = delete;
  request& operator=(const request&) = delete;

  boost::beast::http::verb method() const { return method_; }
  // The method as sent (for verb::unknown, the token itself).
  std::string_view method_string() const;
  std::string_view target() const { return {text_.data() + target_at_, target_size_}; }
  unsigned version() const { return version_; }
  // HTTP/1.1 unless "Connection: close", HTTP/1.0 only with "Connection:
  // keep-alive" (Beast's rules). Valid once the header is complete.
  bool keep_alive() const { return keep_alive_; }

  const std::string& body() const { return body_; }
  std::string& body() { return body_; }

  // Fields in arrival order; find() and [] give the first of a repeated name.
  const_iterator begin() const { return fields_.data(); }
  const_iterator end() const { return fields_.data() + fields_.size(); }
  const_iterator find(boost::beast::http::field name) const;
  const_iterator find(std::string_view name) const;  // case-insensitive
  // The field's value, or empty when absent.
  std::string_view operator[](boost::beast::http::field name) const;
  std::string_view operator[](std::string_view name) const;

 private:
  friend class request_reader;
  void clear();
  std::uint32_t keep(std::string_view text);  // appends to text_, returns where
  void add_field(boost::beast::http::field name, std::string_view name_string, std::string_view value);

  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  std::uint32_t method_at_ = 0;
  std::uint32_t method_size_ = 0;
  std::uint32_t target_at_ = 0;
  std::uint32_t target_size_ = 0;
  std::string text_;  // the method token (when unknown), the target, field names and values
  boost::container::small_vector<field_entry, 16> fields_;
  std::string body_;
};

// Parses one request into a request object (cleared first). Use a new reader
// per request; the request may be reused. Limits and errors are Beast's
// (header_limit(), body_limit(), error::body_limit, ...).
class request_reader final : public boost::beast::http::basic_parser<true> {
 public:
  explicit request_reader(request& into);
  request& get() { return *req_; }
  const request& get() const { return *req_; }

 private:
  void on_request_impl(boost::beast::http::verb method, boost::beast::string_view method_str,
                       boost::beast::string_view target, int version, boost::beast::error_code& ec) override;
  void on_response_impl(int, boost::beast::string_view, int, boost::beast::error_code&) override {}
  void on_field_impl(boost::beast::http::field name, boost::beast::string_view name_string,
                     boost::beast::string_view value, boost::beast::error_code& ec) override;
  void on_header_impl(boost::beast::error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length, boost::beast::error_code& ec) override;
  std::size_t on_body_impl(boost::beast::string_view body, boost::beast::error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, boost::beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, boost::beast::error_code& ec) override;
  void on_finish_impl(boost::beast::error_code&) override {}

  request* req_;
};

}  // namespace gatewayz::http
