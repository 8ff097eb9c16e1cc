// What one engine step computes: the Scheduler's decision, a plain record. Decode rows (sequences
// one token behind) come first, then prefill chunks (sequences several tokens behind: a prompt, a
// chunk of one, or a recompute after preemption). Built by Scheduler::schedule(), read by the
// batch builder and Scheduler::commit() on the engine thread; the Request pointers stay valid until
// commit() (and, for requests that finish there, until their take_finished() handle is dropped).
#pragma once

#include <vector>

#include "scheduler/request.h"

namespace pagedserve {

struct ScheduledChunk {
  Request* request = nullptr;
  int start_position = 0;  // the request's num_computed_tokens when scheduled
  int num_new_tokens = 0;  // tokens [start_position, start_position + num_new_tokens) computed now
  // The chunk reaches the end of the known tokens, so the model's last row samples a new token.
  bool samples = false;
  // Prompt logprobs: the chunk's first num_scored tokens (positions start_position + i) get logits
  // that score the prompt token after each (Request::scores_prompt()).
  int num_scored = 0;
};

struct StepPlan {
  std::vector<ScheduledChunk> decodes;   // num_new_tokens == 1 each
  std::vector<ScheduledChunk> prefills;  // in admission order
  // Partly filled pages copied for sequences admitted onto another's (n choices of one prompt).
  std::vector<PageCopy> page_copies;
  std::vector<RequestId> preempted_ids;  // preempted in this schedule() (not in the lists above)
  // Finished or aborted since the previous schedule(): their Requests wait in take_finished().
  std::vector<RequestId> finished_ids;
  int num_scheduled_tokens = 0;

  bool empty() const noexcept { return decodes.empty() && prefills.empty(); }
  int num_rows() const noexcept { return static_cast<int>(decodes.size() + prefills.size()); }
  // Prompt positions scored this step (the ForwardBatch's scored_positions, in chunk order).
  int num_scored() const noexcept {
    int n = 0;
    for (const ScheduledChunk& chunk : prefills) n += chunk.num_scored;
    for (const ScheduledChunk& chunk : decodes) n += chunk.num_scored;
    return n;
  }
  // Sampled tokens commit() expects, in order: sampling decodes, then sampling prefills.
  int num_samples() const noexcept {
    int n = 0;
    for (const ScheduledChunk& chunk : decodes) n += chunk.samples ? 1 : 0;
    for (const ScheduledChunk& chunk : prefills) n += chunk.samples ? 1 : 0;
    return n;
  }
};

}  // namespace pagedserve
