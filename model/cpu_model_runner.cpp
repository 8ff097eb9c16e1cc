#include "model/cpu_model_runner.h"

#include <stdexcept>
#include <string>

namespace pagedserve {

CpuModelRunner::CpuModelRunner(LlamaModel& model, KVCache& cache, int max_num_seqs)
    : model_(model),
      cache_(cache),
      max_num_seqs_(max_num_seqs),
      logits_(2 * static_cast<std::size_t>(max_num_seqs) *
                  static_cast<std::size_t>(model.config().vocab_size) * sizeof(float),
              Device::cpu) {}

StepOutput CpuModelRunner::run(const ForwardBatch& batch, std::span<const SampleRow> rows) {
  const auto num_samples = static_cast<std::int64_t>(batch.sample_token_indices.size());
  const auto num_scored = static_cast<std::int64_t>(batch.scored_positions.size());
  if (static_cast<std::int64_t>(rows.size()) != num_samples || num_samples > max_num_seqs_ ||
      num_scored > max_num_seqs_) {
    throw std::invalid_argument("CpuModelRunner::run: " + std::to_string(rows.size()) +
                                " sampling rows for " + std::to_string(num_samples) + " sampled tokens, " +
                                std::to_string(num_scored) + " scored positions (at most " +
                                std::to_string(max_num_seqs_) + " each)");
  }
  const std::int64_t vocab = model_.config().vocab_size;
  // [num_samples + num_scored, vocab]
  const TensorView logits = logits_.view(DType::f32, {num_samples + num_scored, vocab});
  model_.forward(batch, cache_, logits);
  const auto row_logits = [&](std::int64_t row) {
    return std::span<const float>(logits.data_as<float>() + row * vocab, static_cast<std::size_t>(vocab));
  };

  StepOutput output;
  output.sampled.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const SampleRow& row = rows[i];
    auto it = samplers_.find(row.sequence_id);
    if (it == samplers_.end()) it = samplers_.emplace(row.sequence_id, Sampler(*row.params)).first;
    output.sampled.push_back(
        it->second.sample(row_logits(static_cast<std::int64_t>(i)), row.prompt_ids, row.output_ids));
  }
  output.scored.reserve(batch.scored_positions.size());
  for (std::int64_t i = 0; i < num_scored; ++i) {
    const ScoredPosition& scored = batch.scored_positions[static_cast<std::size_t>(i)];
    output.scored.push_back(score_token(row_logits(num_samples + i), scored.next_token, scored.num_logprobs));
  }
  return output;
}

}  // namespace pagedserve
