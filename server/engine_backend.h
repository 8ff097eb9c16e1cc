// The adapter from the server's CompletionBackend to the real engine (scheduler/engine.h): it
// builds the model stack (config, tokenizer, weights, KV cache, engine thread), logging progress,
// and copies requests and outputs between the server's types and the engine's.
//
// Threads: load_engine_backend() runs on the calling thread (main) and may take long (weights).
// The returned backend follows CompletionBackend's rules; destroying it stops the engine, which
// finishes every live request with "abort" first.
#pragma once

#include <memory>

#include "server/completion_backend.h"
#include "server/engine_settings.h"

namespace pagedserve {

// Throws SetupError naming the file or flag at fault (bad model dir, unsupported backend, a KV
// budget that holds no page, ...).
std::shared_ptr<CompletionBackend> load_engine_backend(const EngineSettings& settings);

}  // namespace pagedserve
