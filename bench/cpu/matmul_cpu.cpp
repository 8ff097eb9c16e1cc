// The matmul paths on Qwen2.5-0.5B projection shapes (24 layers of weights, so decode streams
// from DRAM as it does in the model), for rows M of decode and prefill size. Prints ms per pass
// over all layers, GB/s of weights and GFLOP/s, per path, to choose the M threshold.
//   matmul_cpu [--threads 2] [--layers 24] [--dtype bf16|f16] [--m M (only this M)] [--repeats R]
//              [--projection q|k|v|o|gate|up|down (only this one of the layer's projections)]
// Each figure is the median of the repeats (min in brackets); the first pass warms up.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/cpu/read_bandwidth.h"
#include "core/buffer.h"
#include "core/half.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_amx.h"
#include "kernels/cpu/matmul_avx512.h"
#include "kernels/cpu/matmul_avx512bf16.h"

using namespace pagedserve;

namespace {

struct Projection {
  const char* name;
  std::int64_t n, k;
};

constexpr Projection kLayer[] = {{"q", 896, 896},     {"k", 128, 896},   {"v", 128, 896},    {"o", 896, 896},
                                 {"gate", 4864, 896}, {"up", 4864, 896}, {"down", 896, 4864}};

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int layers = 24;
  DType dtype = DType::bf16;
  std::int64_t only_m = 0;
  int repeats_override = 0;
  std::string only_projection;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--layers")) layers = std::stoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--m")) only_m = std::stoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeats")) repeats_override = std::stoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--projection")) only_projection = argv[i + 1];
    if (!std::strcmp(argv[i], "--dtype"))
      dtype = std::string(argv[i + 1]) == "f16" ? DType::f16 : DType::bf16;
  }
  ThreadPool pool(threads);
  std::printf("threads %d, layers %d, weights %s, read bandwidth %.1f GB/s\n", threads, layers,
              std::string(dtype_name(dtype)).c_str(), measure_read_bandwidth(pool) / 1e9);

  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-0.05f, 0.05f);
  std::vector<std::vector<Buffer>> weights(static_cast<std::size_t>(layers));
  std::size_t weight_bytes = 0;
  double flops_per_row = 0;
  for (auto& layer : weights) {
    for (const Projection& p : kLayer) {
      if (!only_projection.empty() && only_projection != p.name) {
        layer.emplace_back();  // not run
        continue;
      }
      Buffer w(static_cast<std::size_t>(p.n * p.k) * 2, Device::cpu);
      auto* bits = static_cast<std::uint16_t*>(w.data());
      for (std::int64_t i = 0; i < p.n * p.k; ++i) {
        bits[i] = dtype == DType::bf16 ? to_bf16(dist(rng)).bits : to_f16(dist(rng)).bits;
      }
      weight_bytes += w.nbytes();
      flops_per_row += 2.0 * static_cast<double>(p.n * p.k);
      layer.push_back(std::move(w));
    }
  }
  const std::int64_t max_m = 512;
  Buffer x(max_m * 4864 * 4, Device::cpu), y(max_m * 4864 * 4, Device::cpu);
  for (std::int64_t i = 0; i < max_m * 4864; ++i) static_cast<float*>(x.data())[i] = dist(rng);
  const auto workspace_floats = static_cast<std::int64_t>(matmul_workspace_floats(max_m, 4864, pool.size()));
  Buffer workspace(static_cast<std::size_t>(workspace_floats) * 4, Device::cpu);

  const MatmulPath paths[] = {MatmulPath::dot_avx512bf16, MatmulPath::panel_simd,   MatmulPath::dot_avx512,
                              MatmulPath::dot_avx2,       MatmulPath::sgemm_blocks, MatmulPath::dot_portable,
                              MatmulPath::amx};
  const char* path_names[] = {"avx512bf16", "panel", "dot_avx512", "dot_avx2", "sgemm_blocks", "dot_portable", "amx"};
  for (std::int64_t m : {1, 2, 4, 8, 12, 16, 32, 64, 512}) {
    if (only_m != 0 && m != only_m) continue;
    for (int p = 0; p < static_cast<int>(std::size(paths)); ++p) {
      if (paths[p] == MatmulPath::amx && (!amx_bf16_usable() || dtype != DType::bf16)) continue;
      if (paths[p] == MatmulPath::dot_avx512bf16 && (!cpu_has_avx512_bf16() || dtype != DType::bf16)) continue;
      if (paths[p] == MatmulPath::panel_simd && (!cpu_has_avx512() || m < 16)) continue;
      if (paths[p] == MatmulPath::dot_portable && m > 1) continue;
      if ((paths[p] == MatmulPath::dot_avx512 || paths[p] == MatmulPath::dot_avx2) && m > 64) continue;
      const int repeats = repeats_override > 0 ? repeats_override : m >= 64 ? 1 : 3;
      std::vector<double> times;
      for (int r = 0; r < repeats + 1; ++r) {  // the first pass warms up
        const auto start = std::chrono::steady_clock::now();
        for (int l = 0; l < layers; ++l) {
          for (std::size_t j = 0; j < std::size(kLayer); ++j) {
            const Projection& proj = kLayer[j];
            if (!only_projection.empty() && only_projection != proj.name) continue;
            matmul(x.view(DType::f32, {m, proj.k}), weights[l][j].view(dtype, {proj.n, proj.k}), TensorView(),
                   y.view(DType::f32, {m, proj.n}), workspace.view(DType::f32, {workspace_floats}), pool,
                   paths[p]);
          }
        }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (r > 0) times.push_back(seconds);
      }
      std::sort(times.begin(), times.end());
      const double best = times[times.size() / 2];
      std::printf("M=%4lld %-13s %8.2f ms (min %8.2f)  %6.1f GB/s  %6.1f GFLOP/s\n", static_cast<long long>(m),
                  path_names[p], best * 1e3, times.front() * 1e3, static_cast<double>(weight_bytes) / best / 1e9,
                  flops_per_row * static_cast<double>(m) / best / 1e9);
    }
  }
  return 0;
}
