#!/usr/bin/env python3
"""External oracle: our CPU forward against Hugging Face transformers on the same checkpoint.

For each tiny model directory, two checks over a few prompts (token ids), each once with the prompt
prefilled whole and once in chunks (--chunk): our `dump_logits` (prefill, then 32 greedy decode
steps, f32 KV cache) against transformers in f32 over prompt + our greedy tokens.

  exact: an f32 copy of the checkpoint (transformers' save_pretrained of the model loaded in f32).
    With f32 weights our matmuls keep x in f32 (kernels/cpu/matmul.h), so the only rounding on
    either side is f32 arithmetic: logits at every position within --tolerance relative
    (max |ours - hf| / max |hf| per row) and each of our greedy tokens transformers' argmax.
  bf16: the checkpoint as written (bf16). Our matmuls round x to bf16 for bf16 weights, as
    transformers in bf16 does, so we cannot match f32 to 1e-3; the check is that we are no farther
    from transformers f32 than transformers' own bf16 forward is (its max relative difference on
    the same prompt, printed as the yardstick). Greedy agreement is printed, not gated (a near-tie
    flips under any bf16 rounding; transformers' top-2 margin is printed where ours differs).
Exit status 0 when every model, prompt and check passes.

  python3 tests/oracle/compare_with_transformers.py --dump build-oracle/tests/oracle/dump_logits \
      models/tiny-qwen3 models/tiny-llama
"""
import argparse
import itertools
import json
import os
import random
import shutil
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


def relative_difference(ours, reference):  # [rows, vocab] each -> worst row's max |diff| / max |ref|
    return float((np.abs(ours - reference).max(axis=1) / np.abs(reference).max(axis=1)).max())


def f32_copy(model, model_dir, out_dir):
    """Writes the f32 model and model_dir's tokenizer files to out_dir; returns out_dir."""
    model.save_pretrained(out_dir, safe_serialization=True)
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        if os.path.exists(os.path.join(model_dir, name)):
            shutil.copy(os.path.join(model_dir, name), out_dir)
    return out_dir


def load(model_dir, dtype):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="eager")
    model.eval()
    return model


def check_prompt(check, entry, our_logits, model, model_bf16, tolerance):
    """One prompt of one check: returns (passed, the words after 'max rel diff')."""
    prompt, greedy = entry["prompt"], entry["greedy"]
    ids = torch.tensor([prompt + greedy[:-1]], dtype=torch.long)
    with torch.no_grad():
        hf = model(ids).logits[0].float().numpy()
    assert hf.shape == our_logits.shape, (hf.shape, our_logits.shape)
    worst = relative_difference(our_logits, hf)
    hf_greedy = hf[len(prompt) - 1:].argmax(axis=1).tolist()
    mismatch = next((g for g in range(len(greedy)) if greedy[g] != hf_greedy[g]), None)
    detail = ""
    if mismatch is not None:
        top2 = np.sort(hf[len(prompt) - 1 + mismatch])[-2:]
        detail = f" greedy differs at step {mismatch} (hf margin {top2[1] - top2[0]:.2e})"
    if check == "exact":
        passed = worst <= tolerance and mismatch is None
    else:
        with torch.no_grad():
            yardstick = relative_difference(model_bf16(ids).logits[0].float().numpy(), hf)
        passed = worst <= yardstick
        detail = f" (transformers bf16: {yardstick:.2e})" + detail
    agreed = len(greedy) if mismatch is None else mismatch
    return passed, f"{worst:.2e}, greedy {agreed}/{len(greedy)} {'PASS' if passed else 'FAIL'}{detail}"


def compare_model(args, model_dir):
    config = AutoConfig.from_pretrained(model_dir)
    model = load(model_dir, torch.float32)
    model_bf16 = load(model_dir, torch.bfloat16) if args.checks == "both" else None
    prompts = make_prompts(config.vocab_size)
    name = os.path.basename(os.path.normpath(model_dir))
    ok = True
    with tempfile.TemporaryDirectory() as copy_dir:
        checks = [("exact", f32_copy(model, model_dir, copy_dir))]
        if model_bf16 is not None:
            checks.append(("bf16", model_dir))
        for (check, ours_dir), chunk in itertools.product(checks, [0, args.chunk]):
            with tempfile.TemporaryDirectory() as out_dir:
                ours = run_ours(args.dump, ours_dir, prompts, out_dir, chunk, args.greedy)
                for i, entry in enumerate(ours["prompts"]):
                    our_logits = np.fromfile(os.path.join(out_dir, entry["logits"]),
                                             dtype=np.float32).reshape(-1, ours["vocab"])
                    passed, result = check_prompt(check, entry, our_logits, model, model_bf16, args.tolerance)
                    print(f"{name} {check} prompt {i} (len {len(entry['prompt'])}, chunk {chunk or 'none'}): "
                          f"max rel diff {result}", flush=True)
                    ok = ok and passed
    return ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+", help="Hugging Face model directories")
    parser.add_argument("--dump", required=True, help="path of our dump_logits executable")
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--greedy", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=7, help="also run with the prompt prefilled in chunks of this")
    parser.add_argument("--checks", choices=["exact", "both"], default="both",
                        help="exact: the f32 copy only; both: also the bf16 checkpoint against the yardstick")
    args = parser.parse_args()
    torch.manual_seed(0)
    results = [compare_model(args, m) for m in args.models]
    print("ALL PASS" if all(results) else "SOME FAILED")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
