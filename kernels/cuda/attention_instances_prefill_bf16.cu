// Prefill kernels for bf16, every supported head_dim.
#include "kernels/cuda/attention_launch_impl.cuh"

namespace pagedserve::cuda_detail {

template void launch_prefill_attention<__nv_bfloat16, 64>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__nv_bfloat16, 80>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__nv_bfloat16, 96>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__nv_bfloat16, 128>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__nv_bfloat16, 256>(const AttentionParams&, int, cudaStream_t);

}  // namespace pagedserve::cuda_detail

#ifdef PAGEDSERVE_PREFILL_STAMPS
// Diagnostic builds only: copies the stamps of the last prefill launch and clears them.
extern "C" int pagedserve_prefill_stamps(unsigned long long* dst, int max_rows) {
  using namespace pagedserve::cuda_detail;
  const int rows = max_rows < kStampRows ? max_rows : kStampRows;
  const std::size_t bytes = static_cast<std::size_t>(rows) * kStampCols * sizeof(unsigned long long);
  check_cuda(cudaDeviceSynchronize(), "stamps");
  check_cuda(cudaMemcpyFromSymbol(dst, g_prefill_stamps, bytes), "stamps");
  void* device_stamps = nullptr;
  check_cuda(cudaGetSymbolAddress(&device_stamps, g_prefill_stamps), "stamps");
  check_cuda(cudaMemset(device_stamps, 0xff, bytes), "stamps");
  return rows;
}
#endif

