#!/usr/bin/env python3
"""The CUDA backend against Hugging Face transformers, against our CPU backend, and against itself
run through the engine (batched, chunked prefill, preempted).

Checkpoints: the tiny ones of tools/make-tiny-model given on the command line, plus checkpoints
that transformers itself writes here (save_pretrained, bf16, transformers 5's config.json with
rope_parameters) in several configurations: QKV bias (Qwen2), untied embeddings, head_dim
64/80/128, one KV head, llama3 RoPE scaling, q/k norm (Qwen3). Each gets the Qwen3 tokenizer
copied in (vocab 151936) so the engine can run it.

For every checkpoint and prompt (lengths 1..200, fixed seed):
  - first-token top-20 logprobs: |ours - reference| <= --logprob-tolerance on every id of the
    reference's top-20 that ours also lists, and at least 15 of the 20 ids shared;
  - 32 greedy tokens: identical on >= --greedy-agreement of the prompts; where they differ, the
    reference's top-2 margin at the first differing step is printed (a near-tie or a bug).
Pairs checked: transformers (f32 compute on the bf16 weights) vs cuda; cpu vs cuda; cuda single
vs cuda engine (all prompts at once, --max-num-batched-tokens 16, few KV pages -> preemption).
Exit status 0 when every check passes.

  python3 tests/oracle/compare_backends.py --runner build/tests/oracle/runner_tokens \
      --tokenizer-dir models/tiny-qwen3 --work /tmp/oracle models/tiny-qwen3 models/tiny-llama
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys

import torch
from transformers import AutoModelForCausalLM

VOCAB = 151936


def llama3_rope_config(cls, base):
    """Llama with llama3 RoPE scaling, in whichever form this transformers takes."""
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 256}
    shape = dict(num_attention_heads=4, num_key_value_heads=1, head_dim=128)
    try:  # transformers 5
        return cls(**base, **shape, rope_parameters={"rope_theta": 500000.0, **scaling})
    except (TypeError, ValueError, KeyError):
        return cls(**base, **shape, rope_theta=500000.0, rope_scaling=scaling)


def hf_configs():
    """(name, config class name, kwargs) of the checkpoints transformers writes for us."""
    from transformers import LlamaConfig, Qwen2Config, Qwen3Config
    base = dict(vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=3,
                max_position_embeddings=4096, rms_norm_eps=1e-5, bos_token_id=151643, eos_token_id=151645)
    return [
        ("hf-llama-untied-hd64", LlamaConfig(**base, num_attention_heads=4, num_key_value_heads=2,
                                             tie_word_embeddings=False)),
        ("hf-llama-hd80-1kv", LlamaConfig(**{**base, "hidden_size": 320}, num_attention_heads=4,
                                          num_key_value_heads=1, head_dim=80, tie_word_embeddings=True)),
        ("hf-llama3-rope-hd128", llama3_rope_config(LlamaConfig, base)),
        ("hf-qwen2-bias", Qwen2Config(**base, num_attention_heads=4, num_key_value_heads=2,
                                      tie_word_embeddings=True)),
        ("hf-qwen3-qknorm-hd128", Qwen3Config(**base, num_attention_heads=4, num_key_value_heads=2, head_dim=128,
                                              tie_word_embeddings=True)),
    ]


def write_hf_checkpoints(work, tokenizer_dir):
    from transformers import AutoModelForCausalLM as Auto
    dirs = []
    for i, (name, config) in enumerate(hf_configs()):
        out = os.path.join(work, name)
        torch.manual_seed(100 + i)
        model = Auto.from_config(config).float()
        # Larger weights than the 0.02 init: peakier logits, so greedy decoding is not a coin toss.
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.dim() == 2:
                    p.normal_(0.0, 0.08)
                elif "bias" in n:
                    p.normal_(0.0, 0.05)
        model.to(torch.bfloat16).save_pretrained(out)
        shutil.copy(os.path.join(tokenizer_dir, "tokenizer.json"), out)
        for extra in ["tokenizer_config.json"]:
            if os.path.exists(os.path.join(tokenizer_dir, extra)):
                shutil.copy(os.path.join(tokenizer_dir, extra), out)
        with open(os.path.join(out, "config.json")) as f:
            written = json.load(f)
        print(f"{name}: config.json keys rope_parameters={'rope_parameters' in written} "
              f"dtype={written.get('dtype', written.get('torch_dtype'))}")
        dirs.append(out)
    return dirs


def make_prompts(vocab, seed=11):
    rng = random.Random(seed)
    lengths = [1, 3, 8, 17, 33, 64, 100, 150, 200, 5]
    return [[rng.randrange(min(vocab, 150000)) for _ in range(n)] for n in lengths]


def run_ours(args, model_dir, prompts_path, out, backend, mode, extra=()):
    cmd = [args.runner, "--backend", backend, "--mode", mode, "--model", model_dir, "--prompts", prompts_path,
           "--out", out, "--greedy", str(args.greedy), "--logprobs", "20", *extra]
    subprocess.run(cmd, check=True)
    with open(out) as f:
        return json.load(f)["prompts"]


def hf_reference(model_dir, prompts, greedy, dtype=torch.float32):
    """transformers' greedy tokens, first-token top-20 and top-2 margins; f32 compute by default
    (the reference), bf16 as a yardstick of what bf16 arithmetic alone moves."""
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="eager")
    except TypeError:  # transformers 4
        model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=dtype, attn_implementation="eager")
    model = model.to(dtype).cuda()
    model.eval()
    results = []
    for prompt in prompts:
        ids = torch.tensor([prompt], dtype=torch.long, device="cuda")
        tokens, margins, first_top = [], [], None
        with torch.no_grad():
            for step in range(greedy):
                logits = model(ids).logits[0, -1].float()
                logprobs = torch.log_softmax(logits, dim=-1)
                top = torch.topk(logprobs, 20)
                if step == 0:
                    first_top = [[int(i), float(v)] for v, i in zip(top.values, top.indices)]
                margins.append(float(top.values[0] - top.values[1]))
                token = int(top.indices[0])
                tokens.append(token)
                ids = torch.cat([ids, torch.tensor([[token]], device="cuda")], dim=1)
        results.append({"tokens": tokens, "first_top": first_top, "margins": margins})
    return results


def compare(label, reference, ours, args):
    ok = True
    agree = 0
    for i, (ref, our) in enumerate(zip(reference, ours)):
        ref_top = {t[0]: t[1] for t in ref["first_top"]}
        our_top = {t[0]: t[1] for t in our["first_top"]}
        shared = [t for t in ref_top if t in our_top]
        worst = max((abs(ref_top[t] - our_top[t]) for t in shared), default=float("inf"))
        logprob_ok = worst <= args.logprob_tolerance and len(shared) >= 15
        differ = next((s for s in range(len(ref["tokens"])) if ref["tokens"][s] != our["tokens"][s]), None)
        if differ is None:
            agree += 1
        detail = ""
        if differ is not None:
            margins = ref.get("margins") or [None] * (differ + 1)
            margin = margins[differ]
            detail = f", greedy differs at step {differ}" + (f" (reference top-2 margin {margin:.2e})"
                                                             if margin is not None else "")
        print(f"  {label} prompt {i} (len {len(our['prompt'])}): top-20 max |diff| {worst:.2e} "
              f"({len(shared)}/20 shared){detail}{'' if logprob_ok else '  LOGPROBS FAIL'}")
        ok = ok and logprob_ok
    share = agree / max(len(ours), 1)
    greedy_ok = share >= args.greedy_agreement
    print(f"  {label}: greedy identical on {agree}/{len(ours)} prompts ({share:.0%}) "
          f"{'PASS' if ok and greedy_ok else 'FAIL'}")
    return ok and greedy_ok


def check_model(args, model_dir, prompts, prompts_path, name):
    ok = True
    cuda = run_ours(args, model_dir, prompts_path, os.path.join(args.work, name + "-cuda.json"), "cuda",
                    "single")
    cpu = run_ours(args, model_dir, prompts_path, os.path.join(args.work, name + "-cpu.json"), "cpu", "single")
    engine = run_ours(args, model_dir, prompts_path, os.path.join(args.work, name + "-engine.json"), "cuda",
                      "engine", ["--max-num-batched-tokens", "16", "--kv-pages", "40"])
    hf = hf_reference(model_dir, prompts, args.greedy)
    hf_bf16 = hf_reference(model_dir, prompts, args.greedy, torch.bfloat16)
    ok &= compare("transformers vs cuda", hf, cuda, args)
    compare("yardstick (not a check): transformers f32 vs transformers bf16", hf,
            [dict(h, prompt=p) for h, p in zip(hf_bf16, prompts)], args)
    ok &= compare("cpu vs cuda", [dict(c, margins=None) for c in cpu], cuda, args)
    ok &= compare("cuda single vs cuda engine", [dict(c, margins=None) for c in cuda], engine, args)
    return ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", help="tiny checkpoint directories (make-tiny-model)")
    parser.add_argument("--runner", required=True, help="path of runner_tokens")
    parser.add_argument("--tokenizer-dir", required=True, help="a directory with the Qwen3 tokenizer.json")
    parser.add_argument("--work", default="/tmp/pagedserve-oracle")
    parser.add_argument("--greedy", type=int, default=32)
    parser.add_argument("--logprob-tolerance", type=float, default=5e-2)
    parser.add_argument("--greedy-agreement", type=float, default=0.9)
    parser.add_argument("--skip-hf-written", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    models = list(args.models)
    if not args.skip_hf_written:
        models += write_hf_checkpoints(args.work, args.tokenizer_dir)
    all_ok = True
    for model_dir in models:
        name = os.path.basename(model_dir.rstrip("/"))
        with open(os.path.join(model_dir, "config.json")) as f:
            vocab = json.load(f)["vocab_size"]
        prompts = make_prompts(vocab)
        prompts_path = os.path.join(args.work, name + "-prompts.txt")
        with open(prompts_path, "w") as f:
            for p in prompts:
                f.write(" ".join(map(str, p)) + "\n")
        print(f"== {name}")
        try:
            all_ok &= check_model(args, model_dir, prompts, prompts_path, name)
        except Exception as error:  # one broken checkpoint must not hide the others' results
            print(f"  {name}: ERROR {error!r}")
            all_ok = False
    print("ALL PASS" if all_ok else "SOME FAILED")
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
