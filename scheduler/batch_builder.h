// Flattens a StepPlan into the model's ForwardBatch (model/forward_batch.h): token ids, positions
// and slot mappings for every scheduled token, and the decode and prefill AttentionBatch metadata
// with -1 padded block tables. "position = index into the sequence = slot": token t of a chunk
// starting at s has position s + t and is written to slot_for(s + t) of its sequence's pages.
// A chunk's num_scored leading tokens become scored positions, each scoring the token after it.
//
// Pure function of the plan and the requests it points to; engine thread (it reads Requests).
#pragma once

#include "model/forward_batch.h"
#include "scheduler/scheduler.h"
#include "scheduler/step_plan.h"

namespace pagedserve {

// Block-table row width that fits any sequence of this config (ceil(max_model_len / page_size)):
// a fixed width the engine can size capacity buffers (CUDA graphs) with.
int max_pages_per_seq(const SchedulerConfig& config) noexcept;

// max_pages_per_seq: width of every block_table row; 0 = the widest row of this plan (smallest
// metadata). Throws std::length_error when a sequence holds more pages than the width.
ForwardBatch build_forward_batch(const StepPlan& plan, int max_pages_per_seq);

}  // namespace pagedserve
