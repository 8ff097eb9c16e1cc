#!/usr/bin/env node
// Reads the tokenizer metadata of a GGUF file (llama.cpp's vocab-only test files) and writes a
// Hugging Face style tokenizer.json for it, so llama.cpp's tokenizer vectors can be checked for
// vocabularies that have no tokenizer.json on npm (gpt-2, llama-spm). Test data only.
//
// usage: gguf-vocab-to-tokenizer-json.mjs IN.gguf OUT.json
//
// "gpt2" vocabularies become byte-level BPE with the GPT-2 regex; "llama" (SentencePiece) ones
// become BPE with byte fallback and a Prepend/Replace normaliser, with merges derived from the
// piece scores the way SentencePiece ranks them (a pair merges into a piece; higher score first).
import fs from 'node:fs';

const [inPath, outPath] = process.argv.slice(2);
if (!inPath || !outPath) {
  console.error('usage: gguf-vocab-to-tokenizer-json.mjs IN.gguf OUT.json');
  process.exit(2);
}
const buf = fs.readFileSync(inPath);
let pos = 0;
const u32 = () => { const v = buf.readUInt32LE(pos); pos += 4; return v; };
const u64 = () => { const v = buf.readBigUInt64LE(pos); pos += 8; return Number(v); };
const str = () => { const n = u64(); const s = buf.toString('utf8', pos, pos + n); pos += n; return s; };
const readers = {
  0: () => buf.readUInt8(pos++), 1: () => buf.readInt8(pos++),
  2: () => { const v = buf.readUInt16LE(pos); pos += 2; return v; },
  3: () => { const v = buf.readInt16LE(pos); pos += 2; return v; },
  4: u32, 5: () => { const v = buf.readInt32LE(pos); pos += 4; return v; },
  6: () => { const v = buf.readFloatLE(pos); pos += 4; return v; },
  7: () => buf.readUInt8(pos++) !== 0, 8: str,
  10: u64, 11: () => { const v = buf.readBigInt64LE(pos); pos += 8; return Number(v); },
  12: () => { const v = buf.readDoubleLE(pos); pos += 8; return v; },
};
const value = (type) => {
  if (type === 9) {
    const elemType = u32(); const n = u64(); const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = value(elemType);
    return out;
  }
  const r = readers[type];
  if (!r) throw new Error(`${inPath}: unknown GGUF value type ${type}`);
  return r();
};

if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error(`${inPath}: not a GGUF file`);
pos = 4;
const version = u32();
if (version < 2) throw new Error(`${inPath}: GGUF version ${version} unsupported`);
u64();  // tensor count
const kvCount = u64();
const meta = {};
for (let i = 0; i < kvCount; i++) { const key = str(); meta[key] = value(u32()); }

const model = meta['tokenizer.ggml.model'];
const tokens = meta['tokenizer.ggml.tokens'];
const types = meta['tokenizer.ggml.token_type'] || tokens.map(() => 1);
const scores = meta['tokenizer.ggml.scores'];
if (!tokens) throw new Error(`${inPath}: no tokenizer.ggml.tokens`);

// GGUF token types: 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte.
// A prototype-less object: tokens like "constructor" must not find Object's properties.
const vocab = Object.create(null);
tokens.forEach((t, id) => { if (!(t in vocab)) vocab[t] = id; });
const addedTokens = [];
tokens.forEach((t, id) => {
  if (types[id] === 3 || types[id] === 4) {
    addedTokens.push({ id, content: t, single_word: false, lstrip: false, rstrip: false,
                       normalized: types[id] === 4, special: types[id] === 3 });
  }
});

const out = { version: '1.0', added_tokens: addedTokens };
const config = {};
const tokenOf = (key) => (meta[key] === undefined ? undefined : tokens[meta[key]]);
if (tokenOf('tokenizer.ggml.bos_token_id') !== undefined) config.bos_token = tokenOf('tokenizer.ggml.bos_token_id');
if (tokenOf('tokenizer.ggml.eos_token_id') !== undefined) config.eos_token = tokenOf('tokenizer.ggml.eos_token_id');
if (meta['tokenizer.ggml.add_bos_token'] !== undefined) config.add_bos_token = meta['tokenizer.ggml.add_bos_token'];

// llama.cpp names the pre-tokenizer (tokenizer.ggml.pre); these are the patterns of the
// vocabularies we test. Anything else gets GPT-2's pattern (ByteLevel's own).
const preTokenizerPatterns = {
  'qwen2': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

if (model === 'gpt2') {
  out.normalizer = meta['tokenizer.ggml.pre'] === 'qwen2' ? { type: 'NFC' } : null;
  const pattern = preTokenizerPatterns[meta['tokenizer.ggml.pre']];
  out.pre_tokenizer = pattern === undefined
    ? { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }
    : { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false } ] };
  out.decoder = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  // Llama-3 emits a word that is itself in the vocabulary whole (llama.cpp does the same for
  // this pre-tokenizer); the others always merge.
  out.model = { type: 'BPE', dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false,
                ignore_merges: meta['tokenizer.ggml.pre'] === 'llama-bpe',
                vocab, merges: meta['tokenizer.ggml.merges'] || [] };
} else if (model === 'llama') {
  if (!scores) throw new Error(`${inPath}: SentencePiece vocab without tokenizer.ggml.scores`);
  // A merge exists for every split of a normal piece into two pieces of the vocab; SentencePiece
  // applies the one whose result scores highest first, so rank merges by that score.
  const merges = [];
  tokens.forEach((t, id) => {
    if (types[id] !== 1) return;
    const chars = Array.from(t);
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join(''); const right = chars.slice(i).join('');
      if (left in vocab && right in vocab) merges.push([scores[id], id, vocab[left], left, right]);
    }
  });
  merges.sort((a, b) => (b[0] - a[0]) || (a[1] - b[1]) || (a[2] - b[2]));
  const unk = tokens.findIndex((_, id) => types[id] === 2);
  out.normalizer = { type: 'Sequence', normalizers: [
    { type: 'Prepend', prepend: '\u2581' },
    { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' } ] };
  out.pre_tokenizer = null;
  out.decoder = { type: 'Sequence', decoders: [
    { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
    { type: 'ByteFallback' }, { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 } ] };
  out.model = { type: 'BPE', dropout: null, unk_token: unk >= 0 ? tokens[unk] : null, fuse_unk: true,
                byte_fallback: true, vocab, merges: merges.map((m) => [m[3], m[4]]) };
} else {
  throw new Error(`${inPath}: tokenizer.ggml.model "${model}" not supported`);
}
fs.writeFileSync(outPath, JSON.stringify(out));
const configPath = outPath.replace(/tokenizer\.json$/, 'tokenizer_config.json');
if (configPath !== outPath) fs.writeFileSync(configPath, JSON.stringify(config, null, 1));
console.log(`${outPath}: ${model}/${meta['tokenizer.ggml.pre']}, ${tokens.length} tokens, ${out.model.merges.length} merges, ` +
            `${addedTokens.length} added`);
