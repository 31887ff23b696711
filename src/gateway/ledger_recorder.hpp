#pragma once
// The request observer that writes each request's usage ledger row: every
// accepted request (authenticated, valid body, known model) gets exactly
// one, refused and disconnected ones included. Rows are written in place
// into the shard's ledger queue (no allocation); the writer thread commits
// them (ledger/ledger_writer.hpp).

#include "gateway/request_record.hpp"
#include "ledger/ledger_writer.hpp"

namespace gatewayz::gateway {

class ledger_recorder final : public request_observer {
 public:
  explicit ledger_recorder(ledger::ledger_writer& ledger) : ledger_(ledger) {}

  bool wants_identity() const override { return true; }
  void on_request(std::size_t shard, const request_record& request) noexcept override;

 private:
  ledger::ledger_writer& ledger_;
};

}  // namespace gatewayz::gateway
