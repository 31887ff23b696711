#include "redis/client.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <deque>
#include <limits>
#include <optional>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "telemetry/catalog.hpp"

namespace gatewayz::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t no_op = std::numeric_limits<std::size_t>::max();
constexpr std::size_t read_chunk_bytes = 16 * 1024;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool same_lower(std::string_view lowered, std::string_view name) {
  if (lowered.size() != name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (lowered[i] != lower(name[i])) return false;
  }
  return true;
}

void append_number(std::string& out, std::size_t n) {
  std::array<char, 24> digits{};
  const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), n);
  (void)ec;
  out.append(digits.data(), end);
}

// RESP: *<count>\r\n then $<len>\r\n<bytes>\r\n per argument.
template <class Args>
void encode(std::string& out, const Args& args) {
  out += '*';
  append_number(out, args.size());
  out += "\r\n";
  for (const std::string_view a : args) {
    out += '$';
    append_number(out, a.size());
    out += "\r\n";
    out.append(a);
    out += "\r\n";
  }
}

reply convert(const redisReply& r) {
  reply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = reply::kind::string;
      out.text.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = reply::kind::status;
      out.text.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = reply::kind::error;
      out.text.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = reply::kind::integer;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = reply::kind::array;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
      break;
    default: out.type = reply::kind::nil; break;
  }
  return out;
}

struct reader_deleter {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};
using reader_ptr = std::unique_ptr<redisReader, reader_deleter>;

}  // namespace

std::string_view to_string(outcome o) {
  switch (o) {
    case outcome::ok: return "ok";
    case outcome::server_error: return "server_error";
    case outcome::timeout: return "timeout";
    case outcome::unavailable: return "unavailable";
  }
  return "unknown";
}

// The coroutine waiting for one command or pipeline: lives in its frame.
struct waiter {
  std::span<result> results;
  std::size_t remaining = 0;
  asio::any_completion_handler<void()> handler;

  // (Not operator=: Boost 1.81's move assignment wraps the handler in
  // another any_completion_handler instead of moving it.)
  template <class Handler>
  void take(Handler&& h) {
    asio::any_completion_handler<void()> wrapped(std::forward<Handler>(h));
    handler.swap(wrapped);
  }
};

struct client::state : std::enable_shared_from_this<client::state> {
  // A command written (or queued to be written) on a connection, in reply order.
  struct pending {
    waiter* w = nullptr;  // null: the client's own AUTH / SELECT
    std::size_t index = 0;
    std::size_t op = no_op;
    clock::time_point started;
    clock::time_point deadline;
  };

  enum class phase : std::uint8_t { connecting, ready, backoff, closed };
  enum class pool_slot : std::uint8_t { none, idle, active };

  struct connection {
    explicit connection(asio::io_context& io) : socket(io), resolver(io), backoff_timer(io) {}
    tcp::socket socket;
    tcp::resolver resolver;
    asio::steady_timer backoff_timer;
    phase now = phase::connecting;
    bool handshaken = false;
    bool handshaken_once = false;  // in the latest connect attempt
    bool timed_out = false;        // why the socket was closed by the sweeper
    clock::time_point connect_deadline;
    std::uint64_t epoch = 0;  // bumped on every drop: stale write completions ignore themselves
    std::string out;          // encoded, not yet handed to a write
    std::string sending;      // the bytes of the write in progress
    bool writing = false;
    bool flush_posted = false;
    std::deque<pending> in_flight;
    std::size_t user_in_flight = 0;
    std::size_t handshake_left = 0;
    reader_ptr reader{redisReaderCreate()};
    pool_slot counted = pool_slot::none;
  };

  struct op_metrics {
    std::string name;  // lower case
    telemetry::counter_handle success, error;
    telemetry::histogram_handle duration, duration_plain;
    bool has_plain = false;
    telemetry::counter_handle plain_success, plain_error;
  };

  state(asio::io_context& context, client_options o, telemetry::catalog* m, std::size_t shard)
      : io(context), opts(std::move(o)), metrics(m), metric_shard(shard), sweep_timer(context) {
    if (opts.pool_size == 0) opts.pool_size = 1;
    sweep_period =
        std::clamp<clock::duration>(opts.timeout / 10, std::chrono::milliseconds(1), std::chrono::milliseconds(10));
    if (metrics != nullptr) {
      active = metrics->redis_pool_connections.series({"active"});
      idle = metrics->redis_pool_connections.series({"idle"});
      active_plain = metrics->redis_pool_current.series({"active"});
      idle_plain = metrics->redis_pool_current.series({"idle"});
      pool_max = metrics->redis_pool_max.series();
      pool_max.inc(metric_shard, static_cast<double>(opts.pool_size));
    }
    host_is_literal = [&] {
      boost::system::error_code ec;
      (void)asio::ip::make_address(opts.server.host, ec);
      return !ec;
    }();
    encode_handshake();
  }

  asio::io_context& io;
  client_options opts;
  telemetry::catalog* metrics;
  std::size_t metric_shard;
  bool host_is_literal = false;
  bool closed = false;
  std::string handshake;  // AUTH and SELECT, encoded once
  std::size_t handshake_commands = 0;
  std::vector<std::unique_ptr<connection>> connections;
  std::vector<op_metrics> ops;
  asio::steady_timer sweep_timer;
  clock::duration sweep_period;
  bool sweeping = false;

  telemetry::gauge_handle active, idle, active_plain, idle_plain, pool_max;

  void encode_handshake() {
    const endpoint& e = opts.server;
    if (!e.password.empty()) {
      if (e.username.empty()) {
        const std::array<std::string_view, 2> auth{"AUTH", e.password};
        encode(handshake, auth);
      } else {
        const std::array<std::string_view, 3> auth{"AUTH", e.username, e.password};
        encode(handshake, auth);
      }
      ++handshake_commands;
    }
    if (e.database != 0) {
      std::string db;
      append_number(db, static_cast<std::size_t>(e.database));
      const std::array<std::string_view, 2> select{"SELECT", db};
      encode(handshake, select);
      ++handshake_commands;
    }
  }

  void start() {
    for (std::size_t i = 0; i < opts.pool_size; ++i) {
      connections.push_back(std::make_unique<connection>(io));
      asio::co_spawn(io, run(shared_from_this(), connections.back().get()), asio::detached);
    }
  }

  std::size_t op_index(std::string_view name) {
    if (metrics == nullptr) return no_op;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (same_lower(ops[i].name, name)) return i;
    }
    op_metrics m;
    m.name.reserve(name.size());
    for (const char c : name) m.name += lower(c);
    m.success = metrics->redis_operations.series({m.name, "success"});
    m.error = metrics->redis_operations.series({m.name, "error"});
    m.duration = metrics->redis_operation_duration.series({m.name});
    m.duration_plain = metrics->redis_duration_plain.series({m.name});
    telemetry::counter_family* plain = nullptr;
    if (m.name == "get") plain = &metrics->redis_get_operations;
    if (m.name == "set") plain = &metrics->redis_set_operations;
    if (m.name == "del") plain = &metrics->redis_del_operations;
    if (m.name == "hget") plain = &metrics->redis_hget_operations;
    if (m.name == "hset") plain = &metrics->redis_hset_operations;
    if (plain != nullptr) {
      m.has_plain = true;
      m.plain_success = plain->series({"success"});
      m.plain_error = plain->series({"error"});
    }
    ops.push_back(std::move(m));
    return ops.size() - 1;
  }

  void count(const pending& p, outcome o, clock::time_point now) {
    if (p.op == no_op) return;
    const op_metrics& m = ops[p.op];
    const bool ok = o == outcome::ok;
    (ok ? m.success : m.error).inc(metric_shard);
    if (m.has_plain) (ok ? m.plain_success : m.plain_error).inc(metric_shard);
    if (o == outcome::ok || o == outcome::server_error) {
      const double seconds = std::chrono::duration<double>(now - p.started).count();
      m.duration.observe(metric_shard, seconds);
      m.duration_plain.observe(metric_shard, seconds);
    }
  }

  // Fails a command that never reached a connection.
  void count_unavailable(std::size_t op) {
    pending p;
    p.op = op;
    count(p, outcome::unavailable, clock::now());
  }

  void recount(connection& c) {
    pool_slot want = pool_slot::none;
    if (c.now == phase::ready && c.handshaken) want = c.user_in_flight > 0 ? pool_slot::active : pool_slot::idle;
    if (want == c.counted || metrics == nullptr) {
      c.counted = want;
      return;
    }
    if (c.counted == pool_slot::active) {
      active.dec(metric_shard);
      active_plain.dec(metric_shard);
    } else if (c.counted == pool_slot::idle) {
      idle.dec(metric_shard);
      idle_plain.dec(metric_shard);
    }
    if (want == pool_slot::active) {
      active.inc(metric_shard);
      active_plain.inc(metric_shard);
    } else if (want == pool_slot::idle) {
      idle.inc(metric_shard);
      idle_plain.inc(metric_shard);
    }
    c.counted = want;
  }

  // Delivers `r` to the waiter of `p`; wakes it (later, on the io_context)
  // once all its commands are answered.
  void complete(const pending& p, outcome o, reply&& value, clock::time_point now) {
    count(p, o, now);
    if (p.w == nullptr) return;
    p.w->results[p.index].status = o;
    p.w->results[p.index].value = std::move(value);
    if (--p.w->remaining == 0) {
      // Resumed from the io_context, not from inside the reader's loop.
      asio::post(io, [handler = std::move(p.w->handler)]() mutable { std::move(handler)(); });
    }
  }

  // The connection a new command goes to: the ready one with the fewest
  // commands in flight, else one still connecting; null when all back off.
  connection* pick() {
    connection* best = nullptr;
    for (auto& c : connections) {
      if (c->now != phase::ready) continue;
      if (best == nullptr || c->in_flight.size() < best->in_flight.size()) best = c.get();
    }
    if (best != nullptr) return best;
    for (auto& c : connections) {
      if (c->now == phase::connecting && (best == nullptr || c->in_flight.size() < best->in_flight.size())) {
        best = c.get();
      }
    }
    return best;
  }

  void enqueue(connection& c, waiter* w, std::size_t index, std::size_t op, clock::time_point now) {
    c.in_flight.push_back(pending{w, index, op, now, now + opts.timeout});
    ++c.user_in_flight;
  }

  void schedule_flush(connection& c) {
    if (c.flush_posted || c.now != phase::ready) return;
    c.flush_posted = true;
    asio::post(io, [self = shared_from_this(), conn = &c] {
      conn->flush_posted = false;
      self->flush(*conn);
    });
  }

  // Hands everything encoded so far to one write.
  void flush(connection& c) {
    if (c.writing || c.out.empty() || c.now != phase::ready) return;
    c.writing = true;
    c.sending.swap(c.out);
    c.out.clear();
    asio::async_write(
        c.socket, asio::buffer(c.sending),
        [self = shared_from_this(), conn = &c, epoch = c.epoch](boost::system::error_code ec, std::size_t) {
          conn->writing = false;
          conn->sending.clear();
          if (conn->epoch != epoch) {
            // Dropped meanwhile; the next connection may have queued bytes.
            self->flush(*conn);
            return;
          }
          if (ec) {
            boost::system::error_code ignored;
            conn->socket.close(ignored);  // the reader sees it and drops the connection
            return;
          }
          self->flush(*conn);
        });
  }

  // The socket failed or was closed: every command in flight fails, and the
  // connection starts over.
  void drop(connection& c) {
    ++c.epoch;
    boost::system::error_code ignored;
    c.socket.close(ignored);
    c.resolver.cancel();
    c.reader.reset(redisReaderCreate());
    c.out.clear();
    c.handshaken = false;
    const outcome why = c.timed_out ? outcome::timeout : outcome::unavailable;
    c.timed_out = false;
    const auto now = clock::now();
    std::deque<pending> failed;
    failed.swap(c.in_flight);
    c.user_in_flight = 0;
    if (c.now != phase::closed) c.now = phase::backoff;
    recount(c);
    for (const pending& p : failed) complete(p, why, reply{}, now);
  }

  // Wakes every few ms while anything waits, to enforce deadlines.
  void arm_sweeper() {
    if (sweeping || closed) return;
    sweeping = true;
    sweep_timer.expires_after(sweep_period);
    sweep_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      self->sweeping = false;
      if (ec || self->closed) return;
      self->sweep();
    });
  }

  void sweep() {
    const auto now = clock::now();
    bool waiting = false;
    for (auto& c : connections) {
      const bool connect_late = c->now == phase::connecting && c->connect_deadline <= now;
      const bool reply_late = !c->in_flight.empty() && c->in_flight.front().deadline <= now;
      if ((connect_late || reply_late) && (c->now == phase::connecting || c->now == phase::ready)) {
        // Closing makes the connect / read fail; run() then drops the
        // connection, failing its commands as timed out.
        c->timed_out = true;
        boost::system::error_code ignored;
        c->socket.close(ignored);
        c->resolver.cancel();
      }
      waiting = waiting || c->now == phase::connecting || !c->in_flight.empty();
    }
    if (waiting) arm_sweeper();
  }

  // Takes every complete reply out of the reader; false on a protocol error.
  bool deliver(connection& c) {
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(c.reader.get(), &raw) != REDIS_OK) return false;
      if (raw == nullptr) return true;
      std::unique_ptr<redisReply, decltype(&freeReplyObject)> r(static_cast<redisReply*>(raw), &freeReplyObject);
      if (c.in_flight.empty()) return false;  // a reply nobody asked for
      const pending p = c.in_flight.front();
      c.in_flight.pop_front();
      reply value = convert(*r);
      if (p.w == nullptr) {
        if (value.type == reply::kind::error) return false;  // AUTH / SELECT refused
        if (--c.handshake_left == 0) {
          c.handshaken = true;
          recount(c);
        }
        continue;
      }
      --c.user_in_flight;
      const outcome o = value.type == reply::kind::error ? outcome::server_error : outcome::ok;
      complete(p, o, std::move(value), clock::now());
      recount(c);
    }
  }

  static asio::awaitable<void> run(std::shared_ptr<state> self, connection* c) {
    auto backoff = self->opts.reconnect_min;
    while (!self->closed) {
      c->now = phase::connecting;
      c->connect_deadline = clock::now() + self->opts.timeout;
      self->arm_sweeper();
      const bool ready = co_await self->connect(*c);
      if (ready && !self->closed) {
        c->handshaken_once = co_await self->serve(*c);
        if (c->handshaken_once) backoff = self->opts.reconnect_min;
      }
      self->drop(*c);
      if (self->closed) break;
      // A connection that worked comes back after reconnect_min; failing
      // attempts wait twice as long each time, up to reconnect_max.
      c->backoff_timer.expires_after(backoff);
      co_await c->backoff_timer.async_wait(use_tuple);
      if (!c->handshaken_once) backoff = std::min(backoff * 2, self->opts.reconnect_max);
      c->handshaken_once = false;
    }
    c->now = phase::closed;
  }

  asio::awaitable<bool> connect(connection& c) {
    const endpoint& e = opts.server;
    if (host_is_literal) {
      const tcp::endpoint target(asio::ip::make_address(e.host), e.port);
      auto [ec] = co_await c.socket.async_connect(target, use_tuple);
      if (ec) co_return false;
    } else {
      auto [rec, found] = co_await c.resolver.async_resolve(e.host, std::to_string(e.port), use_tuple);
      if (rec || closed || c.timed_out) co_return false;
      auto [ec, used] = co_await asio::async_connect(c.socket, found, use_tuple);
      (void)used;
      if (ec) co_return false;
    }
    if (closed || c.timed_out) co_return false;
    boost::system::error_code ignored;
    c.socket.set_option(tcp::no_delay(true), ignored);
    c.now = phase::ready;
    c.handshaken = handshake_commands == 0;
    c.handshake_left = handshake_commands;
    if (handshake_commands > 0) {
      // Ahead of whatever was queued while connecting.
      c.out.insert(0, handshake);
      const auto now = clock::now();
      for (std::size_t i = 0; i < handshake_commands; ++i) {
        c.in_flight.push_front(pending{nullptr, 0, no_op, now, now + opts.timeout});
      }
    }
    recount(c);
    flush(c);
    co_return true;
  }

  // Reads replies until the connection fails; whether the handshake completed.
  asio::awaitable<bool> serve(connection& c) {
    std::array<char, read_chunk_bytes> chunk;
    for (;;) {
      auto [ec, n] = co_await c.socket.async_read_some(asio::buffer(chunk), use_tuple);
      if (ec || closed) break;
      if (redisReaderFeed(c.reader.get(), chunk.data(), n) != REDIS_OK) break;
      if (!deliver(c)) break;
    }
    co_return c.handshaken;
  }

  void close() {
    if (closed) return;
    closed = true;
    sweep_timer.cancel();
    for (auto& c : connections) {
      c->now = phase::closed;
      c->backoff_timer.cancel();
      drop(*c);
    }
    if (metrics != nullptr) pool_max.dec(metric_shard, static_cast<double>(opts.pool_size));
  }
};

client::client(asio::io_context& io, client_options options, telemetry::catalog* metrics, std::size_t metric_shard)
    : state_(std::make_shared<state>(io, std::move(options), metrics, metric_shard)) {
  state_->start();
}

client::~client() { close(); }

void client::close() { state_->close(); }

bool client::connected() const {
  for (const auto& c : state_->connections) {
    if (c->now == state::phase::ready && c->handshaken) return true;
  }
  return false;
}

const client_options& client::options() const { return state_->opts; }

asio::awaitable<result> client::command(std::span<const std::string_view> args) {
  const std::shared_ptr<state> self = state_;
  result out;
  const std::size_t op = args.empty() ? no_op : self->op_index(args.front());
  state::connection* c = self->closed || args.empty() ? nullptr : self->pick();
  if (c == nullptr) {
    self->count_unavailable(op);
    co_return out;
  }
  waiter w;
  w.results = std::span<result>(&out, 1);
  w.remaining = 1;
  encode(c->out, args);
  self->enqueue(*c, &w, 0, op, clock::now());
  self->schedule_flush(*c);
  self->recount(*c);
  self->arm_sweeper();
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&w](auto handler) { w.take(std::move(handler)); }, asio::use_awaitable);
  co_return out;
}

asio::awaitable<std::vector<result>> client::pipeline(std::span<const std::vector<std::string_view>> commands) {
  const std::shared_ptr<state> self = state_;
  std::vector<result> out(commands.size());
  if (commands.empty()) co_return out;
  state::connection* c = self->closed ? nullptr : self->pick();
  for (const auto& args : commands) {
    if (args.empty()) c = nullptr;
  }
  if (c == nullptr) {
    for (const auto& args : commands) self->count_unavailable(args.empty() ? no_op : self->op_index(args.front()));
    co_return out;
  }
  waiter w;
  w.results = std::span<result>(out);
  w.remaining = commands.size();
  const auto now = clock::now();
  for (std::size_t i = 0; i < commands.size(); ++i) {
    encode(c->out, commands[i]);
    self->enqueue(*c, &w, i, self->op_index(commands[i].front()), now);
  }
  self->schedule_flush(*c);
  self->recount(*c);
  self->arm_sweeper();
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&w](auto handler) { w.take(std::move(handler)); }, asio::use_awaitable);
  co_return out;
}

}  // namespace gatewayz::redis
