#!/usr/bin/env python3
"""External oracle: our CPU forward against Hugging Face transformers on the same checkpoint.

For each tiny model directory: writes a few prompts (token ids), runs our `dump_logits` (prefill,
optionally chunked, then 32 greedy decode steps, f32 KV cache), runs transformers in f32 over
prompt + our greedy tokens, and checks
  - logits at every position within --tolerance relative (max |ours - hf| / max |hf| per row),
  - each of our 32 greedy tokens is transformers' argmax at that position.
Exit status 0 when every model and prompt passes.

  python3 tests/oracle/compare_with_transformers.py --dump build-oracle/tests/oracle/dump_logits \
      models/tiny-qwen3 models/tiny-llama
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM


def make_prompts(vocab, seed=7):
    rng = random.Random(seed)
    lengths = [1, 5, 17, 40, 100]
    return [[rng.randrange(vocab) for _ in range(n)] for n in lengths]


def run_ours(dump, model_dir, prompts, out_dir, chunk, greedy):
    prompts_path = os.path.join(out_dir, "prompts.txt")
    with open(prompts_path, "w") as f:
        for p in prompts:
            f.write(" ".join(map(str, p)) + "\n")
    cmd = [dump, "--model", model_dir, "--prompts", prompts_path, "--out", out_dir, "--greedy", str(greedy)]
    if chunk:
        cmd += ["--chunk", str(chunk)]
    subprocess.run(cmd, check=True)
    with open(os.path.join(out_dir, "ours.json")) as f:
        return json.load(f)


def compare_model(args, model_dir):
    config = AutoConfig.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    prompts = make_prompts(config.vocab_size)
    ok = True
    for chunk in [0, args.chunk]:
        with tempfile.TemporaryDirectory() as out_dir:
            ours = run_ours(args.dump, model_dir, prompts, out_dir, chunk, args.greedy)
            vocab = ours["vocab"]
            for i, entry in enumerate(ours["prompts"]):
                prompt, greedy = entry["prompt"], entry["greedy"]
                our_logits = np.fromfile(os.path.join(out_dir, entry["logits"]), dtype=np.float32).reshape(-1, vocab)
                ids = torch.tensor([prompt + greedy[:-1]], dtype=torch.long)
                with torch.no_grad():
                    hf = model(ids).logits[0].float().numpy()
                assert hf.shape == our_logits.shape, (hf.shape, our_logits.shape)
                rel = np.abs(our_logits - hf).max(axis=1) / np.abs(hf).max(axis=1)
                worst = float(rel.max())
                hf_greedy = hf[len(prompt) - 1:].argmax(axis=1).tolist()
                mismatch = next((g for g in range(len(greedy)) if greedy[g] != hf_greedy[g]), None)
                passed = worst <= args.tolerance and mismatch is None
                detail = ""
                if mismatch is not None:
                    row = hf[len(prompt) - 1 + mismatch]
                    top2 = np.sort(row)[-2:]
                    detail = f" greedy differs at step {mismatch} (hf margin {top2[1] - top2[0]:.2e})"
                print(f"{os.path.basename(model_dir)} prompt {i} (len {len(prompt)}, chunk {chunk or 'none'}): "
                      f"max rel diff {worst:.2e}, greedy {len(greedy) if mismatch is None else mismatch}/{len(greedy)} "
                      f"{'PASS' if passed else 'FAIL'}{detail}")
                ok = ok and passed
    return ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+", help="Hugging Face model directories")
    parser.add_argument("--dump", required=True, help="path of our dump_logits executable")
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--greedy", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=7, help="also run with the prompt prefilled in chunks of this")
    args = parser.parse_args()
    torch.manual_seed(0)
    results = [compare_model(args, m) for m in args.models]
    print("ALL PASS" if all(results) else "SOME FAILED")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
