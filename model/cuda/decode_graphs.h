// Decode steps replayed from CUDA graphs: one graph per batch-size bucket (1, 2, 4, 8, then steps
// of 8 up to the runner's row capacity), captured at start-up over the runner's fixed-address
// scratch and step staging. A plain decode step of b rows is padded to the smallest bucket >= b
// (padded_decode_batch, model/forward_batch.h), so its packed metadata lands at the addresses the
// graph was captured with; replaying it is one launch instead of ~10 per layer, each with its
// host-side cost (cuBLAS's above all). Owned by the CUDA model runner; engine thread only.
#pragma once

#include <functional>
#include <vector>

struct CUstream_st;

namespace pagedserve {

class DecodeGraphs {
 public:
  // 1, 2, 4, 8, 16, 24, ... up to max_rows (max_rows itself always included).
  static std::vector<int> bucket_sizes(int max_rows);

  explicit DecodeGraphs(CUstream_st* stream);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // Captures what `enqueue_forward` enqueues on the stream (no synchronisation, no allocation
  // allowed inside) as the graph of `rows`; buckets are captured in increasing order.
  void capture(int rows, const std::function<void()>& enqueue_forward);

  // The smallest captured bucket >= rows; 0 when none is that large.
  int bucket_for(int rows) const noexcept;
  // Enqueues the graph of `bucket` (a captured size) on the stream.
  void launch(int bucket) const;
  int count() const noexcept { return static_cast<int>(buckets_.size()); }

 private:
  CUstream_st* stream_ = nullptr;
  std::vector<int> buckets_;  // increasing
  std::vector<void*> execs_;  // [buckets_.size()] cudaGraphExec_t
};

}  // namespace pagedserve
