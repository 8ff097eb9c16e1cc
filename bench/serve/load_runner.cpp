#include "bench/serve/load_runner.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <thread>

#include "bench/serve/sse_stream.h"

namespace pagedserve::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// A bar on a terminal; on a log (CI) a line per 10%, so the log stays readable.
void show_progress(int done, int total, double elapsed, bool tty, int& last_tenth) {
  if (tty) {
    constexpr int width = 40;
    const int filled = total > 0 ? done * width / total : width;
    std::fprintf(stderr, "\r[%s%s] %d/%d  %.1fs", std::string(size_t(filled), '#').c_str(),
                 std::string(size_t(width - filled), '.').c_str(), done, total, elapsed);
    if (done == total) std::fputc('\n', stderr);
  } else if (const int tenth = total > 0 ? done * 10 / total : 10; tenth > last_tenth || done == total) {
    last_tenth = tenth;
    std::fprintf(stderr, "bench_serve: %d/%d requests done, %.1fs\n", done, total, elapsed);
  }
  std::fflush(stderr);
}

}  // namespace

RequestResult run_request(const HttpTarget& target, const std::string& path, const BenchRequest& request) {
  RequestResult r;
  r.prompt_tokens = request.prompt_tokens;
  SseParser sse;
  int text_chunks = 0;
  bool done = false;
  std::optional<int> usage_completion;
  Clock::time_point last_token;
  const Clock::time_point start = Clock::now();
  try {
    HttpReply reply = http_post_streaming(target, path, request.body, [&](std::string_view bytes) {
      const Clock::time_point now = Clock::now();  // before any parsing: the piece's arrival
      for (const std::string& data : sse.feed(bytes)) {
        CompletionChunk chunk = parse_completion_chunk(data);
        if (chunk.error && r.error.empty()) r.error = *chunk.error;
        if (chunk.done) done = true;
        if (chunk.prompt_tokens) r.prompt_tokens = *chunk.prompt_tokens;
        if (chunk.completion_tokens) usage_completion = chunk.completion_tokens;
        if (chunk.text.empty()) continue;
        if (text_chunks == 0) {
          r.ttft = seconds(start, now);
        } else {
          r.itl.push_back(seconds(last_token, now));
        }
        last_token = now;
        ++text_chunks;
      }
    });
    r.latency = seconds(start, Clock::now());
    if (reply.status < 200 || reply.status >= 300) {
      r.error = "HTTP " + std::to_string(reply.status) + ": " + reply.body.substr(0, 500);
    } else if (r.error.empty() && !done) {
      r.error = "the stream ended without [DONE]";
    } else if (r.error.empty() && text_chunks == 0) {
      r.error = "the stream carried no text";
    }
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  r.output_tokens = usage_completion.value_or(text_chunks);
  r.success = r.error.empty();
  return r;
}

LoadRun run_load(const HttpTarget& target, const std::string& path, const std::vector<BenchRequest>& requests,
                 const std::vector<double>& arrivals, int max_concurrency, bool progress) {
  const int total = int(requests.size());
  LoadRun run;
  run.results.resize(requests.size());
  // Worker k takes the next request index when it is free and waits for that request's arrival:
  // request i starts at max(arrival_i, a worker freeing up), i.e. a FIFO concurrency limit.
  const int workers = std::min(total, max_concurrency > 0 ? max_concurrency : 1024);
  std::atomic<int> next{0};
  std::atomic<int> finished{0};
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  threads.reserve(size_t(workers));
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (int i = next++; i < total; i = next++) {
        std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(arrivals[size_t(i)])));
        const double sent_at = seconds(start, Clock::now());
        run.results[size_t(i)] = run_request(target, path, requests[size_t(i)]);
        run.results[size_t(i)].sent_at = sent_at;
        ++finished;
      }
    });
  }
  const bool tty = progress && isatty(STDERR_FILENO);
  int last_tenth = -1;
  for (int shown = -1; shown < total;) {
    const int done = finished.load();
    if (progress && done != shown) show_progress(done, total, seconds(start, Clock::now()), tty, last_tenth);
    shown = done;
    if (done < total) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (std::thread& t : threads) t.join();
  // From the answers' own end times: the progress loop's polling must not lengthen the run.
  for (const RequestResult& r : run.results) run.duration = std::max(run.duration, r.sent_at + r.latency);
  return run;
}

}  // namespace pagedserve::bench
