// Load and fault suite, streams: 256 concurrent streaming clients with a third hanging up at
// random points (before the first byte, mid-stream, or just before the end), and SIGTERM under
// load (short streams finish within --shutdown-timeout, long ones are aborted, exit 0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, assertSettled, metricValue, metricSum, seededRandom, MODEL_NAME } from './server.mjs';

// Streams one completion; `hangUpAfter` chunks (0: before the response arrives) then aborts, or
// reads to the end when null.
async function stream(client, i, maxTokens, hangUpAfter) {
  const controller = new AbortController();
  if (hangUpAfter === 0) setTimeout(() => controller.abort(), 1 + (i % 20));
  let chunks = 0;
  let finish = null;
  let usage = null;
  try {
    const s = await client.completions.create(
      { model: MODEL_NAME, prompt: `Client ${i} asks`, max_tokens: maxTokens, temperature: 0.8, seed: i,
        ignore_eos: true, stream: true, stream_options: { include_usage: true } },
      { signal: controller.signal });
    for await (const chunk of s) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) if (c.finish_reason) finish = c.finish_reason;
      chunks++;
      if (hangUpAfter !== null && chunks >= hangUpAfter) {
        controller.abort();
        break;
      }
    }
  } catch (e) {
    if (hangUpAfter === null) throw e;
  }
  return { i, hungUp: hangUpAfter !== null, finish, usage };
}

test('256 streaming clients, a third hang up at random points; nothing leaks', async () => {
  const CLIENTS = 256;
  const MAX_TOKENS = 16;
  const server = await startServer(['--max-num-seqs', '64']);
  try {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
    const fdsBefore = server.openFds();
    const next = seededRandom(15);  // the hang-up points repeat from run to run
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) =>
      stream(client, i, MAX_TOKENS, i % 3 === 0 ? Math.floor(next() * (MAX_TOKENS + 1)) : null)));
    const seconds = (Date.now() - started) / 1000;
    const completed = results.filter((r) => !r.hungUp);
    for (const r of completed) {
      assert.equal(r.finish, 'length', `client ${r.i}`);
      assert.equal(r.usage?.completion_tokens, MAX_TOKENS, `client ${r.i}`);
    }
    const text = await assertSettled(server);
    // Every engine request ended once: the streams read to the end as 'length', the hang-ups as
    // 'abort' (or 'length' when the stream ended before the abort landed; a hang-up before the
    // request was read never reached the engine).
    const finished = metricSum(text, 'pagedserve_request_success_total');  // read before assertSettled's own
    const aborted = metricValue(text, `pagedserve_request_success_total{model_name="${MODEL_NAME}",finished_reason="abort"}`);
    assert.ok(finished >= completed.length && finished <= CLIENTS, text);
    assert.ok(aborted >= 1, text);
    // Connections closed: the descriptors are back where they were (the listener and the
    // server's own files, a little slack for sockets still in their last close).
    let fdsAfter = server.openFds();
    for (let i = 0; i < 50 && fdsAfter > fdsBefore + 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      fdsAfter = server.openFds();
    }
    assert.ok(fdsAfter <= fdsBefore + 2, `fds ${fdsBefore} -> ${fdsAfter}`);
    console.log(`256 clients (${CLIENTS - completed.length} hung up, ${aborted} aborts reached the engine): ` +
      `${seconds.toFixed(1)} s, fds ${fdsBefore} -> ${fdsAfter}`);
  } finally {
    assert.equal((await server.stop()).code, 0, server.log());
  }
});

test('SIGTERM under load: short streams finish, long ones are aborted at the timeout, exit 0', async () => {
  const TIMEOUT_S = 3;
  const server = await startServer(['--shutdown-timeout', String(TIMEOUT_S)]);
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
  // 12 short streams that finish well within the timeout, 12 that could not (8000 tokens).
  let firstChunks = 0;
  let allStarted;
  const started = new Promise((resolve) => { allStarted = resolve; });
  const run = async (i, maxTokens) => {
    const s = await client.completions.create({ model: MODEL_NAME, prompt: `Story ${i}:`, max_tokens: maxTokens,
      temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    let tokens = 0;
    let finish = null;
    let first = true;
    for await (const chunk of s) {
      if (first && ++firstChunks === 24) allStarted();
      first = false;
      for (const c of chunk.choices) {
        if (c.text) tokens++;
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    return { maxTokens, tokens, finish };
  };
  const streams = [...Array.from({ length: 12 }, (_, i) => run(i, 24)),
    ...Array.from({ length: 12 }, (_, i) => run(100 + i, 8000))];
  await started;
  const sigterm = Date.now();
  const stopped = server.stop();
  const results = await Promise.all(streams);
  const { code } = await stopped;
  const seconds = (Date.now() - sigterm) / 1000;
  assert.equal(code, 0, server.log());
  for (const r of results.filter((x) => x.maxTokens === 24)) assert.equal(r.finish, 'length');
  for (const r of results.filter((x) => x.maxTokens === 8000)) {
    assert.equal(r.finish, 'abort');
    assert.ok(r.tokens < 8000);
  }
  assert.ok(seconds >= TIMEOUT_S - 0.5 && seconds < TIMEOUT_S + 6, `exit ${seconds} s after SIGTERM`);
  assert.match(server.log(), /12 requests still in flight after 3 s; aborting them/);
  console.log(`SIGTERM with 24 streams: 12 finished, 12 aborted, exit 0 after ${seconds.toFixed(2)} s`);
});
