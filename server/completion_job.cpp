#include "server/completion_job.h"

#include <algorithm>
#include <iterator>

#include "server/chat_response.h"

namespace pagedserve {
namespace {

const char* reason_name(GenerationFinishReason reason) {
  switch (reason) {
    case GenerationFinishReason::stop:
      return "stop";
    case GenerationFinishReason::length:
      return "length";
    case GenerationFinishReason::abort:
      return "abort";
  }
  return "abort";
}

// The wire shape of the job's API: completions' text_completion or chat's chat.completion objects.
std::string chunk_json(CompletionApi api, const CompletionHeader& header, const CompletionChoice& choice) {
  return api == CompletionApi::chat_completions ? chat_chunk_json(header, choice)
                                                : completion_chunk_json(header, choice);
}

std::string usage_json(CompletionApi api, const CompletionHeader& header, const CompletionUsage& usage) {
  return api == CompletionApi::chat_completions ? chat_usage_chunk_json(header, usage)
                                                : usage_chunk_json(header, usage);
}

// Appends `more`'s entries to `all`'s (they run in parallel).
void append_logprobs(ChoiceLogprobs& all, ChoiceLogprobs more) {
  const auto append = [](auto& to, auto& from) {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  };
  append(all.tokens, more.tokens);
  append(all.token_logprobs, more.token_logprobs);
  append(all.top_logprobs, more.top_logprobs);
  append(all.text_offset, more.text_offset);
}

}  // namespace

// Engine-thread side of one choice: records metrics, then hands the output to the strand.
class CompletionJob::Sink : public GenerationSink {
 public:
  Sink(std::shared_ptr<CompletionJob> job, int choice) : job_(std::move(job)), choice_(choice) {}

  void on_delta(const GenerationDelta& delta) override {
    job_->post_([job = job_, choice = choice_, delta] { job->on_delta(choice, delta); });
  }

  void on_finish(const GenerationFinish& finish) override {
    job_->state_.metrics().record_finish(finish);
    job_->post_([job = job_, choice = choice_, finish] { job->on_finish(choice, finish); });
  }

 private:
  std::shared_ptr<CompletionJob> job_;
  int choice_;
};

CompletionJob::CompletionJob(CompletionStart start, std::shared_ptr<CompletionBackend> backend,
                             ServerState& state, std::shared_ptr<CompletionOutput> output, StrandPost post)
    : start_(std::move(start)),
      backend_(std::move(backend)),
      state_(state),
      output_(std::move(output)),
      post_(std::move(post)) {
  const bool chat = start_.api == CompletionApi::chat_completions;
  header_ = {chat ? make_chat_completion_id() : make_completion_id(), unix_time_now(),
             state_.options().served_model_name};
  choices_.resize(start_.prompt_ids.size() * std::size_t(start_.request.n));
}

GenerationSpec CompletionJob::spec_for(int prompt_index) const {
  const CompletionRequest& r = start_.request;
  GenerationSpec spec;
  spec.prompt_ids = start_.prompt_ids[prompt_index];
  spec.sampling = {r.temperature,
                   r.top_p,
                   r.top_k,
                   r.min_p,
                   r.presence_penalty,
                   r.frequency_penalty,
                   r.repetition_penalty,
                   r.seed,
                   r.logprobs.value_or(0),
                   r.logit_bias,
                   r.prompt_logprobs};
  // Echo with logprobs scores the prompt as vLLM does (prompt_logprobs = logprobs, or more).
  if (r.echo && r.logprobs)
    spec.sampling.prompt_logprobs = std::max(*r.logprobs, r.prompt_logprobs.value_or(0));
  // Echo only: one token is sampled (the prefill's) and left out of the answer.
  spec.stop = {r.engine_max_tokens(), r.min_tokens, r.ignore_eos, r.stop_token_ids, r.stop};
  spec.skip_special_tokens = r.skip_special_tokens;
  return spec;
}

void CompletionJob::start() {
  if (!output_) return;
  if (!state_.begin_job(shared_from_this(), job_key_)) {
    done_ = true;
    release_output()->respond(
        error_reply(ApiError::too_many_requests("Too many requests in flight; retry later")));
    return;
  }
  admitted_ = true;
  const int n = start_.request.n;
  for (int c = 0; c < int(choices_.size()); ++c) {
    GenerationSpec spec = spec_for(c / n);
    // n > 1 with a seed: each choice gets its own stream, still reproducible.
    if (spec.sampling.seed && c % n) *spec.sampling.seed += std::uint64_t(c % n);
    SubmitOutcome outcome = backend_->submit(std::move(spec), std::make_shared<Sink>(shared_from_this(), c));
    if (!outcome.id) {
      for (BackendRequestId id : request_ids_) backend_->abort(id);
      done_ = true;
      state_.end_job(job_key_);
      ApiError error = ApiError::invalid_request(outcome.error);
      error.status = outcome.http_status;
      if (outcome.http_status == 429) error = ApiError::too_many_requests(outcome.error);
      if (outcome.http_status == 503) error = ApiError::unavailable(outcome.error);
      release_output()->respond(error_reply(error));
      return;
    }
    request_ids_.push_back(*outcome.id);
  }
  if (!start_.request.stream) {
    for (int c = 0; c < int(choices_.size()); ++c)
      choices_[c].text = start_.request.echo ? start_.prompt_texts[c / n] : "";
    return;
  }
  output_->start_stream();
  if (start_.tool_call_format != ToolCallFormat::none) {
    for (Choice& choice : choices_) choice.tool_calls.emplace(start_.tool_call_format);
  }
  if (start_.api == CompletionApi::chat_completions) {
    for (int c = 0; c < int(choices_.size()); ++c)
      output_->write_stream(sse_event(chat_role_chunk_json(header_, c)));
  }
  if (start_.request.echo) {
    for (int c = 0; c < int(choices_.size()); ++c) {
      // With logprobs the prompt's need the prefill: they go out with the first token, as vLLM's.
      if (start_.request.logprobs) {
        choices_[c].echo_pending = true;
        continue;
      }
      write_echo(c);
    }
  }
}

void CompletionJob::write_echo(int c) {
  output_->write_stream(sse_event(
      completion_chunk_json(header_, {c, start_.prompt_texts[std::size_t(c / start_.request.n)], std::nullopt, ""})));
}

void CompletionJob::abort() {
  post_([self = shared_from_this()] { self->abort_on_strand(); });
}

void CompletionJob::abort_on_strand() {
  if (done_) return;
  for (BackendRequestId id : request_ids_) backend_->abort(id);
}

std::string CompletionJob::token_name(std::int32_t id) const {
  // vLLM's return_tokens_as_token_ids: "token_id:N" names tokens whose text is not valid UTF-8.
  return start_.request.return_tokens_as_token_ids ? "token_id:" + std::to_string(id)
                                                   : backend_->token_text(id);
}

void CompletionJob::append_entry(ChoiceLogprobs& lp, Choice& choice, std::int32_t id, std::optional<float> logprob,
                                 std::vector<std::pair<std::string, float>> top) const {
  std::string text = backend_->token_text(id);  // decoded once: the offset and the name
  lp.text_offset.push_back(choice.text_offset);
  choice.text_offset += int(text.size());
  lp.tokens.push_back(start_.request.return_tokens_as_token_ids ? token_name(id) : std::move(text));
  lp.token_logprobs.push_back(logprob);
  lp.top_logprobs.push_back(std::move(top));
}

ChoiceLogprobs CompletionJob::logprobs_for(Choice& choice, const std::vector<GeneratedToken>& tokens) {
  ChoiceLogprobs lp;
  for (const GeneratedToken& t : tokens) {
    std::vector<std::pair<std::string, float>> top;
    for (const auto& [id, logprob] : t.top_logprobs) top.emplace_back(token_name(id), logprob);
    append_entry(lp, choice, t.token, t.logprob, std::move(top));
  }
  return lp;
}

ChoiceLogprobs CompletionJob::echoed_prompt_logprobs(Choice& choice, int prompt_index) const {
  const std::vector<std::int32_t>& prompt = start_.prompt_ids[std::size_t(prompt_index)];
  const std::span<const PromptTokenLogprob> scored = scored_prompt(choice);
  const std::size_t wanted = std::size_t(start_.request.logprobs.value_or(0));
  ChoiceLogprobs lp;
  for (std::size_t i = 0; i < prompt.size(); ++i) {
    if (i == 0 || i - 1 >= scored.size()) {  // nothing before the first token
      append_entry(lp, choice, prompt[i], std::nullopt, {});
      continue;
    }
    const PromptTokenLogprob& s = scored[i - 1];
    std::vector<std::pair<std::string, float>> top;
    for (std::size_t k = 0; k < s.top_logprobs.size() && k < wanted; ++k)
      top.emplace_back(token_name(s.top_logprobs[k].first), s.top_logprobs[k].second);
    append_entry(lp, choice, prompt[i], s.logprob, std::move(top));
  }
  return lp;
}

PromptLogprobs CompletionJob::prompt_logprobs_for(const Choice& choice, int prompt_index) const {
  const std::size_t prompt_len = start_.prompt_ids[std::size_t(prompt_index)].size();
  const std::size_t wanted = std::size_t(start_.request.prompt_logprobs.value_or(0));
  PromptLogprobs result;
  result.emplace_back(std::nullopt);  // the first token has nothing before it
  const std::span<const PromptTokenLogprob> scored = scored_prompt(choice);
  for (std::size_t i = 0; i + 1 < prompt_len && i < scored.size(); ++i) {
    const PromptTokenLogprob& s = scored[i];
    std::vector<PromptLogprobEntry> entries;
    entries.push_back({s.token, s.logprob, s.rank, backend_->token_text(s.token)});
    for (std::size_t k = 0; k < s.top_logprobs.size() && k < wanted; ++k) {
      const auto& [id, logprob] = s.top_logprobs[k];
      entries.push_back({id, logprob, int(k) + 1, backend_->token_text(id)});
    }
    result.emplace_back(std::move(entries));
  }
  return result;
}

void CompletionJob::on_delta(int c, const GenerationDelta& delta) {
  if (done_) return;
  Choice& choice = choices_[c];
  const CompletionRequest& r = start_.request;
  const bool first = !choice.prompt_logprobs && r.scores_prompt();
  if (first) choice.prompt_logprobs = delta.prompt_logprobs;
  // Echo only: the sampled token is not part of the answer, only the prompt (and its logprobs).
  const std::string generated = r.echo_only() ? std::string() : delta.text;
  std::optional<ChoiceLogprobs> lp;
  if (r.logprobs) {
    lp.emplace();
    if (first && r.echo) *lp = echoed_prompt_logprobs(choice, c / r.n);
    if (!r.echo_only()) append_logprobs(*lp, logprobs_for(choice, delta.tokens));
  }
  if (!r.stream) {
    choice.text += generated;
    if (lp) {
      if (!choice.logprobs) choice.logprobs.emplace();
      append_logprobs(*choice.logprobs, std::move(*lp));
    }
    return;
  }
  std::string text = generated;
  if (choice.echo_pending) {
    choice.echo_pending = false;
    text = start_.prompt_texts[std::size_t(c / r.n)] + text;
  }
  std::vector<ToolCall> calls;
  if (choice.tool_calls) {
    ParsedToolCalls parsed = choice.tool_calls->feed(generated);
    text = std::move(parsed.content);
    calls = std::move(parsed.calls);
  }
  if (!text.empty() || (lp && !lp->tokens.empty()))
    output_->write_stream(
        sse_event(chunk_json(start_.api, header_, {c, std::move(text), std::move(lp), ""})));
  write_tool_calls(c, calls);
}

void CompletionJob::write_tool_calls(int c, const std::vector<ToolCall>& calls) {
  for (const ToolCall& call : calls) {
    const int tool_index = choices_[c].num_tool_calls++;
    for (bool arguments_part : {false, true}) {
      output_->write_stream(
          sse_event(chat_tool_call_chunk_json(header_, c, tool_index, call, arguments_part)));
    }
  }
}

void CompletionJob::on_finish(int c, const GenerationFinish& finish) {
  if (done_) return;
  Choice& choice = choices_[c];
  if (choice.finished) return;
  choice.finished = true;
  choice.finish_reason = reason_name(finish.reason);
  choice.completion_tokens = finish.completion_tokens;
  if (start_.request.echo_only() && finish.error.empty() && finish.reason != GenerationFinishReason::abort) {
    choice.finish_reason = "length";  // as vLLM: the prompt alone, cut at max_tokens 0
    choice.completion_tokens = 0;
  }
  choice.cached_tokens = finish.cached_tokens;
  if (!finish.error.empty() && engine_error_.empty()) engine_error_ = finish.error;
  if (start_.request.stream && finish.error.empty()) {
    if (choice.echo_pending) {  // finished before any token: the prompt still goes out
      choice.echo_pending = false;
      write_echo(c);
    }
    if (choice.tool_calls) {  // what was held back: content, or calls completed by the end
      ParsedToolCalls rest = choice.tool_calls->finish();
      if (!rest.content.empty())
        output_->write_stream(
            sse_event(chunk_json(start_.api, header_, {c, std::move(rest.content), {}, ""})));
      write_tool_calls(c, rest.calls);
      if (choice.tool_calls->called() && finish.reason != GenerationFinishReason::abort)
        choice.finish_reason = "tool_calls";
    }
    std::optional<ChoiceLogprobs> lp;
    if (start_.request.logprobs) lp.emplace();
    output_->write_stream(
        sse_event(chunk_json(start_.api, header_, {c, "", std::move(lp), choice.finish_reason})));
  }
  if (++num_finished_ == int(choices_.size())) complete();
}

void CompletionJob::complete() {
  done_ = true;
  if (admitted_) state_.end_job(job_key_);
  CompletionUsage usage;
  // A prompt counts once however many choices it has, and so do its cached tokens: those of its
  // first choice, the one submitted first (its siblings reuse the pages it computes).
  for (std::size_t p = 0; p < start_.prompt_ids.size(); ++p) {
    usage.prompt_tokens += int(start_.prompt_ids[p].size());
    usage.cached_tokens += choices_[p * std::size_t(start_.request.n)].cached_tokens;
  }
  for (const Choice& choice : choices_) usage.completion_tokens += choice.completion_tokens;
  std::shared_ptr<CompletionOutput> out = release_output();
  if (start_.request.stream) {
    if (!engine_error_.empty())
      out->write_stream(sse_event(error_body_json(ApiError::unavailable(engine_error_))));
    if (start_.request.include_usage) out->write_stream(sse_event(usage_json(start_.api, header_, usage)));
    out->write_stream(std::string(kSseDone));
    out->end_stream();
    return;
  }
  if (!engine_error_.empty()) {
    out->respond(error_reply(ApiError::unavailable(engine_error_)));
    return;
  }
  std::vector<CompletionChoice> result;
  std::vector<ParsedToolCalls> tool_calls;
  for (int c = 0; c < int(choices_.size()); ++c) {
    Choice& choice = choices_[c];
    if (start_.tool_call_format != ToolCallFormat::none) {
      tool_calls.push_back(parse_tool_calls(start_.tool_call_format, choice.text));
      if (!tool_calls.back().calls.empty() && choice.finish_reason != "abort")
        choice.finish_reason = "tool_calls";
    }
    if (start_.request.logprobs && !choice.logprobs) choice.logprobs.emplace();
    std::optional<PromptLogprobs> prompt_logprobs;
    if (start_.request.prompt_logprobs) prompt_logprobs = prompt_logprobs_for(choice, c / start_.request.n);
    result.push_back({c, std::move(choice.text), std::move(choice.logprobs), choice.finish_reason,
                      std::move(prompt_logprobs)});
  }
  std::string body = start_.api == CompletionApi::chat_completions
                         ? chat_response_json(header_, result, usage, &tool_calls)
                         : completion_response_json(header_, result, usage);
  out->respond(HttpReply{200, "application/json", std::move(body), {}});
}

}  // namespace pagedserve
