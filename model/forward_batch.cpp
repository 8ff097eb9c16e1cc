#include "model/forward_batch.h"

#include <algorithm>
#include <stdexcept>

namespace pagedserve {

void check_forward_batch(const ForwardBatch& batch, int vocab_size, int max_tokens, const std::string& who) {
  const int num_tokens = batch.num_tokens();
  auto fail = [&](const std::string& what) { throw std::invalid_argument(who + ": " + what); };
  if (num_tokens > max_tokens) {
    fail(std::to_string(num_tokens) + " tokens exceed max_num_batched_tokens " + std::to_string(max_tokens));
  }
  if (static_cast<int>(batch.positions.size()) != num_tokens ||
      static_cast<int>(batch.slot_mapping.size()) != num_tokens) {
    fail("positions and slot_mapping must have one entry per token");
  }
  if (batch.decode.num_tokens() + batch.prefill.num_tokens() != num_tokens) {
    fail("decode and prefill parts do not cover the tokens");
  }
  for (std::int32_t id : batch.token_ids) {
    if (id < 0 || id >= vocab_size) fail("token id " + std::to_string(id) + " outside the vocabulary");
  }
  for (std::int32_t position : batch.positions) {
    if (position < 0) fail("negative position");
  }
  for (std::int32_t index : batch.sample_token_indices) {
    if (index < 0 || index >= num_tokens)
      fail("sample index " + std::to_string(index) + " outside the batch");
  }
  for (const ScoredPosition& scored : batch.scored_positions) {
    if (scored.token_index < 0 || scored.token_index >= num_tokens)
      fail("scored index " + std::to_string(scored.token_index) + " outside the batch");
    if (scored.next_token < 0 || scored.next_token >= vocab_size)
      fail("scored token id " + std::to_string(scored.next_token) + " outside the vocabulary");
    if (scored.num_logprobs < 0 || scored.num_logprobs > kMaxScoredLogprobs)
      fail("scored position asks " + std::to_string(scored.num_logprobs) + " logprobs, at most " +
           std::to_string(kMaxScoredLogprobs));
  }
}

std::vector<std::int32_t> logits_token_indices(const ForwardBatch& batch) {
  std::vector<std::int32_t> indices = batch.sample_token_indices;
  indices.reserve(indices.size() + batch.scored_positions.size());
  for (const ScoredPosition& scored : batch.scored_positions) indices.push_back(scored.token_index);
  return indices;
}

bool is_plain_decode(const ForwardBatch& batch) {
  const int rows = batch.decode.num_rows;
  if (batch.prefill.num_rows != 0 || batch.prefill.num_tokens() != 0 || rows == 0) return false;
  if (batch.decode.num_tokens() != rows || batch.num_tokens() != rows) return false;
  if (!batch.scored_positions.empty()) return false;
  if (static_cast<int>(batch.sample_token_indices.size()) != rows) return false;
  for (int i = 0; i < rows; ++i) {
    if (batch.sample_token_indices[static_cast<std::size_t>(i)] != i) return false;
  }
  return true;
}

ForwardBatch padded_decode_batch(const ForwardBatch& batch, int rows, int table_width) {
  const int live = batch.decode.num_rows;
  if ((live > 0 && !is_plain_decode(batch)) || rows < live || table_width < batch.decode.max_pages_per_seq) {
    throw std::invalid_argument("padded_decode_batch: not a plain decode step that fits " + std::to_string(rows) +
                                " rows x " + std::to_string(table_width) + " pages");
  }
  const auto n = static_cast<std::size_t>(rows);
  ForwardBatch padded;
  padded.token_ids = batch.token_ids;
  padded.token_ids.resize(n, 0);
  padded.positions = batch.positions;
  padded.positions.resize(n, 0);
  padded.slot_mapping = batch.slot_mapping;
  padded.slot_mapping.resize(n, -1);
  padded.sample_token_indices.resize(n);
  AttentionBatch& decode = padded.decode;
  decode.num_rows = rows;
  decode.max_pages_per_seq = table_width;
  decode.query_start_len.resize(n + 1);
  for (int i = 0; i <= rows; ++i) decode.query_start_len[static_cast<std::size_t>(i)] = i;
  for (int i = 0; i < rows; ++i) padded.sample_token_indices[static_cast<std::size_t>(i)] = i;
  decode.seq_lens = batch.decode.seq_lens;
  decode.seq_lens.resize(n, 0);
  decode.block_table.assign(n * static_cast<std::size_t>(table_width), -1);
  const int width = batch.decode.max_pages_per_seq;
  for (int r = 0; r < live; ++r) {
    const auto* from = batch.decode.block_table.data() + static_cast<std::size_t>(r) * width;
    std::copy(from, from + width, decode.block_table.begin() + static_cast<std::ptrdiff_t>(r) * table_width);
  }
  padded.prefill.query_start_len = {0};
  return padded;
}

}  // namespace pagedserve
