#include "http/request.hpp"

#include <limits>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

namespace gatewayz::http {

namespace bhttp = boost::beast::http;

namespace {
// What a connection keeps between requests: enough for typical chat requests
// and their heads, little enough that ten thousand idle connections stay cheap.
constexpr std::size_t retained_body_bytes = 16 * 1024;
constexpr std::size_t retained_text_bytes = 4 * 1024;
}  // namespace

std::string_view request::method_string() const {
  if (method_ != bhttp::verb::unknown) {
    const auto known = bhttp::to_string(method_);
    return {known.data(), known.size()};
  }
  return {text_.data() + method_at_, method_size_};
}

request::const_iterator request::find(bhttp::field name) const {
  for (const auto& f : fields_) {
    if (f.name_ == name) return &f;
  }
  return end();
}

request::const_iterator request::find(std::string_view name) const {
  const auto known = bhttp::string_to_field(name);
  if (known != bhttp::field::unknown) return find(known);
  for (const auto& f : fields_) {
    if (f.name_ == bhttp::field::unknown && boost::beast::iequals(f.name_string(), name)) return &f;
  }
  return end();
}

std::string_view request::operator[](bhttp::field name) const {
  const auto it = find(name);
  return it == end() ? std::string_view{} : it->value();
}

std::string_view request::operator[](std::string_view name) const {
  const auto it = find(name);
  return it == end() ? std::string_view{} : it->value();
}

void request::clear() {
  method_ = bhttp::verb::unknown;
  version_ = 11;
  keep_alive_ = false;
  method_at_ = method_size_ = target_at_ = target_size_ = 0;
  if (text_.capacity() > retained_text_bytes) {
    std::string().swap(text_);
  } else {
    text_.clear();
  }
  fields_.clear();
  // Capacity is kept for the next request on the connection, but not a large
  // body's: an idle connection should not hold megabytes.
  if (body_.capacity() > retained_body_bytes) {
    std::string().swap(body_);
  } else {
    body_.clear();
  }
}

std::uint32_t request::keep(std::string_view text) {
  const auto at = static_cast<std::uint32_t>(text_.size());
  text_.append(text.data(), text.size());
  return at;
}

void request::add_field(bhttp::field name, std::string_view name_string, std::string_view value) {
  // Sizes fit: the whole header is bounded by header_limit (32 bits).
  field_entry entry;
  entry.text_ = &text_;
  entry.name_ = name;
  entry.name_at_ = keep(name_string);
  entry.name_size_ = static_cast<std::uint32_t>(name_string.size());
  entry.value_at_ = keep(value);
  entry.value_size_ = static_cast<std::uint32_t>(value.size());
  fields_.push_back(entry);
}

request_reader::request_reader(request& into) : req_(&into) { req_->clear(); }

void request_reader::on_request_impl(bhttp::verb method, boost::beast::string_view method_str,
                                     boost::beast::string_view target, int version, boost::beast::error_code&) {
  auto& r = *req_;
  r.method_ = method;
  if (method == bhttp::verb::unknown) {
    r.method_at_ = r.keep({method_str.data(), method_str.size()});
    r.method_size_ = static_cast<std::uint32_t>(method_str.size());
  }
  r.target_at_ = r.keep({target.data(), target.size()});
  r.target_size_ = static_cast<std::uint32_t>(target.size());
  r.version_ = static_cast<unsigned>(version);
}

void request_reader::on_field_impl(bhttp::field name, boost::beast::string_view name_string,
                                   boost::beast::string_view value, boost::beast::error_code&) {
  req_->add_field(name, {name_string.data(), name_string.size()}, {value.data(), value.size()});
}

void request_reader::on_header_impl(boost::beast::error_code&) { req_->keep_alive_ = keep_alive(); }

void request_reader::on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                                       boost::beast::error_code& ec) {
  // As Beast's string body: room for a declared length up front (the parser
  // has already held it to body_limit).
  if (!content_length) return;
  if (*content_length > req_->body_.max_size()) {
    ec = bhttp::error::buffer_overflow;
    return;
  }
  req_->body_.reserve(static_cast<std::size_t>(*content_length));
}

std::size_t request_reader::on_body_impl(boost::beast::string_view body, boost::beast::error_code&) {
  req_->body_.append(body.data(), body.size());
  return body.size();
}

std::size_t request_reader::on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                                               boost::beast::error_code&) {
  req_->body_.append(body.data(), body.size());
  return body.size();
}

}  // namespace gatewayz::http
