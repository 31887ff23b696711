#pragma once
// HTTP/1.1 message heads written straight into one contiguous buffer.
//
// Beast's serializer presents a head as a buffers_cat_view over every field
// and walks it element by element on each write; for the small exchanges a
// proxy mostly makes, that walk cost more than all of our own request
// handling. Writing the head into a string the connection reuses and sending
// it with the body in one gathered write produces the same bytes for a
// fraction of the work. Beast still decides *what* the head says
// (prepare_payload, keep_alive, chunked); this only writes it out.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/verb.hpp>

namespace gatewayz::http::wire {

// Appends "HTTP/1.x <code> <reason>\r\n", every field and the blank line.
void append_response_head(const boost::beast::http::response_header<>& head, std::string& out);

// The fields a connection adds to a handler's response. Written after the
// head's own fields, in the order and form Beast's keep_alive(), set(server)
// and prepare_payload() append them, without going through the fields
// container (an allocation and a lookup each); only for a head that holds
// none of them itself.
struct connection_fields {
  std::string_view connection;  // "close", "keep-alive" or empty
  std::string_view server;
  std::size_t content_length = 0;
};
void append_response_head(const boost::beast::http::response_header<>& head, const connection_fields& added,
                          std::string& out);
// The same from views: the status line (with the standard reason phrase),
// `fields` in order, then `added`. Fields the connection manages and names or
// values containing CR, LF or NUL are left out, as in append_request_head.
void append_response_head(unsigned status, unsigned version,
                          std::span<const std::pair<std::string_view, std::string_view>> fields,
                          const connection_fields& added, std::string& out);

// Appends a request head: the request line, Host and User-Agent (unless
// `headers` carries them), `headers` in order (a repeated name keeps its last
// value, values are trimmed, as Beast's fields::set did), Content-Length when
// the body is non-empty or the method carries one, and the blank line.
// Headers the connection manages (Content-Length, Transfer-Encoding,
// Connection) and names or values containing CR, LF or NUL are left out: they
// could frame the message differently from what we send. Only the first 64
// entries of `headers` are considered (adapters send a handful).
void append_request_head(boost::beast::http::verb method, std::string_view path_base, std::string_view target,
                         std::string_view host, std::string_view user_agent,
                         std::span<const std::pair<std::string_view, std::string_view>> headers, std::size_t body_size,
                         std::string& out);

// Appends a chunk-size line ("1a2\r\n") of chunked transfer coding.
void append_chunk_size(std::size_t size, std::string& out);

}  // namespace gatewayz::http::wire
