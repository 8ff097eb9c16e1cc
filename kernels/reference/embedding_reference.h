// Naive reference for the embedding lookup of kernels/cpu/embedding.h. Tests only.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor_view.h"

namespace pagedserve {

void embedding_lookup_reference(const TensorView& table,                  // [vocab, hidden] bf16|f16|f32
                                std::span<const std::int32_t> token_ids,  // [num_tokens]
                                const TensorView& out);                   // [num_tokens, hidden] f32

}  // namespace pagedserve
