// Decode kernels for f16, every supported head_dim (one .cu per dtype and kernel keeps nvcc
// parallel and each file's compile short).
#include "kernels/cuda/attention_launch_impl.cuh"

namespace pagedserve::cuda_detail {

#define PAGEDSERVE_DECODE_INSTANCE(D)                                                        \
  template int decode_attention_blocks_per_sm<__half, D>(int);                         \
  template void launch_decode_attention<__half, D>(const AttentionParams&, int, cudaStream_t);
PAGEDSERVE_DECODE_INSTANCE(64)
PAGEDSERVE_DECODE_INSTANCE(80)
PAGEDSERVE_DECODE_INSTANCE(96)
PAGEDSERVE_DECODE_INSTANCE(128)
PAGEDSERVE_DECODE_INSTANCE(256)
#undef PAGEDSERVE_DECODE_INSTANCE

template void launch_combine_decode<__half>(const AttentionParams&, int, cudaStream_t);

}  // namespace pagedserve::cuda_detail
