#!/usr/bin/env python3
"""The CUDA backend against Hugging Face transformers, against our CPU backend, and against itself
run through the engine (batched, chunked prefill, preempted).

Checkpoints: the tiny ones of tools/make-tiny-model given on the command line, plus checkpoints
that transformers itself writes here (save_pretrained, bf16, transformers 5's config.json with
rope_parameters) in several configurations: QKV bias (Qwen2), untied embeddings, head_dim
64/80/128, one KV head, llama3 RoPE scaling, q/k norm (Qwen3). Each gets the Qwen3 tokenizer
copied in (vocab 151936) so the engine can run it.

Random weights give near-flat next-token distributions (top-2 margins of 1e-3..1e-2 nats), where
one bf16 rounding flips a greedy path, so by default every checkpoint is first trained for
--train-steps on GPU (f32, AdamW) on a synthetic task that needs attention: in a sequence over a
256-token sub-vocabulary, token t+1 = chain[token t-1] for a fixed random permutation `chain`.
Trained, the model is confident where the task decides the next token, as a real checkpoint is
on real text; the prompts are drawn from the same task. --train-steps 0 keeps the random
weights (the run recorded before training existed).

For every checkpoint and prompt (lengths 2..200, fixed seed):
  - first-token top-20 logprobs: |ours - reference| <= --logprob-tolerance on every id of the
    reference's top-20 that ours also lists, and at least 15 of the 20 ids shared;
  - 32 greedy tokens: identical on >= --greedy-agreement of the prompts; where they differ, the
    reference's top-2 margin at the first differing step is printed (a near-tie or a bug).
Yardsticks printed beside them (not checks): transformers in bf16, and transformers f32 with bf16
rounding only where ours has it (q/k/v at the attention alone: a bf16 KV cache; then also every
linear layer's input and the gate/up outputs: the CUDA backend's rounding points).
Pairs checked: transformers (f32 compute on the bf16 weights) vs cuda; cpu vs cuda; cuda single
vs cuda engine (all prompts at once, --max-num-batched-tokens 16, few KV pages -> preemption);
cuda single with --enforce-eager vs with decode graphs.
Exit status 0 when every check passes.

  python3 tests/oracle/compare_backends.py --runner build/tests/oracle/runner_tokens \
      --tokenizer-dir models/tiny-qwen3 --work /tmp/oracle models/tiny-qwen3 models/tiny-llama
"""
import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys

import torch
from transformers import AutoModelForCausalLM

VOCAB = 151936
CHAIN_TOKENS = 256  # the task's sub-vocabulary


def task_chain(vocab, seed=5):
    """(tokens [CHAIN_TOKENS], successor [vocab]): the task's sub-vocabulary and, for each of its
    tokens, the token that follows one position later (-1 outside the sub-vocabulary)."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randperm(min(vocab, 150000), generator=generator)[:CHAIN_TOKENS]
    successor = torch.full((vocab,), -1, dtype=torch.long)
    successor[tokens] = tokens[torch.randperm(CHAIN_TOKENS, generator=generator)]
    return tokens, successor


def task_sequences(vocab, count, length, generator):
    """[count, length] sequences of the task: two random tokens, then x[t+1] = successor[x[t-1]]."""
    tokens, successor = task_chain(vocab)
    seqs = torch.empty((count, length), dtype=torch.long)
    seqs[:, :2] = tokens[torch.randint(CHAIN_TOKENS, (count, 2), generator=generator)]
    for t in range(1, length - 1):
        seqs[:, t + 1] = successor[seqs[:, t - 1]]
    return seqs


def train_on_task(model, vocab, steps, seed):
    """Trains `model` (f32, on the GPU) on the task; prints the loss and the accuracy on the
    positions the task decides."""
    if steps <= 0:
        return
    generator = torch.Generator().manual_seed(seed)
    model.cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    for step in range(steps):
        seqs = task_sequences(vocab, 8, 256, generator).cuda()  # longer than prompt + greedy tokens
        logits = model(seqs[:, :-1]).logits[:, 1:]  # position t >= 1 predicts x[t+1]
        targets = seqs[:, 2:]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step == steps - 1 or step % max(steps // 4, 1) == 0:
            accuracy = (logits.argmax(-1) == targets).float().mean().item()
            print(f"    train step {step}: loss {loss.item():.4f}, accuracy {accuracy:.3f}", flush=True)
    model.eval()


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


def save_checkpoint(model, out, tokenizer_dir):
    model.to(torch.bfloat16).save_pretrained(out)
    for extra in ["tokenizer.json", "tokenizer_config.json"]:
        if os.path.exists(os.path.join(tokenizer_dir, extra)):
            shutil.copy(os.path.join(tokenizer_dir, extra), out)


def train_tiny_checkpoints(work, model_dirs, steps):
    """The tiny checkpoints (make-tiny-model), trained on the task and saved bf16 under `work`."""
    if steps <= 0:
        return list(model_dirs)
    dirs = []
    for i, model_dir in enumerate(model_dirs):
        name = os.path.basename(model_dir.rstrip("/")) + "-trained"
        print(f"{name}: training {steps} steps", flush=True)
        torch.manual_seed(200 + i)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        train_on_task(model, model.config.vocab_size, steps, seed=300 + i)
        out = os.path.join(work, name)
        save_checkpoint(model, out, model_dir)
        dirs.append(out)
    return dirs


def write_hf_checkpoints(work, tokenizer_dir, steps):
    from transformers import AutoModelForCausalLM as Auto
    dirs = []
    for i, (name, config) in enumerate(hf_configs()):
        out = os.path.join(work, name)
        torch.manual_seed(100 + i)
        model = Auto.from_config(config).float()
        if steps > 0:
            print(f"{name}: training {steps} steps", flush=True)
            train_on_task(model, VOCAB, steps, seed=400 + i)
        else:
            # Larger weights than the 0.02 init: peakier logits, so greedy decoding is less of a
            # coin toss.
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if p.dim() == 2:
                        p.normal_(0.0, 0.08)
                    elif "bias" in n:
                        p.normal_(0.0, 0.05)
        save_checkpoint(model, out, tokenizer_dir)
        with open(os.path.join(out, "config.json")) as f:
            written = json.load(f)
        print(f"{name}: config.json keys rope_parameters={'rope_parameters' in written} "
              f"dtype={written.get('dtype', written.get('torch_dtype'))}")
        dirs.append(out)
    return dirs


def make_prompts(vocab, trained, seed=11):
    lengths = [2, 3, 8, 17, 33, 64, 100, 150, 200, 5]
    if trained:  # prompts of the task the checkpoints learned
        generator = torch.Generator().manual_seed(seed)
        return [task_sequences(vocab, 1, n, generator)[0].tolist() for n in lengths]
    rng = random.Random(seed)
    return [[rng.randrange(min(vocab, 150000)) for _ in range(n)] for n in lengths]


def run_ours(args, model_dir, prompts_path, out, backend, mode, extra=()):
    cmd = [args.runner, "--backend", backend, "--mode", mode, "--model", model_dir, "--prompts", prompts_path,
           "--out", out, "--greedy", str(args.greedy), "--logprobs", "20", *extra]
    subprocess.run(cmd, check=True)
    with open(out) as f:
        return json.load(f)["prompts"]


@contextlib.contextmanager
def bf16_rounding(model, where):
    """Rounds, inside the f32 model, the tensors the CUDA backend keeps in bf16: where is
    "attention" (q, k, v at the attention's input: a bf16 KV cache alone) or "ours" (that, the
    input of every linear layer as our bf16 GEMMs take it, and the gate/up GEMM outputs; the
    residual, norms, q/k/v, o_proj/down and lm_head outputs stay f32 as in model/cuda)."""
    def to_bf16(t):
        return t.to(torch.bfloat16).to(t.dtype)

    modeling = sys.modules[type(model.model.layers[0].self_attn).__module__]
    eager = modeling.eager_attention_forward
    calls = [0]

    def rounded_attention(module, query, key, value, *args, **kwargs):
        calls[0] += 1
        return eager(module, to_bf16(query), to_bf16(key), to_bf16(value), *args, **kwargs)

    if where not in ("attention", "ours"):
        raise ValueError(f"bf16_rounding: where is 'attention' or 'ours', not {where!r}")
    hooks = []
    try:
        modeling.eager_attention_forward = rounded_attention
        if where == "ours":
            for name, m in model.named_modules():
                if isinstance(m, torch.nn.Linear):
                    hooks.append(m.register_forward_pre_hook(lambda _, inputs: (to_bf16(inputs[0]), *inputs[1:])))
                if name.endswith(("gate_proj", "up_proj")):
                    hooks.append(m.register_forward_hook(lambda _, inputs, output: to_bf16(output)))
        yield
    finally:
        modeling.eager_attention_forward = eager
        for hook in hooks:
            hook.remove()
    if calls[0] == 0:
        raise RuntimeError(f"{modeling.__name__}: the patched eager attention was never called")


def load_hf(model_dir, dtype):
    """The checkpoint in transformers on the GPU, computing in `dtype`, eager attention."""
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="eager")
    except TypeError:  # transformers 4
        model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=dtype, attn_implementation="eager")
    model = model.to(dtype).cuda()
    model.eval()
    return model


def hf_reference(model, prompts, greedy, rounding=None):
    """transformers' greedy tokens, first-token top-20 and top-2 margins: in f32 the reference, in
    bf16 a yardstick of what bf16 arithmetic alone moves; rounding (f32 only): bf16_rounding's
    points of ours rounded inside the f32 forward."""
    rounded = bf16_rounding(model, rounding) if rounding else contextlib.nullcontext()
    with rounded:
        return [hf_greedy(model, prompt, greedy) for prompt in prompts]


def hf_greedy(model, prompt, greedy):
    """One prompt: greedy tokens (the whole sequence recomputed each step), first-token top-20,
    top-2 margins."""
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
    return {"tokens": tokens, "first_top": first_top, "margins": margins}


def compare(label, reference, ours, args, gate_logprobs=True):
    """gate_logprobs False: greedy tokens decide, logprob differences are printed only (two runs of
    our own whose GEMMs may take other kernels for other row counts)."""
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
        ok = ok and (logprob_ok or not gate_logprobs)
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
    eager = run_ours(args, model_dir, prompts_path, os.path.join(args.work, name + "-eager.json"), "cuda",
                     "single", ["--enforce-eager", "true"])
    hf_f32 = load_hf(model_dir, torch.float32)
    hf = hf_reference(hf_f32, prompts, args.greedy)
    hf_bf16 = hf_reference(load_hf(model_dir, torch.bfloat16), prompts, args.greedy)
    ok &= compare("transformers vs cuda", hf, cuda, args)
    compare("yardstick (not a check): transformers f32 vs transformers bf16", hf,
            [dict(h, prompt=p) for h, p in zip(hf_bf16, prompts)], args)
    for rounding, what in (("attention", "q/k/v rounded to bf16 at the attention (a bf16 KV cache alone)"),
                           ("ours", "rounded to bf16 where ours rounds (attention + every linear input)")):
        try:
            rounded = hf_reference(hf_f32, prompts, args.greedy, rounding=rounding)
        except Exception as error:  # a yardstick only: the checks below still run
            print(f"  yardstick {rounding}: ERROR {error!r}")
            continue
        compare(f"yardstick (not a check): transformers f32 vs f32 with {what}", hf,
                [dict(h, prompt=p) for h, p in zip(rounded, prompts)], args)
    ok &= compare("cpu vs cuda", [dict(c, margins=None) for c in cpu], cuda, args)
    ok &= compare("cuda single vs cuda engine (greedy decides)", [dict(c, margins=None) for c in cuda], engine,
                  args, gate_logprobs=False)
    ok &= compare("cuda eager vs cuda decode graphs (single)", [dict(c, margins=None) for c in eager], cuda, args)
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
    parser.add_argument("--train-steps", type=int, default=800,
                        help="train each checkpoint on the synthetic task first (0: random weights)")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    models = train_tiny_checkpoints(args.work, args.models, args.train_steps)
    if not args.skip_hf_written:
        models += write_hf_checkpoints(args.work, args.tokenizer_dir, args.train_steps)
    all_ok = True
    for model_dir in models:
        name = os.path.basename(model_dir.rstrip("/"))
        with open(os.path.join(model_dir, "config.json")) as f:
            vocab = json.load(f)["vocab_size"]
        prompts = make_prompts(vocab, args.train_steps > 0)
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
