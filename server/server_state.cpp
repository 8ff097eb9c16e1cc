#include "server/server_state.h"

#include <vector>

#include "server/completion_job.h"

namespace pagedserve {

std::shared_ptr<CompletionBackend> ServerState::backend() const {
  std::lock_guard lock(mutex_);
  return backend_;
}

void ServerState::set_backend(std::shared_ptr<CompletionBackend> backend) {
  std::lock_guard lock(mutex_);
  backend_ = std::move(backend);
}

std::shared_ptr<const ChatFormat> ServerState::chat_format() const {
  std::lock_guard lock(mutex_);
  return chat_format_;
}

void ServerState::set_chat_format(std::shared_ptr<const ChatFormat> format) {
  std::lock_guard lock(mutex_);
  chat_format_ = std::move(format);
}

bool ServerState::begin_job(const std::shared_ptr<CompletionJob>& job, std::uint64_t& job_key) {
  std::lock_guard lock(mutex_);
  if (options_.max_concurrent_requests > 0 && int(jobs_.size()) >= options_.max_concurrent_requests)
    return false;
  job_key = next_job_key_++;
  jobs_[job_key] = job;
  return true;
}

void ServerState::end_job(std::uint64_t job_key) {
  std::lock_guard lock(mutex_);
  jobs_.erase(job_key);
}

int ServerState::jobs_in_flight() const {
  std::lock_guard lock(mutex_);
  return int(jobs_.size());
}

void ServerState::abort_all_jobs() {
  std::vector<std::shared_ptr<CompletionJob>> live;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, weak] : jobs_) {
      if (auto job = weak.lock()) live.push_back(std::move(job));
    }
  }
  for (auto& job : live) job->abort();
}

}  // namespace pagedserve
