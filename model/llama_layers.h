// The Llama-family forward (Llama, Qwen2, Qwen3, Mistral) as one sequence of steps, written once
// for every backend. A backend supplies `Step`, an object for one forward that holds the batch,
// the cache and where its buffers live, and implements each step with its own kernels:
//
//   embed()                      token ids -> residual stream
//   per layer:
//     attention_norm(l)          the previous layer's MLP output joins the residual (l > 0),
//                                then RMSNorm -> normed
//     qkv_projection(l)          normed -> q, k, v (+ bias: Qwen2)
//     position_and_cache(l)      q/k RMSNorm per head (Qwen3), RoPE at each token's position,
//                                this step's K/V into the paged cache through slot_mapping
//     attention(l)               the decode kernel over the decode rows, the prefill kernel over
//                                the prefill rows, both against the one shared cache
//     output_projection(l)       attention output -> o_proj -> delta
//     mlp_norm(l)                delta joins the residual, then RMSNorm -> normed
//     gate_up_projection(l)      normed -> gate, up
//     activation()               silu(gate) * up
//     down_projection(l)         -> delta
//   final_norm_and_logits()      the last delta joins the residual; only the rows that sample go
//                                through the final RMSNorm and lm_head
//
// The math of each step (dtypes, where rounding happens) is the backend's; tests hold both
// backends to the same outputs (tests/oracle).
#pragma once

namespace pagedserve {

template <typename Step>
void run_llama_layers(Step& step, int num_layers) {
  step.embed();
  for (int layer = 0; layer < num_layers; ++layer) {
    step.attention_norm(layer);
    step.qkv_projection(layer);
    step.position_and_cache(layer);
    step.attention(layer);
    step.output_projection(layer);
    step.mlp_norm(layer);
    step.gate_up_projection(layer);
    step.activation();
    step.down_projection(layer);
  }
  step.final_norm_and_logits();
}

}  // namespace pagedserve
