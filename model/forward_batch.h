// The flattened input of one model forward: what the engine builds from a scheduler StepPlan and
// hands to the model. Host memory, plain data; built and consumed on the engine thread.
//
// Token order: decode tokens first (exactly one per decode row), then the prefill chunks in row
// order. "position = index into the sequence = slot" ties positions and slot_mapping together.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pagedserve {

// Metadata of one attention launch (the decode part or the prefill part), per kernels/attention.h.
struct AttentionBatch {
  int num_rows = 0;                           // sequences in this part
  int max_pages_per_seq = 0;                  // row width of block_table
  std::vector<std::int32_t> query_start_len;  // [num_rows + 1], 0-based within this part's tokens
  std::vector<std::int32_t> seq_lens;         // [num_rows], live K/V length after this step
  std::vector<std::int32_t> block_table;      // [num_rows, max_pages_per_seq], -1 padded

  int num_tokens() const { return query_start_len.empty() ? 0 : query_start_len.back(); }
};

struct ForwardBatch {
  std::vector<std::int32_t> token_ids;     // [num_tokens]
  std::vector<std::int32_t> positions;     // [num_tokens], position of each token in its sequence
  std::vector<std::int32_t> slot_mapping;  // [num_tokens], page * page_size + offset
  AttentionBatch decode;                   // tokens [0, decode.num_tokens())
  AttentionBatch prefill;                  // tokens [decode.num_tokens(), num_tokens)
  // [num_samples] indices into the token list whose logits are wanted (the last scheduled token of
  // every sequence that samples this step); the model computes lm_head only for these rows.
  std::vector<std::int32_t> sample_token_indices;

  int num_tokens() const { return static_cast<int>(token_ids.size()); }
};

// The invariants every backend needs before it writes anything: one position and slot per token,
// the decode and prefill parts covering the tokens, token ids in [0, vocab_size), positions >= 0,
// sample indices inside the batch, at most max_tokens tokens. Throws std::invalid_argument whose
// message starts with `who` (e.g. "LlamaModel::forward").
void check_forward_batch(const ForwardBatch& batch, int vocab_size, int max_tokens, const std::string& who);

// A decode-only step whose every row samples its one token, in row order: what a captured decode
// graph can replay (model/cuda/decode_graphs.h).
bool is_plain_decode(const ForwardBatch& batch);

// `batch` (a plain decode step, or empty) widened to `rows` rows and a block table `table_width`
// pages wide, so that its packed layout depends on (rows, table_width) only. The added rows are
// inactive: token 0 at position 0, slot -1 (no K/V write), seq_len 0 (no K/V read), and they are
// sampled (their logits are computed and ignored). rows >= batch.decode.num_rows, table_width >=
// batch.decode.max_pages_per_seq.
ForwardBatch padded_decode_batch(const ForwardBatch& batch, int rows, int table_width);

}  // namespace pagedserve
