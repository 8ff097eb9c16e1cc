#include "model/cpu_model_runner.h"

#include <stdexcept>
#include <string>

namespace pagedserve {

CpuModelRunner::CpuModelRunner(LlamaModel& model, KVCache& cache, int max_num_seqs)
    : model_(model),
      cache_(cache),
      max_num_seqs_(max_num_seqs),
      logits_(static_cast<std::size_t>(max_num_seqs) * static_cast<std::size_t>(model.config().vocab_size) *
                  sizeof(float),
              Device::cpu) {}

std::vector<SampledToken> CpuModelRunner::execute(const ForwardBatch& batch,
                                                  std::span<const SampleRow> rows) {
  const auto num_samples = static_cast<std::int64_t>(batch.sample_token_indices.size());
  if (static_cast<std::int64_t>(rows.size()) != num_samples || num_samples > max_num_seqs_) {
    throw std::invalid_argument("CpuModelRunner::execute: " + std::to_string(rows.size()) +
                                " sampling rows for " + std::to_string(num_samples) +
                                " sampled tokens (at most " + std::to_string(max_num_seqs_) + ")");
  }
  const std::int64_t vocab = model_.config().vocab_size;
  const TensorView logits = logits_.view(DType::f32, {num_samples, vocab});  // [num_samples, vocab]
  model_.forward(batch, cache_, logits);

  std::vector<SampledToken> sampled;
  sampled.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const SampleRow& row = rows[i];
    auto it = samplers_.find(row.sequence_id);
    if (it == samplers_.end()) it = samplers_.emplace(row.sequence_id, Sampler(*row.params)).first;
    const float* logits_row = logits.data_as<float>() + static_cast<std::int64_t>(i) * vocab;
    sampled.push_back(it->second.sample(std::span<const float>(logits_row, static_cast<std::size_t>(vocab)),
                                        row.prompt_ids, row.output_ids));
  }
  return sampled;
}

}  // namespace pagedserve
