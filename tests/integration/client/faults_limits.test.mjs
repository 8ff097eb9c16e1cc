// Load and fault suite, request limits: `n`, `logprobs` (chat: `top_logprobs`) and the number of
// prompts at the server's limits (16, 20, 64), together; one over each limit is a 400 naming it;
// a client hanging up on n=16 streams aborts all 16.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveSuite, assertSettled, metricsText, metricValue, metricSum, MODEL_NAME } from './server.mjs';

const MAX_N = 16;
const MAX_LOGPROBS = 20;
const MAX_PROMPTS = 64;
const suite = serveSuite([], { timeout: 120000 });

// Completions' top_logprobs is an object keyed by token text: 20 entries, one more when the sampled
// token is not among the best (as vLLM's), fewer when two tokens decode to the same text (e.g.
// partial UTF-8 bytes). Counted over a whole response: most positions hold 20 or 21.
function checkTopCounts(tops) {
  const counts = tops.map((top) => Object.keys(top).length);
  assert.ok(counts.every((n) => n >= 1 && n <= MAX_LOGPROBS + 1), JSON.stringify(counts));
  const full = counts.filter((n) => n >= MAX_LOGPROBS).length;
  assert.ok(full >= 0.8 * counts.length, JSON.stringify(counts));
}

test('completions: n, logprobs and prompts at their limits together', async () => {
  const one = await suite.client.completions.create({ model: MODEL_NAME, prompt: 'Limits:', n: MAX_N,
    logprobs: MAX_LOGPROBS, max_tokens: 4, temperature: 1, seed: 3, ignore_eos: true });
  assert.equal(one.choices.length, MAX_N);
  for (const c of one.choices) assert.equal(c.logprobs.tokens.length, 4);
  checkTopCounts(one.choices.flatMap((c) => c.logprobs.top_logprobs));

  // 64 prompts x n 16 = 1,024 sequences with 20 logprobs a token, in one request.
  const started = Date.now();
  const all = await suite.client.completions.create({ model: MODEL_NAME,
    prompt: Array.from({ length: MAX_PROMPTS }, (_, i) => `Prompt number ${i}`), n: MAX_N,
    logprobs: MAX_LOGPROBS, max_tokens: 2, temperature: 1, seed: 5, ignore_eos: true });
  const seconds = (Date.now() - started) / 1000;
  assert.equal(all.choices.length, MAX_PROMPTS * MAX_N);
  assert.deepEqual(all.choices.map((c) => c.index), Array.from({ length: MAX_PROMPTS * MAX_N }, (_, i) => i));
  assert.ok(all.choices.every((c) => c.finish_reason === 'length' && c.logprobs.top_logprobs.length === 2));
  assert.equal(all.usage.completion_tokens, MAX_PROMPTS * MAX_N * 2);
  console.log(`64 prompts x n 16 x logprobs 20: 1,024 choices in ${seconds.toFixed(1)} s`);
  await assertSettled(suite.server);
});

test('streams and chat at the limits', async () => {
  const stream = await suite.client.completions.create({ model: MODEL_NAME, prompt: 'Streams:', n: MAX_N,
    logprobs: MAX_LOGPROBS, max_tokens: 3, ignore_eos: true, stream: true });
  const finished = new Set();
  const tops = [];
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      if (c.finish_reason) finished.add(c.index);
      tops.push(...(c.logprobs?.top_logprobs ?? []));
    }
  }
  assert.equal(finished.size, MAX_N);
  assert.equal(tops.length, MAX_N * 3);
  checkTopCounts(tops);

  const chat = await suite.client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: 'user', content: 'hi' }],
    n: MAX_N, logprobs: true, top_logprobs: MAX_LOGPROBS, max_tokens: 3 });
  assert.equal(chat.choices.length, MAX_N);
  for (const c of chat.choices) {
    for (const t of c.logprobs.content) assert.equal(t.top_logprobs.length, MAX_LOGPROBS);
  }
  await assertSettled(suite.server);
});

test('one over each limit is a 400 naming the parameter', async () => {
  const over = [
    [{ prompt: 'x', n: MAX_N + 1 }, 'n'],
    [{ prompt: 'x', logprobs: MAX_LOGPROBS + 1 }, 'logprobs'],
    [{ prompt: Array(MAX_PROMPTS + 1).fill('x') }, 'prompt'],
  ];
  for (const [body, param] of over) {
    await assert.rejects(suite.client.completions.create({ model: MODEL_NAME, max_tokens: 1, ...body }),
      (e) => e.status === 400 && e.error?.param === param, param);
  }
  await assert.rejects(suite.client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: 'user', content: 'x' }],
    logprobs: true, top_logprobs: MAX_LOGPROBS + 1 }), (e) => e.status === 400 && e.error?.param === 'top_logprobs');
  await assert.rejects(suite.client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: 'user', content: 'x' }],
    n: MAX_N + 1 }), (e) => e.status === 400 && e.error?.param === 'n');
  await assertSettled(suite.server);
});

test('hanging up on an n=16 stream aborts all 16 sequences', async () => {
  const abortsOf = (text) => metricValue(text, `pagedserve_request_success_total{model_name="${MODEL_NAME}",finished_reason="abort"}`);
  const before = await metricsText(suite.server.url);
  const controller = new AbortController();
  const stream = await suite.client.completions.create({ model: MODEL_NAME, prompt: 'Long:', n: MAX_N,
    logprobs: MAX_LOGPROBS, max_tokens: 2000, ignore_eos: true, stream: true }, { signal: controller.signal });
  let chunks = 0;
  try {
    for await (const chunk of stream) {
      if (++chunks === 3 * MAX_N && chunk) controller.abort();
    }
  } catch { /* the abort */ }
  // (assertSettled reads the metrics before its own completion.)
  const text = await assertSettled(suite.server);
  const total = 'pagedserve_request_success_total';
  assert.equal(metricSum(text, total) - metricSum(before, total), MAX_N, text);
  assert.equal(abortsOf(text) - abortsOf(before), MAX_N, text);
});
