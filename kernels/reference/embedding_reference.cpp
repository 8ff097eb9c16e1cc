#include "kernels/reference/embedding_reference.h"

#include "core/half.h"

namespace pagedserve {

void embedding_lookup_reference(const TensorView& table, std::span<const std::int32_t> token_ids,
                                const TensorView& out) {
  const std::int64_t hidden = table.size(1);
  for (std::size_t t = 0; t < token_ids.size(); ++t) {
    for (std::int64_t i = 0; i < hidden; ++i) {
      const std::int64_t index = token_ids[t] * hidden + i;
      float value = 0;
      switch (table.dtype()) {
        case DType::bf16:
          value = to_float(table.data_as<const bf16>()[index]);
          break;
        case DType::f16:
          value = to_float(table.data_as<const f16>()[index]);
          break;
        default:
          value = table.data_as<const float>()[index];
          break;
      }
      out.data_as<float>()[static_cast<std::int64_t>(t) * hidden + i] = value;
    }
  }
}

}  // namespace pagedserve
