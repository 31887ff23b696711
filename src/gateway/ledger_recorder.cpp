#include "gateway/ledger_recorder.hpp"

namespace gatewayz::gateway {

void ledger_recorder::on_request(std::size_t shard, const request_record& request) noexcept {
  // Every field is set: the slot holds an earlier request's row (a full
  // queue is counted by the writer).
  ledger_.enqueue_with(shard, [&request](store::ledger_row& row) {
    row.request_id.assign(request.ledger_id);
    row.unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(request.received_wall.time_since_epoch()).count();
    row.customer_id = request.customer_id;
    row.key_id = request.key_id;
    row.model.assign(request.model);
    row.provider.assign(request.provider);
    row.attempts = request.attempts;
    row.status.assign(request.success ? "success" : "error");
    row.http_status = request.http_status;
    row.input_tokens = request.usage.input_tokens;
    row.output_tokens = request.usage.output_tokens;
    row.cost = request.cost_nanos;
    row.latency_ms = request.latency_s * 1000.0;
    row.ttft_ms = request.time_to_first_chunk_s ? std::optional(*request.time_to_first_chunk_s * 1000.0) : std::nullopt;
    row.streamed = request.streamed;
  });
}

}  // namespace gatewayz::gateway
