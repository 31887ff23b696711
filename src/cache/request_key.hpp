#pragma once
// The key of a request in the response cache.
//
// Two requests share a key when they would get the same answer: the same
// operation, the same scope (the customer; requests of different customers
// never share an answer) and the same JSON after normalising it. The
// normal form sorts object members by name, drops whitespace, spells equal
// numbers one way (1, 1.0 and 1e0 are one number) and leaves out the
// top-level members that do not change the answer: `stream`,
// `stream_options` (a streamed request is served from a cached completion)
// and `user`. The key is the SHA-256 of scope, operation and normal form, in
// lower-case hex (64 characters), so neither prompts nor customer ids show
// in a cache's keys.
//
// Pure functions; any thread.

#include <optional>
#include <string>
#include <string_view>

namespace gatewayz::cache {

// The normal form of a JSON object; false when `body` is not one.
bool normalize_request(std::string_view body, std::string& out);

// nullopt when `body` is not a JSON object.
std::optional<std::string> request_key(std::string_view scope, std::string_view operation, std::string_view body);

}  // namespace gatewayz::cache
