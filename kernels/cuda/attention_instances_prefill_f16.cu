// Prefill kernels for f16, every supported head_dim.
#include "kernels/cuda/attention_launch_impl.cuh"

namespace pagedserve::cuda_detail {

template void launch_prefill_attention<__half, 64>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__half, 80>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__half, 96>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__half, 128>(const AttentionParams&, int, cudaStream_t);
template void launch_prefill_attention<__half, 256>(const AttentionParams&, int, cudaStream_t);

}  // namespace pagedserve::cuda_detail
