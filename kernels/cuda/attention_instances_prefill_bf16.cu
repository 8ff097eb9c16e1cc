// Prefill kernels for bf16, every supported head_dim.
#include "kernels/cuda/attention_launch_impl.cuh"

namespace pagedserve::cuda_detail {

template void launch_prefill_attention<__nv_bfloat16, 64>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__nv_bfloat16, 80>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__nv_bfloat16, 96>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__nv_bfloat16, 128>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__nv_bfloat16, 256>(const AttentionParams&, int, cudaStream_t);

}  // namespace pagedserve::cuda_detail
