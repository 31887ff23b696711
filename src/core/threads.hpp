#pragma once
// Thread identity and priority.
//
// Names show in `top -H`, `ps -L`, perf and gdb, so an operator can tell a
// busy shard from a busy ledger writer.
//
// Background threads (ledger writer, health monitor, metrics render, store
// queries) share cores with the request-serving shards; on a busy core their
// bursts (a ledger batch, a large /metrics render) would otherwise preempt a
// shard mid-request and show up as tail latency. Lowered, they still get CPU
// time whenever a shard waits, and a fair share under saturation, but a shard
// that becomes runnable is no longer made to wait behind them.

#include <string_view>

namespace gatewayz {

// Names the calling thread (Linux keeps the first 15 bytes).
void name_this_thread(std::string_view name) noexcept;

// Puts the calling thread in SCHED_BATCH (no wake-up preemption of others)
// and raises its nice value by `nice_increment` (relative to its current
// one, at most 19). Idempotent per thread; failures are ignored (the thread
// then simply keeps its priority).
void lower_thread_priority(int nice_increment = 5) noexcept;

}  // namespace gatewayz
