// A model-free engine loop for scheduler tests: schedule, build the ForwardBatch, "run" it against a
// simulated KV cache that records which (token, position) every slot holds, sample tokens from a
// deterministic function of the sequence, commit. Every step checks the plan and batch invariants
// and that attention would read exactly the sequence's own tokens through its block table.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "scheduler/batch_builder.h"
#include "scheduler/scheduler.h"

namespace pagedserve::testing {

// The fake model: the next token depends only on the sequence so far, never 0 (the test EOS).
inline std::int32_t fake_next_token(std::span<const std::int32_t> tokens, int vocab = 997) {
  const std::uint64_t mixed =
      static_cast<std::uint64_t>(tokens.back()) * 2654435761ULL + tokens.size() * 40503ULL;
  return 1 + static_cast<std::int32_t>(mixed % static_cast<std::uint64_t>(vocab - 1));
}

// The tokens a request must end with: prompt then max_tokens fake tokens (no EOS is ever drawn).
inline std::vector<std::int32_t> expected_sequence(std::vector<std::int32_t> tokens, int max_tokens) {
  for (int i = 0; i < max_tokens; ++i) tokens.push_back(fake_next_token(tokens));
  return tokens;
}

inline std::unique_ptr<Request> make_request(RequestId id, std::vector<std::int32_t> prompt, int max_tokens) {
  StopCriteria stop;
  stop.max_tokens = max_tokens;
  stop.eos_token_ids = {0};
  return std::make_unique<Request>(id, std::move(prompt), SamplingParams{}, std::move(stop));
}

inline std::vector<std::int32_t> token_range(int n, int first) {
  std::vector<std::int32_t> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back(first + i);
  return tokens;
}

// Checks the "position = index into the sequence = slot" invariant and the metadata layout of one
// AttentionBatch whose tokens start at first_token of `batch`.
inline void check_part(const ForwardBatch& batch, const AttentionBatch& part,
                       const std::vector<ScheduledChunk>& chunks, int first_token, int page_size) {
  ASSERT_EQ(part.num_rows, static_cast<int>(chunks.size()));
  ASSERT_EQ(part.query_start_len.size(), chunks.size() + 1);
  ASSERT_EQ(part.seq_lens.size(), chunks.size());
  ASSERT_EQ(part.block_table.size(), chunks.size() * static_cast<std::size_t>(part.max_pages_per_seq));
  EXPECT_EQ(part.query_start_len[0], 0);
  for (std::size_t row = 0; row < chunks.size(); ++row) {
    const ScheduledChunk& chunk = chunks[row];
    const int q_begin = part.query_start_len[row];
    const int q_len = part.query_start_len[row + 1] - q_begin;
    ASSERT_EQ(q_len, chunk.num_new_tokens);
    ASSERT_EQ(part.seq_lens[row], chunk.start_position + chunk.num_new_tokens);
    const std::int32_t* table_row = &part.block_table[row * static_cast<std::size_t>(part.max_pages_per_seq)];
    const int owned = (part.seq_lens[row] + page_size - 1) / page_size;
    for (int p = 0; p < part.max_pages_per_seq; ++p) {
      if (p < owned) {
        ASSERT_GE(table_row[p], 0);
      } else {
        ASSERT_EQ(table_row[p], -1);
      }
    }
    for (int i = 0; i < q_len; ++i) {
      const int t = first_token + q_begin + i;
      const int position = batch.positions[static_cast<std::size_t>(t)];
      ASSERT_EQ(position, part.seq_lens[row] - q_len + i);
      ASSERT_EQ(batch.token_ids[static_cast<std::size_t>(t)],
                chunk.request->token_ids()[static_cast<std::size_t>(position)]);
      ASSERT_EQ(batch.slot_mapping[static_cast<std::size_t>(t)],
                table_row[position / page_size] * page_size + position % page_size);
    }
  }
}

class FakeEngine {
 public:
  explicit FakeEngine(Scheduler& scheduler)
      : scheduler_(scheduler),
        page_size_(scheduler.config().page_size),
        kv_(static_cast<std::size_t>(scheduler.block_manager().num_blocks() * page_size_), {-1, -1}) {}

  // One engine step. Returns the plan (its Request pointers may be stale afterwards).
  StepPlan step() {
    StepPlan plan = scheduler_.schedule();
    check_plan(plan);
    const ForwardBatch batch = build_forward_batch(plan, 0);
    run_fake_model(plan, batch);
    std::vector<std::int32_t> sampled;
    for (const std::vector<ScheduledChunk>* chunks : {&plan.decodes, &plan.prefills}) {
      for (const ScheduledChunk& chunk : *chunks) {
        if (chunk.samples) sampled.push_back(fake_next_token(chunk.request->token_ids()));
      }
    }
    EXPECT_EQ(sampled.size(), batch.sample_token_indices.size());
    last_outcomes = scheduler_.commit(plan, sampled);
    for (std::unique_ptr<Request>& request : scheduler_.take_finished())
      finished.push_back(std::move(request));
    ++num_steps;
    return plan;
  }

  // Steps until nothing is left; fails past max_steps (a livelock).
  void run_to_completion(int max_steps) {
    while (scheduler_.has_unfinished() && num_steps < max_steps && !::testing::Test::HasFatalFailure())
      step();
    EXPECT_FALSE(scheduler_.has_unfinished()) << "still unfinished after " << num_steps << " steps";
  }

  std::vector<std::unique_ptr<Request>> finished;
  std::vector<SampleOutcome> last_outcomes;
  int num_steps = 0;

 private:
  void check_plan(const StepPlan& plan) {
    const SchedulerConfig& config = scheduler_.config();
    EXPECT_LE(plan.num_scheduled_tokens, config.max_num_batched_tokens);
    EXPECT_LE(plan.num_rows(), config.max_num_seqs);
    int total = 0;
    std::set<const Request*> seen;
    for (const ScheduledChunk& chunk : plan.decodes) {
      EXPECT_EQ(chunk.num_new_tokens, 1);
      EXPECT_EQ(chunk.start_position, chunk.request->num_tokens() - 1);
    }
    for (const std::vector<ScheduledChunk>* chunks : {&plan.decodes, &plan.prefills}) {
      for (const ScheduledChunk& chunk : *chunks) {
        EXPECT_TRUE(seen.insert(chunk.request).second) << "request scheduled twice";
        EXPECT_EQ(chunk.request->state(), RequestState::running);
        EXPECT_EQ(chunk.start_position, chunk.request->num_computed_tokens());
        EXPECT_GT(chunk.num_new_tokens, 0);
        EXPECT_EQ(chunk.samples, chunk.start_position + chunk.num_new_tokens == chunk.request->num_tokens());
        total += chunk.num_new_tokens;
      }
    }
    EXPECT_EQ(total, plan.num_scheduled_tokens);
  }

  void run_fake_model(const StepPlan& plan, const ForwardBatch& batch) {
    ASSERT_EQ(batch.num_tokens(), plan.num_scheduled_tokens);
    ASSERT_EQ(batch.positions.size(), batch.token_ids.size());
    ASSERT_EQ(batch.slot_mapping.size(), batch.token_ids.size());
    check_part(batch, batch.decode, plan.decodes, 0, page_size_);
    check_part(batch, batch.prefill, plan.prefills, batch.decode.num_tokens(), page_size_);
    if (::testing::Test::HasFatalFailure()) return;
    // Page copies first (as the runners do): from a page the step does not write.
    const BlockManager& blocks = scheduler_.block_manager();
    for (const PageCopy& copy : batch.page_copies) {
      ASSERT_GT(copy.num_slots, 0);
      ASSERT_LT(copy.num_slots, page_size_);
      ASSERT_EQ(blocks.allocator().ref_count(copy.target), 1) << "copy into shared page " << copy.target;
      ASSERT_GE(blocks.allocator().ref_count(copy.source), 1) << "copy from free page " << copy.source;
      for (int slot = 0; slot < copy.num_slots; ++slot) {
        kv_[static_cast<std::size_t>(copy.target * page_size_ + slot)] =
            kv_[static_cast<std::size_t>(copy.source * page_size_ + slot)];
      }
    }
    // Write K/V (as the model does), never into a cached or shared page.
    std::set<std::int32_t> written;
    for (int t = 0; t < batch.num_tokens(); ++t) {
      const std::int32_t slot = batch.slot_mapping[static_cast<std::size_t>(t)];
      const std::int32_t page = slot / page_size_;
      ASSERT_TRUE(written.insert(slot).second) << "slot " << slot << " written twice in one step";
      ASSERT_EQ(blocks.allocator().ref_count(page), 1) << "write into shared page " << page;
      if (blocks.prefix_cache() != nullptr) {
        ASSERT_FALSE(blocks.prefix_cache()->is_cached(page)) << "write into cached page " << page;
      }
      kv_[static_cast<std::size_t>(slot)] = {batch.token_ids[static_cast<std::size_t>(t)],
                                             batch.positions[static_cast<std::size_t>(t)]};
    }
    // Attention reads positions [0, seq_len) of every row through its block table.
    for (const auto& [part, chunks] :
         {std::pair{&batch.decode, &plan.decodes}, std::pair{&batch.prefill, &plan.prefills}}) {
      for (int row = 0; row < part->num_rows; ++row) {
        const Request& request = *(*chunks)[static_cast<std::size_t>(row)].request;
        for (int position = 0; position < part->seq_lens[static_cast<std::size_t>(row)]; ++position) {
          const std::int32_t page = part->block_table[static_cast<std::size_t>(row * part->max_pages_per_seq +
                                                                               position / page_size_)];
          const auto& held = kv_[static_cast<std::size_t>(page * page_size_ + position % page_size_)];
          ASSERT_EQ(held.first, request.token_ids()[static_cast<std::size_t>(position)])
              << "request " << request.id() << " position " << position;
          ASSERT_EQ(held.second, position) << "request " << request.id();
        }
      }
    }
    for (std::size_t i = 0; i < batch.sample_token_indices.size(); ++i) {
      const int t = batch.sample_token_indices[i];
      ASSERT_GE(t, 0);
      ASSERT_LT(t, batch.num_tokens());
    }
  }

  Scheduler& scheduler_;
  int page_size_;
  std::vector<std::pair<std::int32_t, std::int32_t>> kv_;  // [num_pages * page_size] (token, position)
};

// Aborts whatever is still live and checks every page came back.
inline void expect_pool_returns_to_full(Scheduler& scheduler) {
  std::vector<RequestId> live;
  for (int pass = 0; pass < 2; ++pass) {
    // Ids are small in the tests; abort every id that might be live.
    for (RequestId id = 0; id < 1000; ++id) {
      if (scheduler.find(id) != nullptr) scheduler.abort(id);
    }
    (void)scheduler.schedule();
    (void)scheduler.take_finished();
  }
  EXPECT_FALSE(scheduler.has_unfinished());
  EXPECT_EQ(scheduler.block_manager().num_free_blocks(), scheduler.block_manager().num_blocks());
  EXPECT_EQ(scheduler.stats().kv_usage, 0.0);
}

}  // namespace pagedserve::testing
