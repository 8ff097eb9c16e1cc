// The flattened input of one model forward: what the engine builds from a scheduler StepPlan and
// hands to the model. Host memory, plain data; built and consumed on the engine thread.
//
// Token order: decode tokens first (exactly one per decode row), then the prefill chunks in row
// order. "position = index into the sequence = slot" ties positions and slot_mapping together.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kvcache/page_copy.h"

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

// A token whose logits score the token that follows it in its sequence (prompt logprobs): lm_head
// runs for its row too, and the backend reports the next token's logprob, rank and top alternatives.
struct ScoredPosition {
  std::int32_t token_index = 0;   // into the token list
  std::int32_t next_token = 0;    // the id scored against this row's logits, in [0, vocab)
  std::int32_t num_logprobs = 0;  // top alternatives wanted, [0, kMaxScoredLogprobs]
};

inline constexpr int kMaxScoredLogprobs = 20;  // the GPU's kMaxSampleLogprobs (kernels/cuda/sampling_cuda.h)

struct ForwardBatch {
  std::vector<std::int32_t> token_ids;     // [num_tokens]
  std::vector<std::int32_t> positions;     // [num_tokens], position of each token in its sequence
  std::vector<std::int32_t> slot_mapping;  // [num_tokens], page * page_size + offset
  AttentionBatch decode;                   // tokens [0, decode.num_tokens())
  AttentionBatch prefill;                  // tokens [decode.num_tokens(), num_tokens)
  // [num_samples] indices into the token list whose logits are wanted (the last scheduled token of
  // every sequence that samples this step); the model computes lm_head only for these rows.
  std::vector<std::int32_t> sample_token_indices;
  // Prompt positions scored this step, in the order of their tokens; empty unless a request asks
  // for prompt logprobs. Their rows get logits after the sampled ones.
  std::vector<ScoredPosition> scored_positions;
  // Copies of partly filled pages (kvcache/page_copy.h), made before this step writes any K/V.
  std::vector<PageCopy> page_copies;

  int num_tokens() const { return static_cast<int>(token_ids.size()); }
  // Rows that go through lm_head: the sampled tokens, then the scored positions.
  int num_logits_rows() const {
    return static_cast<int>(sample_token_indices.size() + scored_positions.size());
  }
};

// [num_logits_rows] the token index of every row that gets logits: sample_token_indices, then each
// scored position's token_index.
std::vector<std::int32_t> logits_token_indices(const ForwardBatch& batch);

// The invariants every backend needs before it writes anything: one position and slot per token,
// the decode and prefill parts covering the tokens, token ids in [0, vocab_size), positions >= 0,
// sample and scored indices inside the batch, scored next tokens in [0, vocab_size) with at most
// kMaxScoredLogprobs alternatives, at most max_tokens tokens. Throws std::invalid_argument whose
// message starts with `who` (e.g. "LlamaModel::forward").
void check_forward_batch(const ForwardBatch& batch, int vocab_size, int max_tokens, const std::string& who);

// A decode-only step whose every row samples its one token, in row order, scoring nothing: what a
// captured decode graph can replay (model/cuda/decode_graphs.h).
bool is_plain_decode(const ForwardBatch& batch);

// `batch` (a plain decode step, or empty) widened to `rows` rows and a block table `table_width`
// pages wide, so that its packed layout depends on (rows, table_width) only. The added rows are
// inactive: token 0 at position 0, slot -1 (no K/V write), seq_len 0 (no K/V read), and they are
// sampled (their logits are computed and ignored). rows >= batch.decode.num_rows, table_width >=
// batch.decode.max_pages_per_seq.
ForwardBatch padded_decode_batch(const ForwardBatch& batch, int rows, int table_width);

}  // namespace pagedserve
