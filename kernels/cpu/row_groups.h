// Row counts as compile-time constants for register-blocked CPU kernels: the rows of x go in
// whole groups, then one call for the 1..Group-1 rows left, each with its count as a template
// argument (the kernels unroll their accumulators by it).
// Header-only, no state; included by the ISA-specific kernel files (each instantiates its own).
#pragma once

#include <cstdint>
#include <type_traits>

namespace pagedserve {

template <int Rows, typename Body>
void row_group_tail(std::int64_t rows_left, std::int64_t first_row, Body& body) {
  if constexpr (Rows > 0) {
    if (rows_left == Rows) {
      body(std::integral_constant<int, Rows>{}, first_row);
      return;
    }
    row_group_tail<Rows - 1>(rows_left, first_row, body);
  }
}

// body(std::integral_constant<int, R>{}, first_row) for rows [first_row, first_row + R) of m.
template <int Group, typename Body>
void for_row_groups(std::int64_t m, Body&& body) {
  std::int64_t i = 0;
  for (; i + Group <= m; i += Group) body(std::integral_constant<int, Group>{}, i);
  row_group_tail<Group - 1>(m - i, i, body);
}

// The memory-bound order: each weight row n in [n_begin, n_end) once, read by every group of x
// rows before the next: body(std::integral_constant<int, R>{}, first_row, n).
template <int Group, typename Body>
void for_weight_rows_streaming(std::int64_t m, std::int64_t n_begin, std::int64_t n_end, Body&& body) {
  for (std::int64_t n = n_begin; n < n_end; ++n) {
    for_row_groups<Group>(m, [&](auto rows, std::int64_t i) { body(rows, i, n); });
  }
}

}  // namespace pagedserve
