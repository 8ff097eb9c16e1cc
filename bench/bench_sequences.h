// Synthetic sequences for the model benchmarks (bench/cpu/model_cpu, bench/cuda/model_cuda): each
// sequence owns a contiguous run of KV pages (the kernels do not care about physical order; the
// tests cover shuffled pages) and step() builds the ForwardBatch of one engine step over all of them.
#pragma once

#include <chrono>
#include <vector>

#include "model/forward_batch.h"

namespace pagedserve {

inline constexpr int kPageSize = 16;

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct BenchSequences {
  int max_pages_per_seq = 0;
  std::vector<int> first_page;
  std::vector<int> length;  // tokens already in the cache

  // One step: every sequence adds `tokens` tokens (decode when 1), the last of each is sampled.
  ForwardBatch step(int tokens, int vocab) {
    ForwardBatch batch;
    AttentionBatch& part = tokens == 1 ? batch.decode : batch.prefill;
    part.num_rows = static_cast<int>(length.size());
    part.max_pages_per_seq = max_pages_per_seq;
    part.query_start_len.push_back(0);
    for (std::size_t s = 0; s < length.size(); ++s) {
      for (int i = 0; i < tokens; ++i) {
        const int position = length[s] + i;
        batch.token_ids.push_back((position * 7919 + static_cast<int>(s) * 104729) % vocab);
        batch.positions.push_back(position);
        batch.slot_mapping.push_back((first_page[s] + position / kPageSize) * kPageSize +
                                     position % kPageSize);
      }
      length[s] += tokens;
      part.query_start_len.push_back(part.query_start_len.back() + tokens);
      part.seq_lens.push_back(length[s]);
      for (int p = 0; p < max_pages_per_seq; ++p) part.block_table.push_back(first_page[s] + p);
      batch.sample_token_indices.push_back(batch.num_tokens() - 1);
    }
    return batch;
  }
};

// `count` sequences of up to max_len tokens, their pages from `first_page` on.
inline BenchSequences make_sequences(int count, int max_len, int first_page = 0) {
  BenchSequences seqs;
  seqs.max_pages_per_seq = (max_len + kPageSize - 1) / kPageSize;
  for (int s = 0; s < count; ++s) {
    seqs.first_page.push_back(first_page + s * seqs.max_pages_per_seq);
    seqs.length.push_back(0);
  }
  return seqs;
}

}  // namespace pagedserve
