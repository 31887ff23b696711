#include "health/shared_redis.hpp"

#include <algorithm>
#include <charconv>
#include <deque>
#include <optional>

#include <boost/asio/co_spawn.hpp>

namespace gatewayz::health {

namespace {

std::int64_t epoch_ms(wall_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::uint64_t as_count(const redis::reply& r) {
  std::uint64_t v = 0;
  if (r.type == redis::reply::kind::string) std::from_chars(r.text.data(), r.text.data() + r.text.size(), v);
  return v;
}

}  // namespace

redis_shared_store::redis_shared_store(redis::client_options options, std::vector<std::string> providers,
                                       double window_s, telemetry::catalog* metrics, std::size_t metric_shard,
                                       std::string key_prefix)
    : providers_(std::move(providers)),
      bucket_ms_(std::max<std::int64_t>(1000, static_cast<std::int64_t>(window_s * 1000 / 30))),
      window_ms_(static_cast<std::int64_t>(window_s * 1000)),
      prefix_(std::move(key_prefix)),
      client_(std::make_unique<redis::client>(io_, std::move(options), metrics, metric_shard)) {}

redis_shared_store::~redis_shared_store() {
  client_->close();
  client_.reset();
}

void redis_shared_store::exchange(const exchange_in& in, exchange_out& out) {
  const std::int64_t now_ms = epoch_ms(in.now);
  const std::int64_t bucket = now_ms / bucket_ms_;
  const std::int64_t first_bucket = (now_ms - window_ms_) / bucket_ms_;
  const std::string expire_s = std::to_string((window_ms_ + 2 * bucket_ms_) / 1000 + 1);

  // Every string the pipeline's views point at lives here until it returns
  // (a deque: adding one moves none of the others).
  std::deque<std::string> texts;
  auto keep = [&texts](std::string s) -> std::string_view { return texts.emplace_back(std::move(s)); };
  std::vector<std::vector<std::string_view>> commands;
  std::size_t writes = 0;
  const std::string bucket_text = std::to_string(bucket);
  for (std::size_t i = 0; i < providers_.size(); ++i) {
    const attempt_counts d = i < in.deltas.size() ? in.deltas[i] : attempt_counts{};
    if (d.successes + d.failures + d.client_errors > 0) {
      const std::string_view key = keep(prefix_ + "window:" + providers_[i] + ":" + bucket_text);
      const std::pair<const char*, std::uint64_t> fields[] = {{"s", d.successes},
                                                              {"f", d.failures},
                                                              {"c", d.client_errors}};
      for (const auto& [field, n] : fields) {
        if (n > 0) commands.push_back({"HINCRBY", key, field, keep(std::to_string(n))});
      }
      commands.push_back({"EXPIRE", key, expire_s});
    }
    if (i < in.openings.size() && in.openings[i]) {
      const std::int64_t until = epoch_ms(*in.openings[i]);
      if (until > now_ms) {
        commands.push_back({"SET", keep(prefix_ + "breaker:" + providers_[i]), keep(std::to_string(until)), "PX",
                            keep(std::to_string(until - now_ms))});
      }
    }
  }
  writes = commands.size();
  std::vector<std::string_view> mget{"MGET"};
  for (const auto& p : providers_) mget.push_back(keep(prefix_ + "breaker:" + p));
  commands.push_back(std::move(mget));
  for (const auto& p : providers_) {
    for (std::int64_t b = first_bucket; b <= bucket; ++b) {
      commands.push_back({"HMGET", keep(prefix_ + "window:" + p + ":" + std::to_string(b)), "s", "f", "c"});
    }
  }

  // The io_context runs only here, on this thread: first let the client
  // catch up on what happened since the last round (a reconnect due).
  io_.restart();
  io_.poll();
  std::optional<std::vector<redis::result>> results;
  boost::asio::co_spawn(io_, client_->pipeline(commands),
                        [&results](std::exception_ptr e, std::vector<redis::result> r) {
                          if (!e) results = std::move(r);
                        });
  // The client completes every command within its timeout; the margin
  // covers scheduling.
  const auto give_up = std::chrono::steady_clock::now() + client_->options().timeout + std::chrono::seconds(1);
  while (!results && std::chrono::steady_clock::now() < give_up) io_.run_one_for(std::chrono::milliseconds(10));
  if (!results || results->size() != commands.size()) return;

  out.pushed = std::all_of(results->begin(), results->begin() + static_cast<std::ptrdiff_t>(writes),
                           [](const redis::result& r) { return r.ok(); });
  const redis::result& breakers = (*results)[writes];
  if (!breakers.ok() || breakers.value.elements.size() != providers_.size()) return;
  for (std::size_t k = writes; k < results->size(); ++k) {
    if (!(*results)[k].ok()) return;
  }
  out.open_until.assign(providers_.size(), std::nullopt);
  out.window.assign(providers_.size(), attempt_counts{});
  std::size_t k = writes + 1;
  for (std::size_t i = 0; i < providers_.size(); ++i) {
    const redis::reply& b = breakers.value.elements[i];
    std::int64_t until = 0;
    if (b.type == redis::reply::kind::string &&
        std::from_chars(b.text.data(), b.text.data() + b.text.size(), until).ec == std::errc{} && until > now_ms) {
      out.open_until[i] = wall_time(std::chrono::duration_cast<wall_time::duration>(std::chrono::milliseconds(until)));
    }
    for (std::int64_t bk = first_bucket; bk <= bucket; ++bk, ++k) {
      const auto& fields = (*results)[k].value.elements;
      if (fields.size() != 3) continue;
      out.window[i].successes += as_count(fields[0]);
      out.window[i].failures += as_count(fields[1]);
      out.window[i].client_errors += as_count(fields[2]);
    }
  }
  out.read = true;
}

}  // namespace gatewayz::health
