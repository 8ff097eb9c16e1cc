// The `pagedserve` executable: `serve` (HTTP server) and `generate` (one offline completion).
// Setup errors end here: one clear log line and a non-zero exit (DESIGN.md §6).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <future>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "server/chat_format.h"
#include "server/cli.h"
#include "server/completion_protocol.h"
#include "server/engine_backend.h"
#include "server/http_server.h"
#include "server/server_metrics.h"

namespace pagedserve {
namespace {

std::string default_model_name(const std::string& model_dir) {
  std::filesystem::path path(model_dir);
  if (!path.has_filename()) path = path.parent_path();
  return path.filename().string();
}

int run_serve(ServeCommand command) {
  init_logging(command.log_level);
  if (command.server.served_model_name.empty()) {
    command.server.served_model_name = default_model_name(command.engine.model_dir);
  }
  spdlog::info("pagedserve serve, resolved config: {}", describe_serve_command(command));
  ServerMetrics metrics(command.server.served_model_name);
  HttpServer server(command.server, metrics);  // declared before the backend: destroyed after it
  std::uint16_t port = server.start();
  spdlog::info("listening on http://{}:{} (/health answers 503 until the model is loaded)",
               command.server.host, port);
  std::shared_ptr<CompletionBackend> backend = load_engine_backend(command.engine);
  server.state().set_chat_format(
      ChatFormat::load(command.engine.model_dir, command.server.chat_template_file));
  server.set_backend(backend);
  spdlog::info("ready: serving '{}' on http://{}:{} (max_model_len {}, vocab {})",
               command.server.served_model_name, command.server.host, port, backend->max_model_len(),
               backend->vocab_size());
  server.wait_for_shutdown_signal();
  server.shutdown();
  backend.reset();  // stops the engine thread
  spdlog::info("stopped");
  return 0;
}

// Writes text to stdout as the engine produces it; the engine thread calls it.
class StdoutSink : public GenerationSink {
 public:
  void on_delta(const GenerationDelta& delta) override {
    std::fwrite(delta.text.data(), 1, delta.text.size(), stdout);
    std::fflush(stdout);
  }
  void on_finish(const GenerationFinish& finish) override { done_.set_value(finish); }
  std::future<GenerationFinish> result() { return done_.get_future(); }

 private:
  std::promise<GenerationFinish> done_;
};

int run_generate(const GenerateCommand& command) {
  init_logging(command.log_level);
  std::shared_ptr<CompletionBackend> backend = load_engine_backend(command.engine);
  GenerationSpec spec;
  spec.prompt_ids = backend->tokenize(command.prompt, true);
  if (auto error =
          check_context_length(int(spec.prompt_ids.size()), command.max_tokens, backend->max_model_len())) {
    throw SetupError("--prompt/--max-tokens", error->message);
  }
  spec.sampling.temperature = command.temperature;
  spec.sampling.top_p = command.top_p;
  spec.sampling.top_k = command.top_k;
  spec.sampling.seed = command.seed;
  spec.stop.max_tokens = command.max_tokens;
  spec.stop.ignore_eos = command.ignore_eos;
  auto sink = std::make_shared<StdoutSink>();
  auto result = sink->result();
  SubmitOutcome outcome = backend->submit(std::move(spec), sink);
  if (!outcome.id) throw SetupError("generate", outcome.error);
  GenerationFinish finish = result.get();
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const char* reason = finish.reason == GenerationFinishReason::stop     ? "stop"
                       : finish.reason == GenerationFinishReason::length ? "length"
                                                                         : "abort";
  std::fprintf(stderr, "[generate] finish_reason=%s prompt_tokens=%d completion_tokens=%d\n", reason,
               finish.prompt_tokens, finish.completion_tokens);
  if (!finish.error.empty()) {
    std::fprintf(stderr, "[generate] engine error: %s\n", finish.error.c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace pagedserve

int main(int argc, char** argv) {
  using namespace pagedserve;
  std::vector<std::string> args(argv, argv + argc);
  CliResult parsed = parse_command_line(args);
  if (auto* help = std::get_if<HelpText>(&parsed)) {
    std::cout << help->text;
    return 0;
  }
  if (auto* error = std::get_if<CliError>(&parsed)) {
    std::cerr << "pagedserve: " << error->message << "\n(see pagedserve --help, pagedserve serve --help)\n";
    return 2;
  }
  try {
    if (auto* serve = std::get_if<ServeCommand>(&parsed)) return run_serve(*serve);
    return run_generate(std::get<GenerateCommand>(parsed));
  } catch (const SetupError& e) {
    init_logging();
    spdlog::critical("setup failed: {}", e.what());
  } catch (const std::exception& e) {
    init_logging();
    spdlog::critical("fatal: {}", e.what());
  }
  return 1;
}
