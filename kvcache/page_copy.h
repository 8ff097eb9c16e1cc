// One copy-on-write of a partly filled page: the K/V of the `num_slots` leading slots of page
// `source` copied into page `target`, in every layer, before a step writes anything. Made by the
// BlockManager when a sequence is admitted onto another sequence's partly filled page (the n choices
// of one prompt); carried to the backends by the StepPlan and the ForwardBatch. Plain data.
#pragma once

#include <cstdint>

namespace pagedserve {

struct PageCopy {
  std::int32_t source = 0;
  std::int32_t target = 0;
  std::int32_t num_slots = 0;  // [1, page_size)

  friend bool operator==(const PageCopy&, const PageCopy&) = default;
};

}  // namespace pagedserve
