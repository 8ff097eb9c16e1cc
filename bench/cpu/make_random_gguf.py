#!/usr/bin/env python3
"""Writes a GGUF (v3) model with random weights in the shape of a Hugging Face Qwen2 config.json,
for timing llama.cpp beside pagedserve (bench/cpu/side_by_side.sh). Only speed matters: weights
are uniform +-0.02 (biases too), RMSNorm weights 1, so nothing overflows or goes denormal.

  make_random_gguf.py --config configs/models/qwen2.5-0.5b/config.json --dtype bf16|f16
                      --vocab ggml-vocab-qwen2.gguf --out model.gguf [--seed N]

--vocab is a vocabulary-only GGUF (llama.cpp's models/ggml-vocab-qwen2.gguf); its tokenizer.* KV
entries are copied, the token list padded with [PADi] (type UNUSED) up to the config's vocab_size
as llama.cpp's convert_hf_to_gguf.py does for Qwen2. Tensors as convert_hf_to_gguf.py names them;
2-D ones in --dtype, 1-D ones (norms, biases) f32; tied embeddings give no output.weight.
Standard library only (no numpy). Deterministic: the same arguments give the same bytes.
"""
import argparse
import json
import os
import random
import struct
import sys

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32

# gguf_type
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, \
    T_UINT64, T_INT64, T_FLOAT64 = range(13)
SCALAR_FORMATS = {T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h", T_UINT32: "<I",
                  T_INT32: "<i", T_FLOAT32: "<f", T_BOOL: "<?", T_UINT64: "<Q", T_INT64: "<q",
                  T_FLOAT64: "<d"}
# ggml_type and llama_ftype
GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30
FTYPE = {"f16": 1, "bf16": 32}  # LLAMA_FTYPE_MOSTLY_F16, LLAMA_FTYPE_MOSTLY_BF16
TOKEN_TYPE_UNUSED = 5


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value[0]

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n]
        self.pos += n
        return s.decode("utf-8")

    def value(self, vtype):
        if vtype == T_STRING:
            return self.string()
        if vtype == T_ARRAY:
            etype, n = self.take("<I"), self.take("<Q")
            return (etype, [self.value(etype) for _ in range(n)])
        return self.take(SCALAR_FORMATS[vtype])


def read_kv(path):
    """The KV entries of a GGUF file: [(key, type, value)], an array's value being (etype, list)."""
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    if data[:4] != GGUF_MAGIC:
        sys.exit(f"make_random_gguf: {path} is not a GGUF file")
    r.pos = 4
    version, _tensors, n_kv = r.take("<I"), r.take("<Q"), r.take("<Q")
    if version not in (2, 3):
        sys.exit(f"make_random_gguf: {path}: GGUF version {version} not supported")
    entries = []
    for _ in range(n_kv):
        key = r.string()
        vtype = r.take("<I")
        entries.append((key, vtype, r.value(vtype)))
    return entries


def pack_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def pack_value(vtype, value):
    if vtype == T_STRING:
        return pack_string(value)
    if vtype == T_ARRAY:
        etype, items = value
        out = [struct.pack("<IQ", etype, len(items))]
        if etype == T_STRING:
            out.extend(pack_string(s) for s in items)
        elif etype == T_ARRAY:
            out.extend(pack_value(T_ARRAY, item) for item in items)
        else:
            out.append(struct.pack("<%d%s" % (len(items), SCALAR_FORMATS[etype][1]), *items))
        return b"".join(out)
    return struct.pack(SCALAR_FORMATS[vtype], value)


def pad_to(n, alignment=ALIGNMENT):
    return (n + alignment - 1) // alignment * alignment


class RandomPool:
    """A few MiB of random values in the target dtype; tensors tile it from seeded offsets."""

    def __init__(self, dtype, rng, count=1 << 21):
        values = [rng.uniform(-0.02, 0.02) for _ in range(count)]
        if dtype == "f16":
            raw = struct.pack("<%de" % count, *values)
        else:  # bf16: the upper half of each f32 (truncation is fine for random data)
            f32 = struct.pack("<%df" % count, *values)
            raw = bytearray(2 * count)
            raw[0::2] = f32[2::4]
            raw[1::2] = f32[3::4]
            raw = bytes(raw)
        self.raw, self.element = raw + raw, 2  # doubled so any offset has `count` values after it
        self.count, self.rng = count, rng

    def write(self, f, numel):
        while numel > 0:
            n = min(numel, self.count)
            start = self.rng.randrange(self.count) * self.element
            f.write(self.raw[start:start + n * self.element])
            numel -= n


def tensor_list(cfg):
    """(name, dims as GGML ne: innermost first, kind) in convert_hf_to_gguf.py's names."""
    hidden, inter, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    heads, kv_heads, vocab = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"]
    head_dim = cfg.get("head_dim", hidden // heads)
    q, kv = heads * head_dim, kv_heads * head_dim
    out = [("token_embd.weight", [hidden, vocab], "w")]
    for i in range(layers):
        b = f"blk.{i}."
        out += [
            (b + "attn_norm.weight", [hidden], "norm"),
            (b + "attn_q.weight", [hidden, q], "w"), (b + "attn_q.bias", [q], "bias"),
            (b + "attn_k.weight", [hidden, kv], "w"), (b + "attn_k.bias", [kv], "bias"),
            (b + "attn_v.weight", [hidden, kv], "w"), (b + "attn_v.bias", [kv], "bias"),
            (b + "attn_output.weight", [q, hidden], "w"),
            (b + "ffn_norm.weight", [hidden], "norm"),
            (b + "ffn_gate.weight", [hidden, inter], "w"),
            (b + "ffn_up.weight", [hidden, inter], "w"),
            (b + "ffn_down.weight", [inter, hidden], "w"),
        ]
    out.append(("output_norm.weight", [hidden], "norm"))
    if not cfg.get("tie_word_embeddings", False):
        out.append(("output.weight", [hidden, vocab], "w"))
    return out


def numel(dims):
    n = 1
    for d in dims:
        n *= d
    return n


def metadata(cfg, dtype, name, vocab_entries):
    if cfg.get("model_type") != "qwen2":
        sys.exit(f"make_random_gguf: model_type {cfg.get('model_type')!r}: only qwen2 is written")
    arch = "qwen2"
    kv = [
        ("general.architecture", T_STRING, arch),
        ("general.name", T_STRING, name),
        ("general.file_type", T_UINT32, FTYPE[dtype]),
        ("general.alignment", T_UINT32, ALIGNMENT),
        (f"{arch}.context_length", T_UINT32, cfg["max_position_embeddings"]),
        (f"{arch}.embedding_length", T_UINT32, cfg["hidden_size"]),
        (f"{arch}.feed_forward_length", T_UINT32, cfg["intermediate_size"]),
        (f"{arch}.block_count", T_UINT32, cfg["num_hidden_layers"]),
        (f"{arch}.attention.head_count", T_UINT32, cfg["num_attention_heads"]),
        (f"{arch}.attention.head_count_kv", T_UINT32, cfg["num_key_value_heads"]),
        (f"{arch}.rope.freq_base", T_FLOAT32, float(cfg["rope_theta"])),
        (f"{arch}.attention.layer_norm_rms_epsilon", T_FLOAT32, float(cfg["rms_norm_eps"])),
    ]
    vocab_size = cfg["vocab_size"]
    tokenizer = [(k, t, v) for k, t, v in vocab_entries if k.startswith("tokenizer.")]
    keys = {k: i for i, (k, _, _) in enumerate(tokenizer)}
    if "tokenizer.ggml.tokens" not in keys:
        sys.exit("make_random_gguf: the vocabulary file has no tokenizer.ggml.tokens")
    tokens = tokenizer[keys["tokenizer.ggml.tokens"]][2][1]
    if len(tokens) > vocab_size:
        sys.exit(f"make_random_gguf: {len(tokens)} tokens in the vocabulary, vocab_size {vocab_size}")
    pad = vocab_size - len(tokens)
    for key, fill in (("tokenizer.ggml.tokens", lambda i: f"[PAD{i}]"),
                      ("tokenizer.ggml.token_type", lambda i: TOKEN_TYPE_UNUSED),
                      ("tokenizer.ggml.scores", lambda i: -1000.0)):
        if key in keys:
            k, t, (etype, items) = tokenizer[keys[key]]
            tokenizer[keys[key]] = (k, t, (etype, items + [fill(len(items) + j) for j in range(pad)]))
    return kv + tokenizer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="Hugging Face config.json (Qwen2)")
    ap.add_argument("--dtype", choices=["bf16", "f16"], default="bf16")
    ap.add_argument("--vocab", required=True, help="vocabulary-only GGUF whose tokenizer.* to copy")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    with open(args.config) as f:
        cfg = json.load(f)
    name = os.path.basename(os.path.dirname(os.path.abspath(args.config))) + " random " + args.dtype
    kv = metadata(cfg, args.dtype, name, read_kv(args.vocab))
    tensors = tensor_list(cfg)
    wtype = GGML_BF16 if args.dtype == "bf16" else GGML_F16

    header = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(kv))]
    header += [pack_string(k) + struct.pack("<I", t) + pack_value(t, v) for k, t, v in kv]
    offset, layout = 0, []
    for tname, dims, kind in tensors:
        ttype, esize = (wtype, 2) if kind == "w" else (GGML_F32, 4)
        header.append(pack_string(tname) + struct.pack("<I", len(dims)) +
                      struct.pack("<%dQ" % len(dims), *dims) + struct.pack("<IQ", ttype, offset))
        layout.append((offset, numel(dims), kind, esize))
        offset = pad_to(offset + numel(dims) * esize)
    header = b"".join(header)

    rng = random.Random(args.seed)
    pool = RandomPool(args.dtype, rng)
    small = struct.pack("<4096f", *[rng.uniform(-0.02, 0.02) for _ in range(4096)])
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header)
        f.write(b"\0" * (pad_to(len(header)) - len(header)))
        data_start = f.tell()
        for start, n, kind, _esize in layout:
            f.write(b"\0" * (data_start + start - f.tell()))
            if kind == "w":
                pool.write(f, n)
            elif kind == "norm":
                f.write(struct.pack("<f", 1.0) * n)
            else:
                f.write((small * (n // 4096 + 1))[:4 * n])
        f.write(b"\0" * (pad_to(f.tell() - data_start) - (f.tell() - data_start)))
    os.replace(tmp, args.out)
    print(f"make_random_gguf: {args.out}: {len(tensors)} tensors, {offset / 1e6:.1f} MB of data, "
          f"{sum(numel(d) for _, d, _ in tensors) / 1e6:.1f} M parameters, {args.dtype}")


if __name__ == "__main__":
    main()
