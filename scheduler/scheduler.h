// Continuous-batching scheduler: decides, every engine step, which sequences compute how many
// tokens, within a token budget and a row cap, and owns their pages through a BlockManager.
//
// Each step: (1) aborts requested since the last step are applied; (2) running sequences one token
// behind get a decode row, oldest first; (3) running sequences further behind get a prefill chunk
// (chunked prefill: a long prompt is spread over steps), oldest first; (4) if nobody was preempted,
// waiting requests are admitted in FIFO order while the budget, the row cap and the pool allow,
// reusing cached prefix pages. A request whose leading tokens a running sequence is computing
// right now waits until they are computed (the n choices of one prompt compute it once): it then
// takes the full pages from the prefix cache and a copy of that sequence's partly filled last page
// (copy-on-write, StepPlan::page_copies), and computes only its last token. When a running sequence cannot
// get a page, the newest running sequence is preempted: its pages are freed and it goes back to the front of
// the queue to be recomputed (its generated tokens are kept and recomputed with the prompt). Because every
// accepted request fits the pool alone (can_ever_fit), the oldest running sequence always progresses: no
// deadlock, no crash. A request that asks for prompt logprobs computes its whole prompt (no prefix
// cache) and has its prompt positions scored, at most max_num_seqs positions per step (its chunks
// are cut to fit; the oldest goes first, so it always progresses).
//
// Engine thread only, except can_ever_fit(), which reads only immutable configuration.
// Typical step:   plan = schedule();  build batch, run the model, sample;
//                 outcomes = commit(plan, sampled);  finish() on stop strings;  take_finished().
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "kvcache/block_manager.h"
#include "kvcache/prefix_cache.h"
#include "scheduler/request.h"
#include "scheduler/step_plan.h"

namespace pagedserve {

struct SchedulerConfig {
  int max_num_seqs = 256;             // running sequences (= rows of a step) at most
  int max_num_batched_tokens = 2048;  // tokens computed per step at most
  int page_size = 16;
  int max_model_len = 4096;  // prompt + generated tokens at most
  bool enable_prefix_caching = true;
};

struct SchedulerStats {
  int num_running = 0;
  int num_waiting = 0;  // preempted ones included
  int num_pages = 0;
  int num_free_pages = 0;
  double kv_usage = 0.0;             // fraction of pages referenced
  std::int64_t num_preemptions = 0;  // cumulative
  std::int64_t prefix_query_tokens = 0;
  std::int64_t prefix_hit_tokens = 0;
};

// One sampled token applied by commit().
struct SampleOutcome {
  Request* request = nullptr;
  std::int32_t token = 0;
  // Set when this token ended the request (it then waits in take_finished()).
  std::optional<FinishReason> finish;
};

class Scheduler {
 public:
  // num_pages: pages of the KV cache (KVCache::num_pages()). `hash` is for tests.
  Scheduler(const SchedulerConfig& config, int num_pages, BlockHashFn hash = default_block_hash);

  const SchedulerConfig& config() const noexcept { return config_; }

  // Why a request of this size could never run, naming the numbers; nullopt if it can. Any thread.
  std::optional<std::string> can_ever_fit(int prompt_len, int max_tokens) const;

  // Takes a new (waiting) request. Throws std::invalid_argument when it is not waiting, its id is
  // already live, or can_ever_fit() refuses it: check that first, at submission.
  void add(std::unique_ptr<Request> request);

  // Finishes the request with reason abort at the next schedule(), freeing everything it holds.
  // Unknown or already finished ids are ignored.
  void abort(RequestId id);

  // Plans the next step; see the file comment. The plan may be empty (nothing to run).
  StepPlan schedule();

  // Applies the plan once the model ran: every chunk's tokens become computed, and each sampling
  // chunk appends its token from `sampled_tokens` ([plan.num_samples()], decodes then prefills,
  // the order of ForwardBatch::sample_token_indices) and is checked against the token-level stop
  // criteria. Throws std::invalid_argument when the count is wrong. Call once per schedule().
  std::vector<SampleOutcome> commit(const StepPlan& plan, std::span<const std::int32_t> sampled_tokens);

  // Ends a live request now (e.g. a stop string matched), freeing its pages. Returns false when
  // the id is not live (unknown or already finished; a finished request keeps its first reason).
  bool finish(RequestId id, FinishReason reason);

  // Hands over every request finished since the last call.
  std::vector<std::unique_ptr<Request>> take_finished();

  int num_running() const noexcept { return static_cast<int>(running_.size()); }
  int num_waiting() const noexcept { return static_cast<int>(waiting_.size()); }
  bool has_unfinished() const noexcept { return !requests_.empty(); }
  // A live (not finished) request, or nullptr.
  const Request* find(RequestId id) const;
  SchedulerStats stats() const;
  const BlockManager& block_manager() const noexcept { return blocks_; }

 private:
  struct StepState;

  void schedule_decodes(StepState& step);
  void schedule_running_prefills(StepState& step);
  void admit_waiting(StepState& step);
  // Whether a running sequence has yet to compute full pages that `request` shares with it beyond
  // the `prefix` found in the cache now.
  bool shares_pages_in_flight(const Request& request, const CachedPrefix& prefix) const;
  // Sets prefix.copy_source when a running sequence has computed `request`'s tokens after the
  // cached full pages up to its last token: the page that holds them is copied, not recomputed.
  void find_page_to_copy(const Request& request, CachedPrefix& prefix) const;
  // Preempts running_.back(), unscheduling it if it already has a chunk in this step.
  void preempt_newest(StepState& step);
  // Removes a live request from the queues, frees its pages and moves it to the finished list.
  void retire(Request* request, FinishReason reason);

  SchedulerConfig config_;
  int num_pages_;
  BlockManager blocks_;
  std::unordered_map<RequestId, std::unique_ptr<Request>> requests_;  // live requests
  std::deque<Request*> waiting_;   // FIFO; preempted requests re-enter at the front
  std::vector<Request*> running_;  // admission order, oldest first
  std::vector<RequestId> pending_aborts_;
  std::vector<std::unique_ptr<Request>> finished_;
  std::vector<RequestId> finished_since_schedule_;
  std::int64_t num_preemptions_ = 0;
};

}  // namespace pagedserve
