#include "gateway/store_api.hpp"

#include <charconv>
#include <type_traits>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "core/api_error.hpp"
#include "gateway/background.hpp"
#include "gateway/responses.hpp"
#include "health/render.hpp"
#include "store/money.hpp"

namespace gatewayz::gateway {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace {

std::string iso_time(std::int64_t unix_ms) {
  const std::chrono::system_clock::time_point t{std::chrono::milliseconds(unix_ms)};
  return health::iso8601_utc(t);
}

json::object customer_json(const store::customer& c) {
  return {{"id", c.id},
          {"name", c.name},
          {"balance_usd", store::format_usd(c.balance)},
          {"created_at", iso_time(c.created_unix_ms)}};
}

// The value of query parameter `name` in the request target, if present.
std::optional<std::string> query_parameter(std::string_view target, std::string_view name) {
  const auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  const auto params = url->params();
  const auto it = params.find(name);
  if (it == params.end()) return std::nullopt;
  return std::string((*it).value);
}

// An amount member that may be a decimal string ("12.50") or a JSON number
// (12.5, parsed from its shortest decimal form so 0.1 stays 0.1).
std::optional<store::nanos_usd> amount_member(const json::object& body, std::string_view name, bool allow_negative,
                                              std::string& why) {
  const auto* value = body.if_contains(name);
  if (value == nullptr) {
    why = fmt::format("'{}' is required", name);
    return std::nullopt;
  }
  std::string text;
  if (value->is_string()) {
    text = std::string(value->as_string());
  } else if (value->is_int64()) {
    text = std::to_string(value->as_int64());
  } else if (value->is_uint64()) {
    text = std::to_string(value->as_uint64());
  } else if (value->is_double()) {
    text = fmt::format("{}", value->as_double());
  } else {
    why = fmt::format("'{}' must be an amount in USD", name);
    return std::nullopt;
  }
  std::string detail;
  auto parsed = store::parse_usd(text, allow_negative, detail);
  if (!parsed) why = fmt::format("'{}' {}", name, detail);
  return parsed;
}

// A credit the store refused for its range (store.hpp, max_balance_nanos),
// naming the request member that carried the amount.
api_error amount_out_of_range(std::string_view member, const store::balance_out_of_range& e) {
  return api_error{400, "invalid_request_error", "amount_out_of_range", fmt::format("'{}': {}", member, e.what())};
}

// What a store call made on the pool gave: a value, or a refusal to answer
// with (the client's mistake, not the database's).
template <class T>
struct outcome {
  std::optional<T> value;
  std::optional<api_error> refused;
};

std::optional<json::object> parse_body(const http::request& req, std::string& why) {
  boost::system::error_code ec;
  auto value = json::parse(req.body(), ec);
  if (ec || !value.is_object()) {
    why = "the request body must be a JSON object";
    return std::nullopt;
  }
  return std::move(value.as_object());
}

// A creation request: the non-empty string member `name_member` and an
// optional "credits_usd" (default 0). Sets `why` when the body is invalid.
struct creation_request {
  std::string name;
  store::nanos_usd credits = 0;
};

std::optional<creation_request> parse_creation(const http::request& req, std::string_view name_member,
                                               std::string& why) {
  const auto body = parse_body(req, why);
  if (!body) return std::nullopt;
  const auto* name = body->if_contains(name_member);
  if (name == nullptr || !name->is_string() || name->as_string().empty()) {
    why = fmt::format("'{}' must be a non-empty string", name_member);
    return std::nullopt;
  }
  creation_request out{std::string(name->as_string()), 0};
  if (body->contains("credits_usd")) {
    const auto parsed = amount_member(*body, "credits_usd", false, why);
    if (!parsed) return std::nullopt;
    out.credits = *parsed;
  }
  return out;
}

}  // namespace

store_api::store_api(store::store& store, std::chrono::seconds stats_cache_ttl, auth::customer_balances* balances)
    : store_(store), balances_(balances) {
  if (stats_cache_ttl.count() > 0) stats_cache_.emplace(stats_cache_ttl);
}

void store_api::credited(std::int64_t customer_id, store::nanos_usd amount) const {
  if (balances_ == nullptr) return;
  // An instance that has not seen the customer yet reads the credit at lookup.
  if (auto* account = balances_->find(customer_id)) balances_->credited(*account, amount);
}

store_api::~store_api() { pool_.join(); }

asio::awaitable<http::response> store_api::models_stats(const http::request& req) {
  auto window = store::default_time_window;
  if (const auto param = query_parameter(req.target(), "time_window")) {
    const auto parsed = store::parse_time_window(*param);
    if (!parsed) {
      const auto error = api_error::bad_request("time_window must be one of 1h, 24h, 7d", "invalid_time_window");
      co_return error_response(error, req.version());
    }
    window = *parsed;
  }
  try {
    auto render_stats = [this, window] {
      auto render = [this, window] {
        return store::render_models_stats(store_.stats(window.length), window.label, std::chrono::system_clock::now());
      };
      if (!stats_cache_) return render();
      return stats_cache_->get(window.label, store::models_stats_cache::clock::now(), render);
    };
    auto body = co_await on_pool(pool_, std::move(render_stats));
    co_return json_response(200, std::move(body), req.version());
  } catch (const std::exception&) {
    // The store's message is for operators (logs), not for clients.
    const auto error = api_error::service_unavailable("Model statistics are unavailable: the database is unreachable");
    co_return error_response(error, req.version());
  }
}

asio::awaitable<http::response> store_api::list_customers(const http::request& req) {
  co_return co_await guarded(req, [this, &req]() -> asio::awaitable<http::response> {
    auto list_customers_work = [this] { return store_.list_customers(); };
    auto customers = co_await on_pool(pool_, std::move(list_customers_work));
    json::array list;
    for (const auto& c : customers) list.push_back(customer_json(c));
    co_return json_response(200, json::serialize(json::object{{"customers", std::move(list)}}), req.version());
  });
}

asio::awaitable<http::response> store_api::create_customer(const http::request& req) {
  co_return co_await guarded(req, [this, &req]() -> asio::awaitable<http::response> {
    std::string why;
    const auto creation = parse_creation(req, "name", why);
    if (!creation) co_return error_response(api_error::bad_request(why), req.version());
    const std::string customer_name = creation->name;
    const store::nanos_usd credits = creation->credits;
    auto create_customer_work = [this, customer_name, credits]() -> outcome<store::customer> {
      if (store_.find_customer(customer_name)) return {};
      try {
        return {store_.create_customer(customer_name, credits), std::nullopt};
      } catch (const store::balance_out_of_range& e) {
        return {std::nullopt, amount_out_of_range("credits_usd", e)};
      }
    };
    const auto result = co_await on_pool(pool_, std::move(create_customer_work));
    if (result.refused) co_return error_response(*result.refused, req.version());
    const auto& created = result.value;
    if (!created) {
      const api_error error{409, "invalid_request_error", "customer_exists",
                            "A customer with this name already exists"};
      co_return error_response(error, req.version());
    }
    co_return json_response(201, json::serialize(customer_json(*created)), req.version());
  });
}

asio::awaitable<http::response> store_api::credit_customer(const http::request& req, std::string_view name) {
  const std::string customer_name(name);
  co_return co_await guarded(req, [this, &req, &customer_name]() -> asio::awaitable<http::response> {
    std::string why;
    const auto body = parse_body(req, why);
    if (!body) co_return error_response(api_error::bad_request(why), req.version());
    const auto amount = amount_member(*body, "amount_usd", true, why);
    if (!amount) co_return error_response(api_error::bad_request(why), req.version());
    const store::nanos_usd delta = *amount;
    auto credit_work = [this, customer_name, delta]() -> outcome<store::customer> {
      auto c = store_.find_customer(customer_name);
      if (!c) return {};
      try {
        c->balance = store_.credit(c->id, delta);
        credited(c->id, delta);
      } catch (const store::balance_out_of_range& e) {
        return {std::nullopt, amount_out_of_range("amount_usd", e)};
      }
      return {std::move(c), std::nullopt};
    };
    const auto result = co_await on_pool(pool_, std::move(credit_work));
    if (result.refused) co_return error_response(*result.refused, req.version());
    const auto& updated = result.value;
    if (!updated) {
      const api_error error{404, "invalid_request_error", "customer_not_found", "No such customer"};
      co_return error_response(error, req.version());
    }
    co_return json_response(200, json::serialize(customer_json(*updated)), req.version());
  });
}

asio::awaitable<http::response> store_api::list_keys(const http::request& req) {
  co_return co_await guarded(req, [this, &req]() -> asio::awaitable<http::response> {
    auto list_keys_work = [this] { return store_.list_keys(); };
    auto keys = co_await on_pool(pool_, std::move(list_keys_work));
    json::array list;
    for (const auto& k : keys) {
      list.push_back(json::object{{"id", k.id},
                                  {"customer", k.customer_name},
                                  {"prefix", k.prefix},
                                  {"revoked", k.revoked},
                                  {"created_at", iso_time(k.created_unix_ms)}});
    }
    co_return json_response(200, json::serialize(json::object{{"keys", std::move(list)}}), req.version());
  });
}

asio::awaitable<http::response> store_api::create_key(const http::request& req) {
  co_return co_await guarded(req, [this, &req]() -> asio::awaitable<http::response> {
    std::string why;
    const auto creation = parse_creation(req, "customer", why);
    if (!creation) co_return error_response(api_error::bad_request(why), req.version());
    const std::string customer_name = creation->name;
    const store::nanos_usd credits = creation->credits;
    auto create_key_work = [this, customer_name, credits]() -> outcome<store::created_key> {
      auto c = store_.find_customer(customer_name);
      try {
        if (!c) {
          c = store_.create_customer(customer_name, credits);
        } else if (credits != 0) {
          store_.credit(c->id, credits);
          credited(c->id, credits);
        }
      } catch (const store::balance_out_of_range& e) {
        return {std::nullopt, amount_out_of_range("credits_usd", e)};
      }
      return {store_.create_key(c->id), std::nullopt};
    };
    const auto result = co_await on_pool(pool_, std::move(create_key_work));
    if (result.refused) co_return error_response(*result.refused, req.version());
    const store::created_key& created = *result.value;
    json::object out{{"id", created.info.id},
                     {"customer", customer_name},
                     {"prefix", created.info.prefix},
                     {"key", created.secret}};
    auto res = json_response(201, json::serialize(out), req.version());
    res.set(bhttp::field::cache_control, "no-store");
    co_return res;
  });
}

asio::awaitable<http::response> store_api::revoke_key(const http::request& req, std::string_view id_text) {
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (ec != std::errc{} || end != id_text.data() + id_text.size() || id <= 0) {
    co_return error_response(api_error::bad_request("the key id must be a positive integer"), req.version());
  }
  co_return co_await guarded(req, [this, &req, id]() -> asio::awaitable<http::response> {
    auto revoke_work = [this, id] { return store_.revoke_key(id); };
    const bool revoked = co_await on_pool(pool_, std::move(revoke_work));
    if (!revoked) {
      const api_error error{404, "invalid_request_error", "key_not_found", "No active key with this id"};
      co_return error_response(error, req.version());
    }
    co_return json_response(200, json::serialize(json::object{{"id", id}, {"revoked", true}}), req.version());
  });
}

template <class Work>
asio::awaitable<http::response> store_api::guarded(const http::request& req, Work work) {
  try {
    co_return co_await work();
  } catch (const store::store_error&) {
    const auto error = api_error::service_unavailable("The database is unreachable");
    co_return error_response(error, req.version());
  }
}

}  // namespace gatewayz::gateway
