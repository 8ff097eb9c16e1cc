#include "model/cuda/decode_graphs.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"

namespace pagedserve {

using cuda_detail::check_cuda;

std::vector<int> DecodeGraphs::bucket_sizes(int max_rows) {
  std::vector<int> sizes;
  for (int rows : {1, 2, 4, 8}) {
    if (rows < max_rows) sizes.push_back(rows);
  }
  for (int rows = 16; rows < max_rows; rows += 8) sizes.push_back(rows);
  if (max_rows > 0) sizes.push_back(max_rows);
  return sizes;
}

DecodeGraphs::DecodeGraphs(CUstream_st* stream) : stream_(stream) {}

DecodeGraphs::~DecodeGraphs() {
  for (void* exec : execs_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec));
}

void DecodeGraphs::capture(int rows, const std::function<void()>& enqueue_forward) {
  if (!buckets_.empty() && rows <= buckets_.back()) {
    throw std::logic_error("DecodeGraphs::capture: buckets must be captured in increasing order");
  }
  check_cuda(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  cudaGraph_t graph = nullptr;
  try {
    enqueue_forward();
  } catch (...) {
    cudaStreamEndCapture(stream_, &graph);
    if (graph != nullptr) cudaGraphDestroy(graph);
    throw;
  }
  check_cuda(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check_cuda(instantiated, "cudaGraphInstantiate");
  // Uploading now moves the first replay's set-up cost to start-up.
  check_cuda(cudaGraphUpload(exec, stream_), "cudaGraphUpload");
  buckets_.push_back(rows);
  execs_.push_back(exec);
}

int DecodeGraphs::bucket_for(int rows) const noexcept {
  const auto it = std::lower_bound(buckets_.begin(), buckets_.end(), rows);
  return it == buckets_.end() ? 0 : *it;
}

void DecodeGraphs::launch(int bucket) const {
  const auto it = std::lower_bound(buckets_.begin(), buckets_.end(), bucket);
  if (it == buckets_.end() || *it != bucket) {
    throw std::logic_error("DecodeGraphs::launch: no graph of " + std::to_string(bucket) + " rows");
  }
  const auto index = static_cast<std::size_t>(it - buckets_.begin());
  check_cuda(cudaGraphLaunch(static_cast<cudaGraphExec_t>(execs_[index]), stream_), "cudaGraphLaunch");
}

}  // namespace pagedserve
