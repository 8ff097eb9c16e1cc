#include "scheduler/batch_builder.h"

#include <algorithm>
#include <span>
#include <vector>

namespace pagedserve {

namespace {

int widest_row(const StepPlan& plan) {
  int widest = 0;
  for (const std::vector<ScheduledChunk>* chunks : {&plan.decodes, &plan.prefills}) {
    for (const ScheduledChunk& chunk : *chunks) {
      widest = std::max(widest, chunk.request->blocks().table.num_pages());
    }
  }
  return widest;
}

// Appends the chunks' tokens to `batch` and fills `part` with their attention metadata.
void add_part(const std::vector<ScheduledChunk>& chunks, int row_width, ForwardBatch& batch,
              AttentionBatch& part) {
  part.num_rows = static_cast<int>(chunks.size());
  part.max_pages_per_seq = row_width;
  part.query_start_len.assign(1, 0);
  part.seq_lens.clear();
  part.block_table.assign(chunks.size() * static_cast<std::size_t>(row_width), -1);
  for (std::size_t row = 0; row < chunks.size(); ++row) {
    const ScheduledChunk& chunk = chunks[row];
    const Request& request = *chunk.request;
    const BlockTable& table = request.blocks().table;
    const std::size_t first_token = batch.token_ids.size();
    const auto tokens = request.token_ids().subspan(static_cast<std::size_t>(chunk.start_position),
                                                    static_cast<std::size_t>(chunk.num_new_tokens));
    batch.token_ids.insert(batch.token_ids.end(), tokens.begin(), tokens.end());
    for (int i = 0; i < chunk.num_new_tokens; ++i) batch.positions.push_back(chunk.start_position + i);
    batch.slot_mapping.resize(batch.token_ids.size());
    table.export_slots(chunk.start_position,
                       std::span<std::int32_t>(batch.slot_mapping).subspan(first_token));
    if (chunk.samples)
      batch.sample_token_indices.push_back(static_cast<std::int32_t>(batch.token_ids.size() - 1));
    const int num_logprobs = request.sampling().prompt_logprobs.value_or(0);
    for (int i = 0; i < chunk.num_scored; ++i) {
      const auto position = static_cast<std::size_t>(chunk.start_position + i);
      batch.scored_positions.push_back(
          {static_cast<std::int32_t>(first_token) + i, request.token_ids()[position + 1], num_logprobs});
    }

    part.query_start_len.push_back(part.query_start_len.back() + chunk.num_new_tokens);
    part.seq_lens.push_back(chunk.start_position + chunk.num_new_tokens);
    table.export_row(
        std::span<std::int32_t>(part.block_table)
            .subspan(row * static_cast<std::size_t>(row_width), static_cast<std::size_t>(row_width)));
  }
}

}  // namespace

int max_pages_per_seq(const SchedulerConfig& config) noexcept {
  return (config.max_model_len + config.page_size - 1) / config.page_size;
}

ForwardBatch build_forward_batch(const StepPlan& plan, int max_pages_per_seq) {
  const int row_width = max_pages_per_seq > 0 ? max_pages_per_seq : widest_row(plan);
  ForwardBatch batch;
  const std::size_t num_tokens = static_cast<std::size_t>(plan.num_scheduled_tokens);
  batch.token_ids.reserve(num_tokens);
  batch.positions.reserve(num_tokens);
  batch.slot_mapping.reserve(num_tokens);
  add_part(plan.decodes, row_width, batch, batch.decode);
  add_part(plan.prefills, row_width, batch, batch.prefill);
  batch.page_copies = plan.page_copies;
  return batch;
}

}  // namespace pagedserve
