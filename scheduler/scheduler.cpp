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

}  // namespace

struct Scheduler::StepState {
  StepPlan plan;
  int budget = 0;          // tokens left this step
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
    blocks_.grow(*request->blocks_, position + num_new);
    step.plan.prefills.push_back(ScheduledChunk{request, position, num_new, num_new == remaining});
    step.budget -= num_new;
  }
}

void Scheduler::admit_waiting(StepState& step) {
  while (!waiting_.empty() && step.budget > 0 && num_running() < config_.max_num_seqs) {
    Request* request = waiting_.front();
    SequenceBlocks& seq = *request->blocks_;
    const CachedPrefix prefix = blocks_.find_cached_prefix(request->token_ids());
    if (shares_pages_in_flight(*request, prefix)) break;  // FIFO: the queue waits with it, a step or a few
    const int position = prefix.num_cached_tokens;
    const int remaining = request->num_tokens() - position;
    const int num_new = std::min(remaining, step.budget);
    // Admit only when every known token fits, though pages are taken for this chunk only: a
    // request let in with room for its first chunk alone would soon be preempted again.
    if (!blocks_.can_admit(prefix, request->num_tokens())) break;  // FIFO: nobody overtakes
    waiting_.pop_front();
    blocks_.admit(seq, prefix, position + num_new);
    request->num_computed_tokens_ = position;
    request->state_ = RequestState::running;
    if (!request->timings_.first_scheduled) {
      request->timings_.first_scheduled = std::chrono::steady_clock::now();
      request->num_cached_prompt_tokens_ = std::min(position, request->num_prompt_tokens());
    }
    running_.push_back(request);
    const ScheduledChunk chunk{request, position, num_new, num_new == remaining};
    (remaining == 1 ? step.plan.decodes : step.plan.prefills).push_back(chunk);
    step.budget -= num_new;
  }
}

bool Scheduler::shares_pages_in_flight(const Request& request, const CachedPrefix& prefix) const {
  if (!blocks_.prefix_caching_enabled()) return false;
  const int page = config_.page_size;
  const auto tokens = request.token_ids();
  const int lookable_tokens = (request.num_tokens() - 1) / page * page;  // what a cache lookup may cover
  if (lookable_tokens <= prefix.num_cached_tokens) return false;
  for (const Request* other : running_) {
    if (other->num_computed_tokens_ >= lookable_tokens) continue;  // its shared pages are cached already
    const auto theirs = other->token_ids();
    const std::size_t span =
        std::min({tokens.size(), theirs.size(), static_cast<std::size_t>(lookable_tokens)});
    const auto differ =
        std::mismatch(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(span), theirs.begin());
    const int shared_tokens = static_cast<int>(differ.first - tokens.begin()) / page * page;
    if (shared_tokens > prefix.num_cached_tokens && other->num_computed_tokens_ < shared_tokens) return true;
  }
  return false;
}

void Scheduler::preempt_newest(StepState& step) {
  Request* victim = running_.back();
  running_.pop_back();
  for (std::vector<ScheduledChunk>* chunks : {&step.plan.decodes, &step.plan.prefills}) {
    auto it = std::find_if(chunks->begin(), chunks->end(),
                           [victim](const ScheduledChunk& chunk) { return chunk.request == victim; });
    if (it != chunks->end()) {
      step.budget += it->num_new_tokens;
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
