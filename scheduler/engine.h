// The engine: one thread that owns the scheduler, the KV cache and the model, and turns submitted
// requests into streamed tokens (DESIGN.md §2-§3). Each step:
//   drain submissions and aborts -> Scheduler::schedule() -> build_forward_batch() ->
//   ModelRunner::run() (the forward and the sampling, on whichever backend the runner is) ->
//   Scheduler::commit() -> stop strings -> deltas to sinks -> finished requests to sinks.
//
// Threads: submit(), abort() and stats() may be called from any thread. Sinks are called on the
// engine thread and must not block. The model, cache and tokenizer passed in are used only by the
// engine thread while it runs (the tokenizer is immutable and may be shared for reading).
// Without start(), a test may drive the engine on its own thread with run_until_idle().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kvcache/kv_cache.h"
#include "model/model_runner.h"
#include "model/sampler.h"
#include "tokenizer/tokenizer.h"
#include "scheduler/request.h"
#include "scheduler/scheduler.h"

namespace pagedserve {

struct RequestSpec {
  std::vector<std::int32_t> prompt_ids;  // [prompt_len], ids in [0, vocab)
  SamplingParams sampling;
  StopCriteria stop;  // eos_token_ids empty: the model's EOS ids are used
  // Whether the text leaves special tokens out; absent: EngineConfig's.
  std::optional<bool> skip_special_tokens;
};

// New output of one request in one step. `text` is UTF-8 complete and never contains any part of
// a matched stop string; it may lag `tokens` while a possible stop string is held back.
struct TokenDelta {
  std::string text;
  std::vector<SampledToken> tokens;
  // With the first token of a request that asked for prompt logprobs: prompt positions 1 ..
  // prompt_len - 1 scored, in order (position 0 has nothing before it).
  std::vector<ScoredToken> prompt_logprobs;
};

struct FinishInfo {
  FinishReason reason = FinishReason::stop;
  std::string error;  // set when the engine itself failed the request
  int prompt_tokens = 0;
  int completion_tokens = 0;
  // Prompt tokens not computed when first scheduled: prefix-cache hits, a sibling's copied page.
  int cached_tokens = 0;
  RequestTimings timings;
};

class RequestSink {
 public:
  virtual ~RequestSink() = default;
  virtual void on_delta(const TokenDelta& delta) = 0;
  // Exactly once, last; also after abort() and when the engine stops.
  virtual void on_finish(const FinishInfo& finish) = 0;
};

struct SubmitResult {
  std::optional<RequestId> id;  // empty: refused
  std::string error;            // why (names the numbers for "can never fit")
};

struct EngineStats {
  int num_running = 0;
  int num_waiting = 0;
  double kv_cache_usage = 0.0;            // fraction of pages referenced
  std::int64_t num_preemptions = 0;       // cumulative from here down
  std::int64_t prompt_tokens = 0;         // prompt tokens of requests whose prefill completed
  std::int64_t generation_tokens = 0;     // sampled tokens
  std::int64_t prefix_cache_queries = 0;  // tokens looked up
  std::int64_t prefix_cache_hits = 0;     // tokens found
  std::int64_t num_steps = 0;
  // Prompt positions run through the model (recomputes included; prefix-cache hits are not).
  std::int64_t computed_prompt_tokens = 0;
};

struct EngineConfig {
  SchedulerConfig scheduler;
  // Detokenized text skips special tokens (what OpenAI-compatible servers return).
  bool skip_special_tokens = true;
};

class Engine {
 public:
  // The runner's max_num_batched_tokens and max_num_seqs must cover the scheduler's, and the
  // cache's page size must equal config.scheduler.page_size (SetupError otherwise). `cache` is the
  // runner's KV cache: the engine only reads its page count and size.
  Engine(const EngineConfig& config, ModelRunner& runner, const KVCache& cache, const Tokenizer& tokenizer);
  ~Engine();  // stop()s
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void start();  // starts the engine thread
  // Aborts every live request (sinks get on_finish with reason abort) and joins the thread.
  void stop();

  // Validates and queues a request. Any thread.
  SubmitResult submit(RequestSpec spec, std::shared_ptr<RequestSink> sink);
  // Finishes the request with reason abort within one step; its pages are freed then. Any thread.
  void abort(RequestId id);
  EngineStats stats() const;  // any thread

  // Runs steps on the calling thread until nothing is queued or running. Only without start().
  void run_until_idle();

  const EngineConfig& config() const noexcept { return config_; }
  int vocab_size() const noexcept { return vocab_size_; }
  int max_model_len() const noexcept { return config_.scheduler.max_model_len; }

 private:
  struct LiveRequest;

  void thread_main();
  // Moves queued submissions and aborts into the scheduler. Engine thread.
  void drain_inbox();
  // One schedule -> forward -> sample -> commit -> emit round. Engine thread.
  void step();
  void emit_token(Request& request, LiveRequest& live, const SampledToken& sampled,
                  std::optional<FinishReason> finish, TokenDelta& delta);
  // Files the step's scored prompt positions with their requests, in the plan's chunk order.
  void keep_scored(const StepPlan& plan, std::vector<ScoredToken>& scored);
  void deliver_finished();
  void fail_plan(const StepPlan& plan, const std::string& error);
  void publish_stats();

  EngineConfig config_;
  ModelRunner& runner_;
  const Tokenizer& tokenizer_;
  int vocab_size_;
  std::vector<std::int32_t> default_eos_ids_;

  // Engine thread only.
  Scheduler scheduler_;
  std::unordered_map<RequestId, LiveRequest> live_;
  std::int64_t prompt_tokens_ = 0;
  std::int64_t computed_prompt_tokens_ = 0;
  std::int64_t generation_tokens_ = 0;
  std::int64_t num_steps_ = 0;

  // Shared with submitters.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Request>> inbox_;            // guarded by mutex_
  std::vector<std::shared_ptr<RequestSink>> inbox_sinks_;  // guarded by mutex_, parallel to inbox_
  std::vector<bool> inbox_skip_special_;                   // guarded by mutex_, parallel to inbox_
  std::vector<RequestId> abort_inbox_;                     // guarded by mutex_
  bool stopping_ = false;                                  // guarded by mutex_
  EngineStats stats_;                                      // guarded by mutex_
  std::atomic<RequestId> next_id_{1};
  std::thread thread_;
};

}  // namespace pagedserve
