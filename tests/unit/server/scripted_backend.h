// A test double for the engine: a CompletionBackend whose own thread plays a fixed script.
// Each request emits `max_tokens` tokens (ids 1000 + i, text "t<i> ") one delta each, then
// finishes with "length"; prompts over kPoolLimit ids are refused; prompts whose first id is kHoldToken
// instead hold after one token until aborted. Tokenizer: one id per byte (id = byte value), vocabulary 2000.
// With set_script(pieces), each request instead emits the pieces as its deltas (one token each) and
// finishes with "stop" after the last (or "length" at max_tokens first): output a test chooses.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/completion_backend.h"

namespace pagedserve::testing {

class ScriptedBackend : public CompletionBackend {
 public:
  static constexpr std::int32_t kHoldToken = 7;  // "\a" as a text prompt
  static constexpr std::int32_t kFailToken = 8;  // "\b": the engine fails it after one token
  static constexpr std::size_t kPoolLimit = 40;  // longer prompts are refused at submit

  ScriptedBackend() : thread_([this] { run(); }) {}
  ~ScriptedBackend() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  SubmitOutcome submit(GenerationSpec spec, std::shared_ptr<GenerationSink> sink) override {
    std::lock_guard lock(mutex_);
    if (spec.prompt_ids.size() > kPoolLimit) return {std::nullopt, "prompt too long for the pool", 400};
    BackendRequestId id = next_id_++;
    Live live{std::move(spec), std::move(sink), 0, false, std::chrono::steady_clock::now()};
    requests_.emplace(id, std::move(live));
    ++submitted_;
    cv_.notify_all();
    return {id, {}, 400};
  }

  void abort(BackendRequestId id) override {
    std::lock_guard lock(mutex_);
    if (auto it = requests_.find(id); it != requests_.end()) it->second.aborted = true;
    ++abort_calls_;
    cv_.notify_all();
  }

  BackendStats stats() const override {
    std::lock_guard lock(mutex_);
    BackendStats s;
    s.num_running = int(requests_.size());
    s.kv_cache_usage = requests_.empty() ? 0.0 : 0.5;
    s.generation_tokens = generated_;
    return s;
  }

  std::vector<std::int32_t> tokenize(std::string_view text, bool) const override {
    return std::vector<std::int32_t>(text.begin(), text.end());
  }
  std::string detokenize(std::span<const std::int32_t> ids) const override {
    std::string s;
    for (auto id : ids) s += id < 256 ? std::string(1, char(id)) : token_text(id);
    return s;
  }
  std::string token_text(std::int32_t id) const override {
    if (id >= 0 && id < 256) return std::string(1, char(id));  // as detokenize()
    std::string text = "t";  // appended step by step: g++ 12 -O3 warns falsely on "t" + to_string(..)
    text += std::to_string(id - 1000);
    text += ' ';
    return text;
  }
  int max_model_len() const override { return 64; }
  int vocab_size() const override { return 2000; }

  void set_script(std::vector<std::string> pieces) {
    std::lock_guard lock(mutex_);
    script_ = std::move(pieces);
  }

  int submitted() const {
    std::lock_guard lock(mutex_);
    return submitted_;
  }
  int live_requests() const {
    std::lock_guard lock(mutex_);
    return int(requests_.size());
  }
  int holding() const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (auto& [id, r] : requests_) n += r.emitted > 0;
    return n;
  }

 private:
  struct Live {
    GenerationSpec spec;
    std::shared_ptr<GenerationSink> sink;
    int emitted;
    bool aborted;
    SteadyTime arrival;
  };

  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [this] { return stopping_ || has_work(); });
      if (stopping_) return;
      for (auto it = requests_.begin(); it != requests_.end();) {
        Live& r = it->second;
        bool hold = !r.spec.prompt_ids.empty() && r.spec.prompt_ids[0] == kHoldToken;
        bool fail = !r.spec.prompt_ids.empty() && r.spec.prompt_ids[0] == kFailToken && r.emitted == 1;
        const bool script_done = !script_.empty() && r.emitted == int(script_.size());
        if (r.aborted || fail || script_done || (!hold && r.emitted == r.spec.stop.max_tokens)) {
          GenerationFinish finish;
          finish.reason = r.aborted || fail ? GenerationFinishReason::abort
                          : script_done     ? GenerationFinishReason::stop
                                            : GenerationFinishReason::length;
          if (fail) finish.error = "scripted engine failure";
          finish.prompt_tokens = int(r.spec.prompt_ids.size());
          finish.completion_tokens = r.emitted;
          finish.timings.arrival = r.arrival;
          finish.timings.scheduled = r.arrival;
          if (r.emitted) finish.timings.first_token = r.arrival;
          finish.timings.finish = std::chrono::steady_clock::now();
          auto sink = std::move(r.sink);
          it = requests_.erase(it);
          lock.unlock();
          sink->on_finish(finish);
          lock.lock();
          it = requests_.begin();  // the map may have changed while unlocked
          continue;
        }
        if (hold && r.emitted > 0) {
          ++it;
          continue;
        }
        GenerationDelta delta;
        GeneratedToken token{1000 + r.emitted, -0.25f * float(r.emitted + 1), {}};
        for (int k = 0; k < r.spec.sampling.num_logprobs; ++k)
          token.top_logprobs.emplace_back(1000 + k, -1.0f * k);
        delta.tokens.push_back(token);
        // Prompt logprobs with the first token: position i scored -0.5 i, rank i, alternatives
        // 1500 + k at -0.1 k.
        const std::vector<std::int32_t>& prompt = r.spec.prompt_ids;
        for (std::size_t i = 1; r.emitted == 0 && r.spec.sampling.prompt_logprobs && i < prompt.size(); ++i) {
          PromptTokenLogprob scored{prompt[i], -0.5f * float(i), int(i), {}};
          for (int k = 0; k < *r.spec.sampling.prompt_logprobs; ++k)
            scored.top_logprobs.emplace_back(1500 + k, -0.1f * float(k));
          delta.prompt_logprobs.push_back(std::move(scored));
        }
        delta.text = script_.empty() ? token_text(token.token) : script_[std::size_t(r.emitted)];
        ++r.emitted;
        ++generated_;
        auto sink = r.sink;
        lock.unlock();
        sink->on_delta(delta);
        lock.lock();
        it = requests_.begin();
      }
    }
  }

  bool has_work() const {
    for (auto& [id, r] : requests_) {
      bool hold = !r.spec.prompt_ids.empty() && r.spec.prompt_ids[0] == kHoldToken;
      if (r.aborted || !hold || r.emitted == 0) return true;
    }
    return false;
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::map<BackendRequestId, Live> requests_;
  BackendRequestId next_id_ = 1;
  int submitted_ = 0;
  int abort_calls_ = 0;
  std::uint64_t generated_ = 0;
  bool stopping_ = false;
  std::vector<std::string> script_;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace pagedserve::testing
