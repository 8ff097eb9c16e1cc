// Load and fault suite, the KV pool: prompts that need 5x the pool in total all complete through
// preemption, and a prompt larger than the whole pool is refused with a 400 at once, even while
// the pool is full. --kv-cache-memory 1MiB holds 512 tokens of tiny-qwen3 (2 KiB a token: 4
// layers x K,V x 2 heads x 64 x bf16), in 32 pages of 16.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveSuite, assertSettled, metricsText, metricValue, MODEL_NAME } from './server.mjs';

const POOL_TOKENS = 512;
const suite = serveSuite(['--kv-cache-memory', '1MiB', '--max-num-seqs', '32'], { timeout: 120000 });

// `length` distinct ordinary token ids (no shared prefix between prompts, so no prefix-cache help).
const ids = (seed, length) => Array.from({ length }, (_, i) => 1000 + ((seed * 7919 + i * 104729) % 29000));

async function complete(prompt, maxTokens, stream) {
  const body = { model: MODEL_NAME, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true };
  if (!stream) {
    const r = await suite.client.completions.create(body);
    return { finish: r.choices[0].finish_reason, tokens: r.usage.completion_tokens };
  }
  const s = await suite.client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  let finish = null;
  let tokens = 0;
  for await (const chunk of s) {
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
    for (const c of chunk.choices) if (c.finish_reason) finish = c.finish_reason;
  }
  return { finish, tokens };
}

// Posts a body and times the answer.
async function timedPost(body) {
  const started = Date.now();
  const r = await fetch(`${suite.server.url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: MODEL_NAME, ...body }) });
  return { status: r.status, body: await r.json(), ms: Date.now() - started };
}

test('prompts needing 5x the KV pool all complete (preemption); oversize prompts get 400 at once', async () => {
  // 24 requests of 100 prompt + 40 output tokens (9 pages each), one of 440 + 40 (30 of the 32
  // pages): 3,840 tokens, 7.5x the pool, at once. Half stream.
  const work = Array.from({ length: 24 }, (_, i) => ({ prompt: ids(i + 1, 100), maxTokens: 40 }));
  work.push({ prompt: ids(99, 440), maxTokens: 40 });
  assert.match(suite.server.log(), /KV cache: 32 pages x 16 tokens = 512 tokens/);
  const needed = work.reduce((sum, w) => sum + w.prompt.length + w.maxTokens, 0);
  assert.ok(needed >= 5 * POOL_TOKENS);
  const before = await metricsText(suite.server.url);
  const started = Date.now();
  const running = Promise.all(work.map((w, i) => complete(w.prompt, w.maxTokens, i % 2 === 0)));

  // While the pool is full: a prompt of more tokens than the pool, and one that fits alone but
  // not with its max_tokens, are refused at once (the engine would otherwise wait forever).
  await new Promise((r) => setTimeout(r, 300));
  const tooLong = await timedPost({ prompt: ids(7, POOL_TOKENS + 88), max_tokens: 1 });
  const tooLongWithOutput = await timedPost({ prompt: ids(8, 400), max_tokens: 200 });
  for (const r of [tooLong, tooLongWithOutput]) {
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.type, 'invalid_request_error');
    assert.match(r.body.error.message, /only 32 pages/, 'the message names the pool size');
    assert.ok(r.ms < 2000, `answered after ${r.ms} ms`);
  }

  const results = await running;
  const seconds = (Date.now() - started) / 1000;
  for (const [i, r] of results.entries()) {
    assert.equal(r.finish, 'length', `request ${i}`);
    assert.equal(r.tokens, work[i].maxTokens, `request ${i}`);
  }
  const text = await assertSettled(suite.server);
  const preemptions = metricValue(text, 'pagedserve_num_preemptions_total') -
    (metricValue(before, 'pagedserve_num_preemptions_total') ?? 0);
  assert.ok(preemptions > 0, text);
  console.log(`${work.length} requests needing ${needed} tokens (${(needed / POOL_TOKENS).toFixed(1)}x the pool): ` +
    `all complete in ${seconds.toFixed(1)} s, ${preemptions} preemptions; oversize prompts refused in ` +
    `${tooLong.ms} / ${tooLongWithOutput.ms} ms`);
});

test('a prompt larger than the pool, alone and in a batch of prompts, is a 400 and leaves nothing behind', async () => {
  const alone = await timedPost({ prompt: ids(11, 4 * POOL_TOKENS), max_tokens: 8 });
  assert.equal(alone.status, 400);
  // The first prompt fits, the second does not: the whole request is refused, the first prompt's
  // engine request (if it was submitted) is withdrawn.
  const mixed = await timedPost({ prompt: [ids(12, 20), ids(13, POOL_TOKENS + 1)], max_tokens: 4, n: 2 });
  assert.equal(mixed.status, 400);
  await assertSettled(suite.server);
});
