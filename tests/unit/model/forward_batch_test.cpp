#include "model/forward_batch.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace pagedserve {
namespace {

// Two decode rows: sequence A (17 tokens, pages 4 and 9), sequence B (3 tokens, page 2).
ForwardBatch two_row_decode() {
  ForwardBatch batch;
  batch.token_ids = {11, 12};
  batch.positions = {16, 2};
  batch.slot_mapping = {9 * 16 + 0, 2 * 16 + 2};
  batch.decode.num_rows = 2;
  batch.decode.max_pages_per_seq = 2;
  batch.decode.query_start_len = {0, 1, 2};
  batch.decode.seq_lens = {17, 3};
  batch.decode.block_table = {4, 9, 2, -1};
  batch.prefill.query_start_len = {0};
  batch.sample_token_indices = {0, 1};
  return batch;
}

TEST(PlainDecode, AcceptsDecodeRowsSampledInOrder) { EXPECT_TRUE(is_plain_decode(two_row_decode())); }

TEST(PlainDecode, RefusesPrefillOutOfOrderSamplesAndEmptySteps) {
  ForwardBatch reordered = two_row_decode();
  reordered.sample_token_indices = {1, 0};
  EXPECT_FALSE(is_plain_decode(reordered));
  ForwardBatch unsampled = two_row_decode();
  unsampled.sample_token_indices = {0};
  EXPECT_FALSE(is_plain_decode(unsampled));
  ForwardBatch with_prefill = two_row_decode();
  with_prefill.token_ids.push_back(5);
  with_prefill.positions.push_back(0);
  with_prefill.slot_mapping.push_back(3 * 16);
  with_prefill.prefill.num_rows = 1;
  with_prefill.prefill.max_pages_per_seq = 1;
  with_prefill.prefill.query_start_len = {0, 1};
  with_prefill.prefill.seq_lens = {1};
  with_prefill.prefill.block_table = {3};
  EXPECT_FALSE(is_plain_decode(with_prefill));
  EXPECT_FALSE(is_plain_decode(ForwardBatch{}));
}

TEST(PaddedDecodeBatch, KeepsLiveRowsAndAddsInactiveOnes) {
  const ForwardBatch padded = padded_decode_batch(two_row_decode(), 4, 3);
  EXPECT_EQ(padded.token_ids, (std::vector<std::int32_t>{11, 12, 0, 0}));
  EXPECT_EQ(padded.positions, (std::vector<std::int32_t>{16, 2, 0, 0}));
  EXPECT_EQ(padded.slot_mapping, (std::vector<std::int32_t>{144, 34, -1, -1}));
  EXPECT_EQ(padded.sample_token_indices, (std::vector<std::int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(padded.decode.num_rows, 4);
  EXPECT_EQ(padded.decode.max_pages_per_seq, 3);
  EXPECT_EQ(padded.decode.query_start_len, (std::vector<std::int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(padded.decode.seq_lens, (std::vector<std::int32_t>{17, 3, 0, 0}));
  EXPECT_EQ(padded.decode.block_table,
            (std::vector<std::int32_t>{4, 9, -1, 2, -1, -1, -1, -1, -1, -1, -1, -1}));
  EXPECT_EQ(padded.prefill.num_rows, 0);
  EXPECT_EQ(padded.prefill.num_tokens(), 0);
  EXPECT_TRUE(is_plain_decode(padded));
  EXPECT_NO_THROW(check_forward_batch(padded, 100, 4, "test"));
}

TEST(PaddedDecodeBatch, LayoutDependsOnRowsAndWidthOnly) {
  // An empty step (what a graph is captured with) and a live one pack to the same sizes.
  const ForwardBatch empty = padded_decode_batch(ForwardBatch{}, 4, 3);
  const ForwardBatch live = padded_decode_batch(two_row_decode(), 4, 3);
  EXPECT_EQ(empty.token_ids.size(), live.token_ids.size());
  EXPECT_EQ(empty.decode.block_table.size(), live.decode.block_table.size());
  EXPECT_EQ(empty.decode.query_start_len, live.decode.query_start_len);
  EXPECT_EQ(empty.prefill.query_start_len, live.prefill.query_start_len);
  EXPECT_EQ(empty.decode.seq_lens, (std::vector<std::int32_t>{0, 0, 0, 0}));
}

TEST(PaddedDecodeBatch, RefusesWhatDoesNotFit) {
  EXPECT_THROW(padded_decode_batch(two_row_decode(), 1, 3), std::invalid_argument);
  EXPECT_THROW(padded_decode_batch(two_row_decode(), 4, 1), std::invalid_argument);
  ForwardBatch reordered = two_row_decode();
  reordered.sample_token_indices = {1, 0};
  EXPECT_THROW(padded_decode_batch(reordered, 4, 3), std::invalid_argument);
}

}  // namespace
}  // namespace pagedserve
