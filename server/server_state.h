// State shared by every connection: options, the backend (absent while weights load), the chat
// template, metrics,
// the set of in-flight completion jobs (for 429 and graceful shutdown) and the draining flag.
//
// Threads: every method may be called from any thread. The backend pointer is swapped under a
// mutex once, when loading finishes; callers keep the shared_ptr they got for the request's life.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "server/completion_backend.h"
#include "server/server_metrics.h"
#include "server/server_options.h"

namespace pagedserve {

class CompletionJob;
class ChatFormat;

class ServerState {
 public:
  ServerState(ServerOptions options, ServerMetrics& metrics)
      : options_(std::move(options)), metrics_(metrics) {}

  const ServerOptions& options() const { return options_; }
  ServerMetrics& metrics() { return metrics_; }

  std::shared_ptr<CompletionBackend> backend() const;  // null while loading
  void set_backend(std::shared_ptr<CompletionBackend> backend);

  // The model's chat template for /v1/chat/completions; null until set (the routes then answer
  // as for a model without a template).
  std::shared_ptr<const ChatFormat> chat_format() const;
  void set_chat_format(std::shared_ptr<const ChatFormat> format);

  bool draining() const { return draining_.load(); }
  void start_draining() { draining_.store(true); }

  // Admission of one completion job; false when max_concurrent_requests are already in flight.
  // On true the caller owns a slot and must call end_job exactly once.
  bool begin_job(const std::shared_ptr<CompletionJob>& job, std::uint64_t& job_key);
  void end_job(std::uint64_t job_key);
  int jobs_in_flight() const;
  // Shutdown: aborts every in-flight job's engine requests (their streams end with "abort").
  void abort_all_jobs();

 private:
  const ServerOptions options_;
  ServerMetrics& metrics_;
  mutable std::mutex mutex_;
  std::shared_ptr<CompletionBackend> backend_;
  std::shared_ptr<const ChatFormat> chat_format_;
  std::map<std::uint64_t, std::weak_ptr<CompletionJob>> jobs_;
  std::uint64_t next_job_key_ = 1;
  std::atomic<bool> draining_{false};
};

}  // namespace pagedserve
