// One POST /v1/completions or /v1/chat/completions in flight: submits one engine request per
// choice (prompts x n), gathers their outputs, and answers through a CompletionOutput — one JSON
// body, or SSE chunks ending in [DONE] — in the shape of the request's API. No Beast here: the session
// implements CompletionOutput.
//
// Threads: start(), and every CompletionOutput call, run on the connection's strand (`post` puts
// work there). Engine callbacks arrive on the engine thread and are posted to the strand;
// metrics are recorded on the engine thread directly. abort() may be called from any thread.
// Lifetime: shared by the session and by the engine's sinks; it outlives a closed connection
// until the engine has finished (or aborted) every choice. It keeps the session alive until it
// has handed over its final answer (a cycle broken by complete()).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "server/chat_tool_calls.h"
#include "server/completion_backend.h"
#include "server/completion_response.h"
#include "server/http_routes.h"
#include "server/server_state.h"

namespace pagedserve {

class CompletionOutput {
 public:
  virtual ~CompletionOutput() = default;
  virtual void respond(HttpReply reply) = 0;             // the whole non-streaming answer
  virtual void start_stream() = 0;                       // 200 + SSE headers
  virtual void write_stream(std::string sse_bytes) = 0;  // already framed "data: ...\n\n"
  virtual void end_stream() = 0;                         // after the last write
};

using StrandPost = std::function<void(std::function<void()>)>;

class CompletionJob : public std::enable_shared_from_this<CompletionJob> {
 public:
  CompletionJob(CompletionStart start, std::shared_ptr<CompletionBackend> backend, ServerState& state,
                std::shared_ptr<CompletionOutput> output, StrandPost post);

  // Strand. Admits (429 when full), submits every choice and, for streams, sends the headers.
  // A refusal by the engine aborts the choices already submitted and answers with its error.
  void start();

  // Any thread: asks the engine to abort every choice (client gone, shutdown). The job still
  // completes through the sinks' on_finish.
  void abort();

 private:
  struct Choice {
    std::string text;  // non-streaming: the whole text so far
    std::optional<ChoiceLogprobs> logprobs;
    int text_offset = 0;
    std::string finish_reason;
    int completion_tokens = 0;
    int cached_tokens = 0;
    bool finished = false;
    std::optional<ToolCallStream> tool_calls;  // streaming chat with tools: holds back possible calls
    int num_tool_calls = 0;                    // streamed so far: the next call's index
    // Prompt logprobs (prompt_logprobs, or echo with logprobs), from the engine's first delta:
    // positions 1 .. prompt_len - 1.
    std::optional<std::vector<PromptTokenLogprob>> prompt_logprobs;
    bool echo_pending = false;  // streaming echo with logprobs: the prompt goes out with the first delta
  };
  class Sink;

  void on_delta(int choice, const GenerationDelta& delta);                // strand
  void on_finish(int choice, const GenerationFinish& finish);             // strand
  void complete();                                                        // strand
  void abort_on_strand();                                                 // strand
  void write_tool_calls(int choice, const std::vector<ToolCall>& calls);  // strand, streaming
  // One logprobs entry for token `id`: its text offset (advancing the choice's), its name, logprob
  // and alternatives.
  void append_entry(ChoiceLogprobs& lp, Choice& choice, std::int32_t id, std::optional<float> logprob,
                    std::vector<std::pair<std::string, float>> top) const;
  // The choice's scored prompt positions (empty before the engine's first delta).
  static std::span<const PromptTokenLogprob> scored_prompt(const Choice& choice) {
    return choice.prompt_logprobs ? std::span<const PromptTokenLogprob>(*choice.prompt_logprobs)
                                  : std::span<const PromptTokenLogprob>();
  }
  void write_echo(int choice);  // streaming: the choice's prompt text as one chunk
  ChoiceLogprobs logprobs_for(Choice& choice, const std::vector<GeneratedToken>& tokens);
  // Echo with logprobs: the prompt's tokens as logprobs entries (the first one null), before the
  // generated ones.
  ChoiceLogprobs echoed_prompt_logprobs(Choice& choice, int prompt_index) const;
  PromptLogprobs prompt_logprobs_for(const Choice& choice, int prompt_index) const;  // vLLM's shape
  std::string token_name(std::int32_t id) const;  // a logprobs entry's token
  GenerationSpec spec_for(int prompt_index) const;
  // The job holds its connection until the final answer is handed over, then lets go.
  std::shared_ptr<CompletionOutput> release_output() { return std::move(output_); }

  const CompletionStart start_;
  const std::shared_ptr<CompletionBackend> backend_;
  ServerState& state_;
  std::shared_ptr<CompletionOutput> output_;
  const StrandPost post_;
  CompletionHeader header_;
  std::vector<Choice> choices_;
  std::vector<BackendRequestId> request_ids_;
  std::uint64_t job_key_ = 0;
  bool admitted_ = false;
  bool done_ = false;
  int num_finished_ = 0;
  std::string engine_error_;
};

}  // namespace pagedserve
