#include "scheduler/scheduler.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/error.h"
#include "kvcache/block_table.h"

namespace pagedserve {

namespace {

void require_positive(int value, const char* field) {
  if (value <= 0) {
    throw SetupError(std::string("scheduler config: ") + field,
                     "must be positive, got " + std::to_string(value));
  }
}

// Prompt logprobs: a chunk [position, position + num_new) of a request that scores its prompt
// scores its positions below num_prompt_tokens - 1 (each scores the prompt token after it), at
// most scored_left of them; a chunk that would score more is cut short. Returns the tokens to
// compute (0: no scoring row is left this step) and sets num_scored.
int fit_scored(const Request& request, int position, int num_new, int scored_left, int& num_scored) {
  num_scored = 0;
  if (!request.scores_prompt()) return num_new;
  const int scorable = std::min(num_new, std::max(0, request.num_prompt_tokens() - 1 - position));
  if (scorable <= scored_left) {
    num_scored = scorable;
    return num_new;
  }
  num_scored = scored_left;
  return scored_left;
}

}  // namespace

struct Scheduler::StepState {
  StepPlan plan;
  int budget = 0;          // tokens left this step
  int scored_left = 0;     // prompt positions this step may still score (max_num_seqs per step)
  bool preempted = false;  // someone was preempted: admit nobody this step
};

Scheduler::Scheduler(const SchedulerConfig& config, int num_pages, BlockHashFn hash)
    : config_(config),
      num_pages_(num_pages),
      blocks_(num_pages, config.page_size > 0 ? config.page_size : 1, config.enable_prefix_caching,
              std::move(hash)) {
  require_positive(config.max_num_seqs, "max_num_seqs");
  require_positive(config.max_num_batched_tokens, "max_num_batched_tokens");
  require_positive(config.page_size, "page_size");
  require_positive(config.max_model_len, "max_model_len");
  require_positive(num_pages, "num_pages");
}

std::optional<std::string> Scheduler::can_ever_fit(int prompt_len, int max_tokens) const {
  if (prompt_len < 1) return std::string("the prompt is empty");
  if (max_tokens < 1) return "max_tokens must be at least 1, got " + std::to_string(max_tokens);
  const std::int64_t total = static_cast<std::int64_t>(prompt_len) + max_tokens;
  const std::string sizes =
      "prompt (" + std::to_string(prompt_len) + " tokens) + max_tokens (" + std::to_string(max_tokens) + ")";
  if (total > config_.max_model_len) {
    return sizes + " = " + std::to_string(total) + " tokens exceeds the context length max_model_len (" +
           std::to_string(config_.max_model_len) + ")";
  }
  // The last generated token is never fed back, so the cache holds at most total - 1 tokens.
  const std::int64_t pages = (total - 1 + config_.page_size - 1) / config_.page_size;
  if (pages > num_pages_) {
    return sizes + " needs " + std::to_string(pages) + " KV-cache pages of " +
           std::to_string(config_.page_size) + " tokens, but the cache has only " +
           std::to_string(num_pages_) + " pages";
  }
  return std::nullopt;
}

void Scheduler::add(std::unique_ptr<Request> request) {
  if (!request) throw std::invalid_argument("Scheduler::add: null request");
  if (request->state_ != RequestState::waiting)
    throw std::invalid_argument("Scheduler::add: request is not new");
  if (requests_.count(request->id()) != 0) {
    throw std::invalid_argument("Scheduler::add: request id " + std::to_string(request->id()) +
                                " is already live");
  }
  if (std::optional<std::string> error =
          can_ever_fit(request->num_prompt_tokens(), request->stop().max_tokens)) {
    throw std::invalid_argument("Scheduler::add: " + *error);
  }
  request->blocks_.emplace(config_.page_size);
  Request* raw = request.get();
  requests_.emplace(raw->id(), std::move(request));
  waiting_.push_back(raw);
}

void Scheduler::abort(RequestId id) { pending_aborts_.push_back(id); }

StepPlan Scheduler::schedule() {
  for (RequestId id : pending_aborts_) {
    if (auto it = requests_.find(id); it != requests_.end()) retire(it->second.get(), FinishReason::abort);
  }
  pending_aborts_.clear();

  StepState step;
  step.budget = config_.max_num_batched_tokens;
  step.scored_left = config_.max_num_seqs;
  schedule_decodes(step);
  schedule_running_prefills(step);
  if (!step.preempted) admit_waiting(step);

  step.plan.num_scheduled_tokens = config_.max_num_batched_tokens - step.budget;
  step.plan.finished_ids = std::move(finished_since_schedule_);
  finished_since_schedule_.clear();
  return std::move(step.plan);
}

void Scheduler::schedule_decodes(StepState& step) {
  for (std::size_t i = 0; i < running_.size() && step.budget > 0; ++i) {
    Request* request = running_[i];
    const int position = request->num_computed_tokens_;
    if (request->num_tokens() - position != 1) continue;
    bool preempted_itself = false;
    while (!preempted_itself && !blocks_.can_grow(*request->blocks_, position + 1)) {
      preempted_itself = running_.back() == request;
      preempt_newest(step);
    }
    // Preempting itself means it was the newest: nobody after it is left to schedule.
    if (preempted_itself) break;
    blocks_.grow(*request->blocks_, position + 1);
    step.plan.decodes.push_back(ScheduledChunk{request, position, 1, true});
    --step.budget;
  }
}

void Scheduler::schedule_running_prefills(StepState& step) {
  for (std::size_t i = 0; i < running_.size() && step.budget > 0; ++i) {
    Request* request = running_[i];
    const int position = request->num_computed_tokens_;
    const int remaining = request->num_tokens() - position;
    if (remaining <= 1) continue;
    // Take a shorter chunk when pages are short; preempt only when not even one token fits.
    int num_new = 0;
    bool preempted_itself = false;
    while (!preempted_itself) {
      const int holdable = blocks_.max_holdable_tokens(*request->blocks_) - position;
      if (holdable > 0) {
        num_new = std::min({remaining, step.budget, holdable});
        break;
      }
      preempted_itself = running_.back() == request;
      preempt_newest(step);
    }
    if (preempted_itself) break;
    int num_scored = 0;
    num_new = fit_scored(*request, position, num_new, step.scored_left, num_scored);
    if (num_new == 0) continue;  // its scoring waits for the next step
    blocks_.grow(*request->blocks_, position + num_new);
    step.plan.prefills.push_back(
        ScheduledChunk{request, position, num_new, num_new == remaining, num_scored});
    step.budget -= num_new;
    step.scored_left -= num_scored;
  }
}

void Scheduler::admit_waiting(StepState& step) {
  while (!waiting_.empty() && step.budget > 0 && num_running() < config_.max_num_seqs) {
    Request* request = waiting_.front();
    SequenceBlocks& seq = *request->blocks_;
    // A request that scores its prompt computes every position of it (as vLLM, no prefix-cache hit
    // may skip a position whose logprobs were asked for); it still indexes the pages it computes.
    CachedPrefix prefix;
    if (!request->scores_prompt()) {
      prefix = blocks_.find_cached_prefix(request->token_ids());
      if (shares_pages_in_flight(*request, prefix)) break;  // FIFO: the queue waits with it
      find_page_to_copy(*request, prefix);
    }
    const int position = prefix.num_cached_tokens + prefix.num_copied_tokens;
    const int remaining = request->num_tokens() - position;
    int num_scored = 0;
    const int num_new =
        fit_scored(*request, position, std::min(remaining, step.budget), step.scored_left, num_scored);
    if (num_new == 0) break;  // FIFO: no scoring row left this step
    // Admit only when every known token fits, though pages are taken for this chunk only: a
    // request let in with room for its first chunk alone would soon be preempted again.
    if (!blocks_.can_admit(prefix, request->num_tokens())) break;  // FIFO: nobody overtakes
    waiting_.pop_front();
    if (std::optional<PageCopy> copy = blocks_.admit(seq, prefix, position + num_new))
      step.plan.page_copies.push_back(*copy);
    request->num_computed_tokens_ = position;
    request->state_ = RequestState::running;
    if (!request->timings_.first_scheduled) {
      request->timings_.first_scheduled = std::chrono::steady_clock::now();
      request->num_cached_prompt_tokens_ = std::min(position, request->num_prompt_tokens());
    }
    running_.push_back(request);
    const ScheduledChunk chunk{request, position, num_new, num_new == remaining, num_scored};
    (remaining == 1 ? step.plan.decodes : step.plan.prefills).push_back(chunk);
    step.budget -= num_new;
    step.scored_left -= num_scored;
  }
}

bool Scheduler::shares_pages_in_flight(const Request& request, const CachedPrefix& prefix) const {
  if (!blocks_.prefix_caching_enabled()) return false;
  const int page = config_.page_size;
  const auto tokens = request.token_ids();
  const int computable = request.num_tokens() - 1;       // the last token is always computed
  const int lookable_tokens = computable / page * page;  // what a cache lookup may cover
  if (computable <= prefix.num_cached_tokens) return false;
  for (const Request* other : running_) {
    if (other->num_computed_tokens_ >= computable) continue;  // it has computed what it shares
    const auto theirs = other->token_ids();
    const std::size_t span = std::min({tokens.size(), theirs.size(), static_cast<std::size_t>(computable)});
    const auto differ =
        std::mismatch(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(span), theirs.begin());
    const int shared = static_cast<int>(differ.first - tokens.begin());
    // Full pages it is computing (they will be cached), or everything but our last token (its
    // partly filled page will be copied).
    const int shared_pages = std::min(shared, lookable_tokens) / page * page;
    if (shared_pages > prefix.num_cached_tokens && other->num_computed_tokens_ < shared_pages) return true;
    if (shared == computable && shared > prefix.num_cached_tokens) return true;
  }
  return false;
}

void Scheduler::find_page_to_copy(const Request& request, CachedPrefix& prefix) const {
  if (!blocks_.prefix_caching_enabled()) return;
  const int page = config_.page_size;
  const int computable = request.num_tokens() - 1;
  const int partial = computable - prefix.num_cached_tokens;
  if (partial <= 0 || partial >= page) return;  // nothing to copy, or full pages missing from the cache
  const auto tokens = request.token_ids().first(static_cast<std::size_t>(computable));
  for (const Request* other : running_) {
    if (other->num_computed_tokens_ < computable) continue;
    if (!std::equal(tokens.begin(), tokens.end(), other->token_ids().begin())) continue;
    prefix.copy_source = other->blocks_->table.page(prefix.num_cached_tokens / page);
    prefix.num_copied_tokens = partial;
    return;
  }
}

void Scheduler::preempt_newest(StepState& step) {
  Request* victim = running_.back();
  running_.pop_back();
  for (std::vector<ScheduledChunk>* chunks : {&step.plan.decodes, &step.plan.prefills}) {
    auto it = std::find_if(chunks->begin(), chunks->end(),
                           [victim](const ScheduledChunk& chunk) { return chunk.request == victim; });
    if (it != chunks->end()) {
      step.budget += it->num_new_tokens;
      step.scored_left += it->num_scored;
      chunks->erase(it);
    }
  }
  blocks_.release(*victim->blocks_);
  victim->num_computed_tokens_ = 0;
  victim->state_ = RequestState::preempted;
  ++victim->timings_.num_preemptions;
  ++num_preemptions_;
  waiting_.push_front(victim);
  step.plan.preempted_ids.push_back(victim->id());
  step.preempted = true;
}

std::vector<SampleOutcome> Scheduler::commit(const StepPlan& plan,
                                             std::span<const std::int32_t> sampled_tokens) {
  if (static_cast<int>(sampled_tokens.size()) != plan.num_samples()) {
    throw std::invalid_argument("Scheduler::commit: " + std::to_string(sampled_tokens.size()) +
                                " sampled tokens for a plan that samples " +
                                std::to_string(plan.num_samples()));
  }
  std::vector<SampleOutcome> outcomes;
  std::size_t next_sample = 0;
  auto apply = [&](const ScheduledChunk& chunk) {
    Request* request = chunk.request;
    const std::size_t sample_index = next_sample;
    if (chunk.samples) ++next_sample;
    if (request->is_finished()) return;  // finished between schedule() and commit(): nothing to keep
    if (request->state_ != RequestState::running || request->num_computed_tokens_ != chunk.start_position) {
      throw std::logic_error("Scheduler::commit: plan does not match request " +
                             std::to_string(request->id()));
    }
    request->num_computed_tokens_ += chunk.num_new_tokens;
    blocks_.cache_computed_pages(*request->blocks_, request->token_ids(), request->num_computed_tokens_);
    if (!chunk.samples) return;
    const std::int32_t token = sampled_tokens[sample_index];
    request->token_ids_.push_back(token);
    if (!request->timings_.first_token) request->timings_.first_token = std::chrono::steady_clock::now();
    const std::optional<FinishReason> finish = request->stop_reason_after_last_token(config_.max_model_len);
    outcomes.push_back(SampleOutcome{request, token, finish});
    if (finish) retire(request, *finish);
  };
  for (const ScheduledChunk& chunk : plan.decodes) apply(chunk);
  for (const ScheduledChunk& chunk : plan.prefills) apply(chunk);
  return outcomes;
}

bool Scheduler::finish(RequestId id, FinishReason reason) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return false;
  retire(it->second.get(), reason);
  return true;
}

std::vector<std::unique_ptr<Request>> Scheduler::take_finished() { return std::exchange(finished_, {}); }

const Request* Scheduler::find(RequestId id) const {
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : it->second.get();
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats stats;
  stats.num_running = num_running();
  stats.num_waiting = num_waiting();
  stats.num_pages = blocks_.num_blocks();
  stats.num_free_pages = blocks_.num_free_blocks();
  stats.kv_usage = blocks_.usage();
  stats.num_preemptions = num_preemptions_;
  stats.prefix_query_tokens = blocks_.prefix_cache_stats().query_tokens;
  stats.prefix_hit_tokens = blocks_.prefix_cache_stats().hit_tokens;
  return stats;
}

void Scheduler::retire(Request* request, FinishReason reason) {
  if (request->state_ == RequestState::running) {
    running_.erase(std::find(running_.begin(), running_.end(), request));
  } else {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), request));
  }
  blocks_.release(*request->blocks_);
  request->state_ = RequestState::finished;
  request->finish_reason_ = reason;
  request->timings_.finish = std::chrono::steady_clock::now();
  auto it = requests_.find(request->id());
  finished_.push_back(std::move(it->second));
  requests_.erase(it);
  finished_since_schedule_.push_back(request->id());
}

}  // namespace pagedserve
