// 64 concurrent streaming clients, a third of them hanging up mid-stream: the others complete
// correctly, and afterwards /metrics shows an empty KV cache, nothing running, histogram counts
// equal to the requests served, and promtool accepts the exposition.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, waitForIdle, metricValue, metricSum, promtoolFindings, MODEL_NAME } from './server.mjs';

let server;
let client;
const CLIENTS = 64;
const MAX_TOKENS = 24;

before(async () => {
  server = await startServer(['--max-num-seqs', '32']);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 300000 });
});

after(async () => {
  const { code } = await server.stop();
  assert.equal(code, 0, server.log());
});

async function streamOne(i) {
  const hangUp = i % 3 === 0;
  const controller = new AbortController();
  const stream = await client.completions.create(
    { model: MODEL_NAME, prompt: `Client ${i} says`, max_tokens: MAX_TOKENS, temperature: 0.8, seed: i,
      ignore_eos: true, stream: true, stream_options: { include_usage: true } },
    { signal: controller.signal });
  let text = '';
  let finish = null;
  let usage = null;
  try {
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.text;
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (hangUp && text.length > 0) {
        controller.abort();
        break;
      }
    }
  } catch (e) {
    if (!hangUp) throw e;
  }
  return { i, hangUp, text, finish, usage };
}

test('64 streaming clients, a third hang up; metrics settle', async () => {
  const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => streamOne(i)));
  const completed = results.filter((r) => !r.hangUp);
  assert.equal(completed.length, CLIENTS - Math.ceil(CLIENTS / 3));
  for (const r of completed) {
    assert.equal(r.finish, 'length', `client ${r.i}`);
    assert.ok(r.usage, `client ${r.i} got the usage chunk`);
    assert.equal(r.usage.completion_tokens, MAX_TOKENS, `client ${r.i}`);
    assert.ok(r.text.length > 0);
  }
  const text = await waitForIdle(server.url);
  assert.equal(metricValue(text, 'pagedserve_num_requests_running'), 0, text);
  assert.equal(metricValue(text, 'pagedserve_num_requests_waiting'), 0, text);
  assert.equal(metricValue(text, 'pagedserve_kv_cache_usage_perc'), 0, text);

  // Requests served: the 64 streams, each one engine request. (Seeded texts are not compared
  // with lone reruns here: a batched forward rounds differently from a lone one, like vLLM.)
  const served = CLIENTS;
  assert.equal(metricValue(text, 'pagedserve_e2e_request_latency_seconds_count'), served, text);
  assert.equal(metricValue(text, 'pagedserve_request_queue_time_seconds_count'), served, text);
  assert.equal(metricValue(text, 'pagedserve_time_to_first_token_seconds_count'), served, text);
  assert.equal(metricSum(text, 'pagedserve_request_success_total'), served, text);
  const lengthFinished = metricValue(text, `pagedserve_request_success_total{model_name="${MODEL_NAME}",finished_reason="length"}`);
  assert.ok(lengthFinished >= completed.length, text);
  // The hang-ups reached the engine as aborts (a stream may have finished before its abort landed).
  const aborted = metricValue(text, `pagedserve_request_success_total{model_name="${MODEL_NAME}",finished_reason="abort"}`);
  assert.ok(aborted >= 1 && aborted <= CLIENTS - completed.length, text);
  assert.ok(metricValue(text, 'pagedserve_generation_tokens_total') >= completed.length * MAX_TOKENS, text);
  assert.ok(metricValue(text, 'pagedserve_prompt_tokens_total') > 0, text);
  const infBucket = metricValue(text, `pagedserve_e2e_request_latency_seconds_bucket{model_name="${MODEL_NAME}",le="+Inf"}`);
  assert.equal(infBucket, served, text);

  assert.deepEqual(await promtoolFindings(text), []);
});
