#pragma once
// A store that forwards to a real backend and lets a test see and steer the
// calls: count key lookups, simulate an outage (every call throws and ping()
// fails, as with an unreachable server), hold write_ledger until released,
// refuse every write (or batches holding one request id) while ping()
// still answers.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "store/store.hpp"

namespace gatewayz::test {

namespace db = gatewayz::store;

class forwarding_store final : public db::store {
 public:
  explicit forwarding_store(db::store& real) : real_(real) {}

  std::atomic<bool> down{false};
  // write_ledger fails while ping() still succeeds (a lock timeout).
  std::atomic<bool> refuse_writes{false};
  std::atomic<int> find_key_calls{0};
  // Runs after each find_key has read the real store (the test's thread only).
  std::function<void()> on_find_key;
  std::atomic<int> write_ledger_calls{0};

  // write_ledger calls block while held; blocked_writes counts the waiting ones.
  void hold_writes() {
    std::lock_guard lock{mu_};
    held_ = true;
  }
  void release_writes() {
    {
      std::lock_guard lock{mu_};
      held_ = false;
    }
    cv_.notify_all();
  }
  bool wait_for_blocked_write(std::chrono::milliseconds timeout) {
    std::unique_lock lock{mu_};
    return cv_.wait_for(lock, timeout, [this] { return blocked_writes_ > 0; });
  }

  // Any batch containing this request id fails (the store stays up).
  void refuse_request_id(std::string id) {
    std::lock_guard lock{mu_};
    refused_id_ = std::move(id);
  }

  std::string_view backend() const override { return real_.backend(); }
  void migrate() override {
    check();
    real_.migrate();
  }
  bool ping() noexcept override { return !down.load() && real_.ping(); }
  db::customer create_customer(std::string_view name, db::nanos_usd initial_credit) override {
    check();
    return real_.create_customer(name, initial_credit);
  }
  std::optional<db::customer> find_customer(std::string_view name) override {
    check();
    return real_.find_customer(name);
  }
  std::vector<db::customer> list_customers() override {
    check();
    return real_.list_customers();
  }
  db::nanos_usd credit(std::int64_t customer_id, db::nanos_usd amount) override {
    check();
    return real_.credit(customer_id, amount);
  }
  db::created_key create_key(std::int64_t customer_id) override {
    check();
    return real_.create_key(customer_id);
  }
  std::vector<db::api_key_info> list_keys() override {
    check();
    return real_.list_keys();
  }
  bool revoke_key(std::int64_t key_id) override {
    check();
    return real_.revoke_key(key_id);
  }
  std::optional<db::key_lookup> find_key(std::string_view secret) override {
    ++find_key_calls;
    check();
    auto found = real_.find_key(secret);
    if (on_find_key) on_find_key();
    return found;
  }
  using db::store::write_ledger;
  std::size_t write_ledger(std::span<const db::ledger_row> rows, const ledger_pause& pause) override {
    ++write_ledger_calls;
    {
      std::unique_lock lock{mu_};
      if (held_) {
        ++blocked_writes_;
        cv_.notify_all();
        cv_.wait(lock, [this] { return !held_; });
        --blocked_writes_;
      }
      if (!refused_id_.empty()) {
        for (const auto& row : rows) {
          if (row.request_id == refused_id_) throw db::store_error("test: row refused by a constraint");
        }
      }
    }
    check();
    if (refuse_writes.load()) throw db::store_error("test: lock timeout");
    return real_.write_ledger(rows, pause);
  }
  std::optional<db::ledger_row> find_ledger_row(std::string_view request_id) override {
    check();
    return real_.find_ledger_row(request_id);
  }
  std::int64_t count_ledger_rows() override {
    check();
    return real_.count_ledger_rows();
  }
  std::vector<db::model_stats> stats(std::chrono::seconds window) override {
    check();
    return real_.stats(window);
  }

 private:
  void check() const {
    if (down.load()) throw db::store_error("test: connection refused");
  }

  db::store& real_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  int blocked_writes_ = 0;
  std::string refused_id_;
};

}  // namespace gatewayz::test
