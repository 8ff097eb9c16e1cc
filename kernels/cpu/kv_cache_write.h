// Writes one step's new K/V rows into the paged cache (kernels/attention.h KVCacheWriteArgs):
// row t goes to slot slot_mapping[t]; slots < 0 (padding tokens) are skipped. k_new/v_new may be
// f32, bf16 or f16 and are converted (round to nearest even) to the cache dtype, so the model can
// hand over its f32 projections to a bf16 cache. Tested against write_kv_cache_reference.
//
// Caller: one thread at a time per ThreadPool. Bad shapes/dtypes or a slot past the cache throw
// std::invalid_argument before anything is written. Never allocates.
#pragma once

#include "core/thread_pool.h"
#include "kernels/attention.h"

namespace pagedserve {

void write_kv_cache(const KVCacheWriteArgs& args, ThreadPool& pool);

}  // namespace pagedserve
