#include "model/forward_batch.h"

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
}

}  // namespace pagedserve
