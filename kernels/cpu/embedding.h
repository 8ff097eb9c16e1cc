// Embedding lookup and the small elementwise steps around the layers (residual add, dtype
// conversion between the f32 activations and the KV cache dtype). Any single caller thread;
// never allocate.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor_view.h"

namespace pagedserve {

// out[t, :] = float(table[token_ids[t], :]). Ids must be in [0, vocab).
void embedding_lookup(const TensorView& table,                  // [vocab, hidden] bf16 | f16 | f32
                      std::span<const std::int32_t> token_ids,  // [num_tokens]
                      const TensorView& out);                   // [num_tokens, hidden] f32

// x += y, elementwise.
void add_in_place(const TensorView& x,   // [rows, dim] f32, contiguous
                  const TensorView& y);  // [rows, dim] f32, contiguous

// dst = src converted elementwise (f32 <-> bf16 | f16, or a copy); same element count, contiguous.
void convert_elements(const TensorView& src,   // [any] f32 | bf16 | f16
                      const TensorView& dst);  // [same count] f32 | bf16 | f16

}  // namespace pagedserve
