// CUDA paged attention against the CPU reference (kernels/reference) on NaN-poisoned random
// batches: permuted pages, -1 and stale table entries, every supported head_dim, groups 1/4/8,
// pages 16/32/64, bf16 and f16, ragged and mixed batches, split-KV decode, and a decode step
// captured once in a CUDA graph and replayed with changing live rows. Skips without a GPU.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/attention_cuda.h"
#include "kernels/reference/paged_attention_reference.h"
#include "tests/kernels/cuda/cuda_test_support.h"
#include "tests/kernels/paged_batch_fixture.h"

namespace pagedserve {
namespace {

using testing::DeviceBatch;
using testing::PagedBatch;
using testing::PagedBatchSpec;
using testing::PagedRowSpec;

#define SKIP_WITHOUT_GPU() \
  if (!testing::cuda_device_present()) GTEST_SKIP() << "no CUDA device"

double tolerance(DType dtype) { return dtype == DType::bf16 ? 2e-2 : 5e-3; }

std::uint64_t fresh_seed() { return std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32); }

enum class Kernel { decode, prefill };

// Runs one kernel on the device and the reference on the host; compares every live row and
// checks that padding rows were not written.
void expect_matches_reference(const PagedBatchSpec& spec, Kernel kernel) {
  SCOPED_TRACE(testing::describe(spec));
  PagedBatch batch(spec);
  DeviceBatch device(batch);
  const PagedAttentionArgs args = device.args();
  if (kernel == Kernel::decode) {
    const std::size_t bytes = decode_attention_cuda_workspace_bytes(args);
    Buffer workspace(bytes, Device::cuda);
    decode_attention_cuda(args, workspace.data(), bytes, nullptr);
  } else {
    prefill_attention_cuda(args, nullptr);
  }
  testing::cuda_ok(cudaDeviceSynchronize(), "kernel");
  std::vector<std::uint8_t> expected = batch.make_output();
  paged_attention_reference(batch.args(expected));
  const testing::OutputComparison result = testing::compare_to_reference(batch, device.output(), expected);
  EXPECT_TRUE(result.ok(tolerance(spec.dtype))) << result.summary();
}

PagedBatchSpec base_spec(DType dtype, int head_dim, int group, int page, std::vector<PagedRowSpec> rows) {
  PagedBatchSpec spec;
  spec.num_kv_heads = 2;
  spec.heads_per_kv = group;
  spec.head_dim = head_dim;
  spec.page_size = page;
  spec.dtype = dtype;
  spec.rows = std::move(rows);
  spec.seed = fresh_seed();
  return spec;
}

struct Shape {
  DType dtype;
  int head_dim, group, page;
};

std::string shape_name(const ::testing::TestParamInfo<Shape>& info) {
  const Shape& s = info.param;
  return std::string(dtype_name(s.dtype)) + "_d" + std::to_string(s.head_dim) + "_g" + std::to_string(s.group) +
         "_p" + std::to_string(s.page);
}

std::vector<Shape> all_shapes() {
  std::vector<Shape> shapes;
  for (DType dtype : {DType::bf16, DType::f16}) {
    for (int head_dim : {64, 80, 96, 128, 256}) {
      for (int group : {1, 4, 8}) {
        for (int page : {16, 32, 64}) shapes.push_back({dtype, head_dim, group, page});
      }
    }
  }
  return shapes;
}

class CudaAttentionShapes : public ::testing::TestWithParam<Shape> {};

// Decode rows of assorted lengths with inactive rows between them; one long row makes the
// kernel split along K/V (few rows cannot fill the GPU).
TEST_P(CudaAttentionShapes, DecodeMatchesReference) {
  SKIP_WITHOUT_GPU();
  const Shape s = GetParam();
  expect_matches_reference(
      base_spec(s.dtype, s.head_dim, s.group, s.page, {{1, 1}, {0, 0}, {77, 1}, {2900, 1}, {0, 0}, {640, 1}, {16, 1}}),
      Kernel::decode);
}

// Ragged prefill: whole prompts, chunked prefill on context, a decode row, empty rows.
TEST_P(CudaAttentionShapes, PrefillMatchesReference) {
  SKIP_WITHOUT_GPU();
  const Shape s = GetParam();
  expect_matches_reference(
      base_spec(s.dtype, s.head_dim, s.group, s.page, {{150, 150}, {0, 0}, {300, 45}, {9, 1}, {130, 0}, {33, 33}}),
      Kernel::prefill);
}

INSTANTIATE_TEST_SUITE_P(AllShapes, CudaAttentionShapes, ::testing::ValuesIn(all_shapes()), shape_name);

// The main serving shape (32 Q / 8 KV heads, head_dim 128) at batch sizes on both sides of the
// split decision, and a mixed batch of decodes and prefills through the prefill kernel.
TEST(CudaAttention, DecodeManyRowsMainShape) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(static_cast<unsigned>(fresh_seed()));
  std::vector<PagedRowSpec> rows;
  for (int i = 0; i < 96; ++i) {
    const int len = std::uniform_int_distribution<int>(0, 700)(rng);
    rows.push_back(len == 0 ? PagedRowSpec{0, 0} : PagedRowSpec{len, 1});
  }
  PagedBatchSpec spec = base_spec(DType::bf16, 128, 4, 16, rows);
  spec.num_kv_heads = 8;
  expect_matches_reference(spec, Kernel::decode);
}

// Several items per persistent CTA, so items hand their copy pipeline to the next one (items
// of 3+ tiles), or restart it (shorter ones), over the other head_dim / group / page / dtype
// combinations; head_dim 256 never chains (its Q stays in shared memory).
TEST(CudaAttention, DecodeManyItemsPerCtaOtherShapes) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(static_cast<unsigned>(fresh_seed()));
  for (const Shape& shape : {Shape{DType::f16, 64, 8, 32}, Shape{DType::bf16, 96, 1, 64}, Shape{DType::f16, 80, 4, 16},
                             Shape{DType::bf16, 256, 4, 16}}) {
    std::vector<PagedRowSpec> rows;
    for (int i = 0; i < 120; ++i) {
      const int len = std::uniform_int_distribution<int>(0, 900)(rng);
      rows.push_back(len == 0 ? PagedRowSpec{0, 0} : PagedRowSpec{len, 1});
    }
    PagedBatchSpec spec = base_spec(shape.dtype, shape.head_dim, shape.group, shape.page, rows);
    spec.num_kv_heads = 8;
    expect_matches_reference(spec, Kernel::decode);
  }
}

TEST(CudaAttention, DecodeOneLongRowSplits) {
  SKIP_WITHOUT_GPU();
  PagedBatchSpec spec = base_spec(DType::bf16, 128, 4, 16, {{0, 0}, {20000, 1}});
  spec.num_kv_heads = 8;
  expect_matches_reference(spec, Kernel::decode);
}

TEST(CudaAttention, MixedBatchThroughPrefill) {
  SKIP_WITHOUT_GPU();
  std::vector<PagedRowSpec> rows;
  for (int i = 0; i < 12; ++i) rows.push_back({500 + 37 * i, 1});
  rows.push_back({700, 700});
  rows.push_back({0, 0});
  rows.push_back({1100, 300});
  PagedBatchSpec spec = base_spec(DType::f16, 128, 4, 32, rows);
  spec.num_kv_heads = 8;
  expect_matches_reference(spec, Kernel::prefill);
}

// The wgmma prefill kernel (head_dim 64 and 128) at the main serving shape: long prompts whose
// tiles run many K/V stages, chunked prefill on a long context, a tile boundary inside the
// causal diagonal, and groups whose tokens do not divide the 128-row tile (6, 16, 128).
TEST(CudaAttention, PrefillLongPromptsMainShape) {
  SKIP_WITHOUT_GPU();
  PagedBatchSpec spec = base_spec(DType::bf16, 128, 4, 16, {{1500, 1500}, {0, 0}, {2100, 333}, {64, 64}, {65, 1}});
  spec.num_kv_heads = 8;
  expect_matches_reference(spec, Kernel::prefill);
}

TEST(CudaAttention, PrefillGroupsNotDividingTheTile) {
  SKIP_WITHOUT_GPU();
  for (const Shape& shape : {Shape{DType::bf16, 128, 6, 32}, Shape{DType::f16, 64, 16, 16}, Shape{DType::bf16, 128, 128, 64},
                             Shape{DType::f16, 80, 6, 16}}) {
    PagedBatchSpec spec = base_spec(shape.dtype, shape.head_dim, shape.group, shape.page,
                                    {{300, 300}, {7, 7}, {520, 97}, {0, 0}, {44, 2}});
    expect_matches_reference(spec, Kernel::prefill);
  }
}

// Capacities past one block of threads: the on-device scan over rows runs several rounds.
TEST(CudaAttention, LargeCapacityMostlyInactive) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(static_cast<unsigned>(fresh_seed()));
  std::vector<PagedRowSpec> decode_rows(300, PagedRowSpec{0, 0});
  std::vector<PagedRowSpec> prefill_rows(300, PagedRowSpec{0, 0});
  for (int s = 3; s < 300; s += 7) {
    decode_rows[s] = {std::uniform_int_distribution<int>(1, 500)(rng), 1};
    const int q_len = std::uniform_int_distribution<int>(1, 40)(rng);
    prefill_rows[s] = {q_len + std::uniform_int_distribution<int>(0, 60)(rng), q_len};
  }
  decode_rows[299] = {1200, 1};
  expect_matches_reference(base_spec(DType::bf16, 128, 4, 16, decode_rows), Kernel::decode);
  expect_matches_reference(base_spec(DType::f16, 64, 8, 32, prefill_rows), Kernel::prefill);
}

TEST(CudaAttention, EmptyBatchWritesNothing) {
  SKIP_WITHOUT_GPU();
  expect_matches_reference(base_spec(DType::bf16, 128, 4, 16, {{0, 0}, {0, 0}, {0, 0}}), Kernel::decode);
  expect_matches_reference(base_spec(DType::bf16, 128, 4, 16, {{0, 0}, {0, 0}, {0, 0}}), Kernel::prefill);
}

// One decode step captured in a CUDA graph, replayed after the metadata on the device changed:
// rows come and go (query_start_len is recompacted) and lengths change, as in serving.
TEST(CudaAttention, GraphReplayWithChangingLiveRows) {
  SKIP_WITHOUT_GPU();
  constexpr int kCapacity = 24;
  constexpr int kMaxLen = 2000;
  std::vector<PagedRowSpec> rows(kCapacity, PagedRowSpec{kMaxLen, 1});
  PagedBatchSpec spec = base_spec(DType::bf16, 128, 4, 16, rows);
  spec.num_kv_heads = 8;
  spec.padding_tokens = 0;
  SCOPED_TRACE(testing::describe(spec));
  PagedBatch batch(spec);
  DeviceBatch device(batch);
  const PagedAttentionArgs args = device.args();
  const std::size_t bytes = decode_attention_cuda_workspace_bytes(args);
  Buffer workspace(bytes, Device::cuda);

  cudaStream_t stream = nullptr;
  testing::cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  testing::cuda_ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  decode_attention_cuda(args, workspace.data(), bytes, stream);
  testing::cuda_ok(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
  testing::cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");

  std::mt19937 rng(static_cast<unsigned>(spec.seed));
  // Live row counts per replay: all, a few (forces a split), none, most.
  for (int live : {kCapacity, 3, 0, 1, kCapacity - 7, kCapacity}) {
    std::vector<int> seq_lens(kCapacity, 0);
    std::vector<int> qsl(kCapacity + 1, 0);
    std::vector<int> order(kCapacity);
    for (int i = 0; i < kCapacity; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (int i = 0; i < live; ++i) seq_lens[order[i]] = std::uniform_int_distribution<int>(1, kMaxLen)(rng);
    for (int s = 0; s < kCapacity; ++s) qsl[s + 1] = qsl[s] + (seq_lens[s] > 0 ? 1 : 0);
    SCOPED_TRACE("live rows " + std::to_string(live));

    // Poison the output, rewrite the metadata, replay.
    const std::vector<std::uint8_t> poison = batch.make_output();
    testing::cuda_ok(cudaMemcpyAsync(args.out.data(), poison.data(), poison.size(), cudaMemcpyHostToDevice, stream), "poison");
    testing::cuda_ok(cudaMemcpyAsync(device.seq_lens(), seq_lens.data(), seq_lens.size() * 4, cudaMemcpyHostToDevice, stream), "seq_lens");
    testing::cuda_ok(cudaMemcpyAsync(device.query_start_len(), qsl.data(), qsl.size() * 4, cudaMemcpyHostToDevice, stream), "qsl");
    testing::cuda_ok(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    testing::cuda_ok(cudaStreamSynchronize(stream), "replay");
    const std::vector<std::uint8_t> actual = device.output();

    std::vector<std::uint8_t> expected = batch.make_output();
    PagedAttentionArgs host = batch.args(expected);
    host.seq_lens = TensorView(seq_lens.data(), DType::i32, {kCapacity});
    host.query_start_len = TensorView(qsl.data(), DType::i32, {kCapacity + 1});
    paged_attention_reference(host);

    // Live tokens [0, live) must match; tokens past them must keep their NaN poison.
    const std::int64_t row = batch.row_elements();
    const std::int64_t head_dim = spec.head_dim;
    double worst = 0.0;
    std::int64_t written_past_live = 0;
    for (std::int64_t token = 0; token < kCapacity; ++token) {
      for (std::int64_t h = 0; h < row / head_dim; ++h) {
        double diff2 = 0.0, ref2 = 0.0;
        bool all_nan = true;
        for (std::int64_t i = 0; i < head_dim; ++i) {
          const std::size_t index = static_cast<std::size_t>(token * row + h * head_dim + i);
          const double a = testing::load_float(actual.data(), spec.dtype, index);
          const double e = testing::load_float(expected.data(), spec.dtype, index);
          all_nan = all_nan && std::isnan(a);
          diff2 += (a - e) * (a - e);
          ref2 += e * e;
        }
        if (token >= live) {
          written_past_live += all_nan ? 0 : 1;
        } else {
          const double relative = std::sqrt(diff2) / std::sqrt(ref2);
          worst = std::isnan(relative) ? 1e30 : std::max(worst, relative);
        }
      }
    }
    EXPECT_LE(worst, tolerance(spec.dtype));
    EXPECT_EQ(written_past_live, 0);
  }
  testing::cuda_ok(cudaGraphExecDestroy(exec), "cudaGraphExecDestroy");
  testing::cuda_ok(cudaGraphDestroy(graph), "cudaGraphDestroy");
  testing::cuda_ok(cudaStreamDestroy(stream), "cudaStreamDestroy");
}

// Argument checks run before anything touches a device, so they also run on CI machines.
TEST(CudaAttention, RejectsHostViewsAndUnsupportedShapes) {
  PagedBatchSpec spec = base_spec(DType::bf16, 128, 4, 16, {{5, 1}});
  PagedBatch batch(spec);
  std::vector<std::uint8_t> out = batch.make_output();
  PagedAttentionArgs host = batch.args(out);
  EXPECT_THROW(prefill_attention_cuda(host, nullptr), SetupError);
  EXPECT_THROW(decode_attention_cuda_workspace_bytes(host), SetupError);
  PagedAttentionArgs windowed = host;
  windowed.sliding_window = 128;
  EXPECT_THROW(prefill_attention_cuda(windowed, nullptr), SetupError);
}

}  // namespace
}  // namespace pagedserve
