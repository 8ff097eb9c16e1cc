#include "scheduler/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <span>
#include <string>
#include <utility>

#include "core/error.h"
#include "scheduler/batch_builder.h"
#include "scheduler/stop_checker.h"

namespace pagedserve {

// What the engine keeps per request beside the scheduler's Request: the text pipeline (tokens -> UTF-8 text
// -> stop strings) and where outputs go.
struct Engine::LiveRequest {
  LiveRequest(const Request& request, const Tokenizer& tokenizer, bool skip_special_tokens,
              std::shared_ptr<RequestSink> request_sink)
      : decoder(tokenizer, skip_special_tokens),
        stop_checker(request.stop().stop_strings),
        sink(std::move(request_sink)) {
    if (request.sampling().prompt_logprobs)
      prompt_logprobs.resize(static_cast<std::size_t>(request.num_prompt_tokens() - 1));
  }

  IncrementalDecoder decoder;
  // [prompt_len - 1] prompt logprobs of positions 1.., filled as chunks are scored (a recompute
  // after preemption fills them again); handed out with the first token.
  std::vector<ScoredToken> prompt_logprobs;
  StopStringChecker stop_checker;
  std::shared_ptr<RequestSink> sink;
  bool prompt_counted = false;
};

Engine::Engine(const EngineConfig& config, ModelRunner& runner, const KVCache& cache,
               const Tokenizer& tokenizer)
    : config_(config),
      runner_(runner),
      tokenizer_(tokenizer),
      vocab_size_(runner.config().vocab_size),
      default_eos_ids_(runner.config().eos_token_ids),
      scheduler_(config.scheduler, cache.num_pages()) {
  if (cache.page_size() != config.scheduler.page_size) {
    throw SetupError("engine", "KV cache page size " + std::to_string(cache.page_size()) +
                                   " differs from the scheduler's " +
                                   std::to_string(config.scheduler.page_size));
  }
  if (runner.max_num_batched_tokens() < config.scheduler.max_num_batched_tokens) {
    throw SetupError("engine", "model scratch holds " + std::to_string(runner.max_num_batched_tokens()) +
                                   " tokens per step, the scheduler may batch " +
                                   std::to_string(config.scheduler.max_num_batched_tokens));
  }
  if (runner.max_num_seqs() < config.scheduler.max_num_seqs) {
    throw SetupError("engine", "the model runner samples " + std::to_string(runner.max_num_seqs()) +
                                   " sequences per step, the scheduler may run " +
                                   std::to_string(config.scheduler.max_num_seqs));
  }
  if (default_eos_ids_.empty()) default_eos_ids_ = tokenizer.eos_ids();
  publish_stats();
}

Engine::~Engine() { stop(); }

void Engine::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { thread_main(); });
}

void Engine::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SubmitResult Engine::submit(RequestSpec spec, std::shared_ptr<RequestSink> sink) {
  if (spec.prompt_ids.empty()) return {std::nullopt, "the prompt has no tokens"};
  for (std::int32_t id : spec.prompt_ids) {
    if (id < 0 || id >= vocab_size_) {
      return {std::nullopt, "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                std::to_string(vocab_size_) + ")"};
    }
  }
  if (spec.stop.max_tokens < 1) return {std::nullopt, "max_tokens must be at least 1"};
  if (std::string error = Sampler::validation_error(spec.sampling); !error.empty())
    return {std::nullopt, error};
  if (spec.sampling.prompt_logprobs.value_or(0) > kMaxScoredLogprobs) {
    return {std::nullopt,
            "prompt_logprobs may ask for at most " + std::to_string(kMaxScoredLogprobs) + " alternatives"};
  }
  if (auto error = scheduler_.can_ever_fit(static_cast<int>(spec.prompt_ids.size()), spec.stop.max_tokens)) {
    return {std::nullopt, *error};
  }
  for (const LogitBias& entry : spec.sampling.logit_bias) {
    if (entry.token >= vocab_size_) {
      return {std::nullopt, "logit_bias token id " + std::to_string(entry.token) +
                                " is outside the vocabulary [0, " + std::to_string(vocab_size_) + ")"};
    }
  }
  if (spec.stop.eos_token_ids.empty()) spec.stop.eos_token_ids = default_eos_ids_;
  const bool skip_special_tokens = spec.skip_special_tokens.value_or(config_.skip_special_tokens);

  const RequestId id = next_id_.fetch_add(1);
  auto request =
      std::make_unique<Request>(id, std::move(spec.prompt_ids), spec.sampling, std::move(spec.stop));
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return {std::nullopt, "the engine is shutting down"};
    inbox_.push_back(std::move(request));
    inbox_sinks_.push_back(std::move(sink));
    inbox_skip_special_.push_back(skip_special_tokens);
  }
  wake_.notify_one();
  return {id, {}};
}

void Engine::abort(RequestId id) {
  {
    std::lock_guard lock(mutex_);
    abort_inbox_.push_back(id);
  }
  wake_.notify_one();
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Engine::thread_main() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] {
        return stopping_ || !inbox_.empty() || !abort_inbox_.empty() || scheduler_.has_unfinished();
      });
      if (stopping_) break;
    }
    drain_inbox();
    step();
  }
  // Stopping: everything still live ends as aborted, and its sink hears so.
  drain_inbox();
  for (const auto& [id, live] : live_) scheduler_.abort(id);
  if (scheduler_.has_unfinished()) (void)scheduler_.schedule();
  deliver_finished();
  publish_stats();
}

void Engine::run_until_idle() {
  for (;;) {
    drain_inbox();
    if (!scheduler_.has_unfinished()) break;
    step();
  }
  deliver_finished();
  publish_stats();
}

void Engine::drain_inbox() {
  std::vector<std::unique_ptr<Request>> requests;
  std::vector<std::shared_ptr<RequestSink>> sinks;
  std::vector<bool> skip_special;
  std::vector<RequestId> aborts;
  {
    std::lock_guard lock(mutex_);
    requests.swap(inbox_);
    sinks.swap(inbox_sinks_);
    skip_special.swap(inbox_skip_special_);
    aborts.swap(abort_inbox_);
  }
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const RequestId id = requests[i]->id();
    live_.try_emplace(id, *requests[i], tokenizer_, skip_special[i], std::move(sinks[i]));
    scheduler_.add(std::move(requests[i]));
  }
  for (RequestId id : aborts) scheduler_.abort(id);
}

void Engine::step() {
  const StepPlan plan = scheduler_.schedule();
  for (const ScheduledChunk& chunk : plan.prefills) {
    const int prompt_end = chunk.request->num_prompt_tokens();
    computed_prompt_tokens_ +=
        std::max(0, std::min(chunk.start_position + chunk.num_new_tokens, prompt_end) - chunk.start_position);
  }
  for (const ScheduledChunk& chunk : plan.decodes) {
    computed_prompt_tokens_ += chunk.start_position < chunk.request->num_prompt_tokens() ? 1 : 0;
  }
  if (!plan.empty()) {
    try {
      const ForwardBatch batch = build_forward_batch(plan, 0);
      // Sampling rows in the order of batch.sample_token_indices (and of commit()): sampling
      // decodes, then sampling prefills.
      std::vector<SampleRow> rows;
      rows.reserve(batch.sample_token_indices.size());
      auto add_rows = [&](const std::vector<ScheduledChunk>& chunks) {
        for (const ScheduledChunk& chunk : chunks) {
          if (!chunk.samples) continue;
          const Request& request = *chunk.request;
          rows.push_back({request.id(), &request.sampling(), request.prompt_ids(), request.output_ids()});
        }
      };
      add_rows(plan.decodes);
      add_rows(plan.prefills);
      StepOutput output = runner_.run(batch, rows);
      keep_scored(plan, output.scored);
      const std::vector<SampledToken>& sampled = output.sampled;

      std::vector<std::int32_t> tokens(sampled.size());
      std::transform(sampled.begin(), sampled.end(), tokens.begin(),
                     [](const SampledToken& s) { return s.token; });
      const std::vector<SampleOutcome> outcomes = scheduler_.commit(plan, tokens);
      for (std::size_t i = 0; i < outcomes.size(); ++i) {
        Request& request = *outcomes[i].request;
        LiveRequest& live = live_.at(request.id());
        TokenDelta delta;
        emit_token(request, live, sampled[i], outcomes[i].finish, delta);
        if (!delta.text.empty() || !delta.tokens.empty()) live.sink->on_delta(delta);
      }
      ++num_steps_;
    } catch (const std::exception& error) {
      spdlog::error("engine step failed: {}", error.what());
      fail_plan(plan, error.what());
    }
  }
  deliver_finished();
  publish_stats();
}

void Engine::keep_scored(const StepPlan& plan, std::vector<ScoredToken>& scored) {
  if (static_cast<int>(scored.size()) != plan.num_scored()) {
    throw std::logic_error("Engine: the runner scored " + std::to_string(scored.size()) + " positions of " +
                           std::to_string(plan.num_scored()));
  }
  std::size_t next = 0;
  for (const std::vector<ScheduledChunk>* chunks : {&plan.decodes, &plan.prefills}) {
    for (const ScheduledChunk& chunk : *chunks) {
      if (chunk.num_scored == 0) continue;
      auto it = live_.find(chunk.request->id());
      for (int i = 0; i < chunk.num_scored; ++i, ++next) {
        if (it == live_.end()) continue;
        std::vector<ScoredToken>& kept = it->second.prompt_logprobs;
        // Position start + i scores the token at start + i + 1, kept at index start + i.
        const auto index = static_cast<std::size_t>(chunk.start_position + i);
        if (index < kept.size()) kept[index] = std::move(scored[next]);
      }
    }
  }
}

void Engine::emit_token(Request& request, LiveRequest& live, const SampledToken& sampled,
                        std::optional<FinishReason> finish, TokenDelta& delta) {
  ++generation_tokens_;
  if (!live.prompt_counted) {
    live.prompt_counted = true;
    prompt_tokens_ += request.num_prompt_tokens();
    delta.prompt_logprobs = std::move(live.prompt_logprobs);
  }
  delta.tokens.push_back(sampled);

  // The token that stopped the request (EOS or a stop token id) is not part of the text.
  const bool ended_by_stop_token = finish == FinishReason::stop;
  std::string piece = ended_by_stop_token ? std::string() : live.decoder.push(sampled.token);
  if (finish) piece += live.decoder.flush();
  StopStringChecker::Update update = live.stop_checker.push(piece);
  delta.text += update.text;
  if (update.stopped) {
    if (!finish) scheduler_.finish(request.id(), FinishReason::stop);
    return;
  }
  if (finish) delta.text += live.stop_checker.flush();
}

void Engine::fail_plan(const StepPlan& plan, const std::string& error) {
  auto fail = [&](const std::vector<ScheduledChunk>& chunks) {
    for (const ScheduledChunk& chunk : chunks) {
      const RequestId id = chunk.request->id();
      scheduler_.finish(id, FinishReason::abort);
      runner_.release(id);
      auto it = live_.find(id);
      if (it != live_.end() && it->second.sink) {
        FinishInfo info;
        info.reason = FinishReason::abort;
        info.error = error;
        it->second.sink->on_finish(info);
        it->second.sink.reset();  // told already; deliver_finished() skips it
      }
    }
  };
  fail(plan.decodes);
  fail(plan.prefills);
}

void Engine::deliver_finished() {
  for (std::unique_ptr<Request>& request : scheduler_.take_finished()) {
    runner_.release(request->id());
    auto it = live_.find(request->id());
    if (it == live_.end()) continue;
    if (it->second.sink) {
      FinishInfo info;
      info.reason = request->finish_reason().value_or(FinishReason::abort);
      info.prompt_tokens = request->num_prompt_tokens();
      info.completion_tokens = request->num_output_tokens();
      info.cached_tokens = request->num_cached_prompt_tokens();
      info.timings = request->timings();
      it->second.sink->on_finish(info);
    }
    live_.erase(it);
  }
}

void Engine::publish_stats() {
  const SchedulerStats s = scheduler_.stats();
  std::lock_guard lock(mutex_);
  stats_.num_running = s.num_running;
  stats_.num_waiting = s.num_waiting + static_cast<int>(inbox_.size());
  stats_.kv_cache_usage = s.kv_usage;
  stats_.num_preemptions = s.num_preemptions;
  stats_.prefix_cache_queries = s.prefix_query_tokens;
  stats_.prefix_cache_hits = s.prefix_hit_tokens;
  stats_.prompt_tokens = prompt_tokens_;
  stats_.computed_prompt_tokens = computed_prompt_tokens_;
  stats_.generation_tokens = generation_tokens_;
  stats_.num_steps = num_steps_;
}

}  // namespace pagedserve
