// Every bad input gets its 4xx with OpenAI's error body, and a normal request still succeeds
// after each one (the server neither crashed nor wedged).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startServer, curl, MODEL_NAME } from './server.mjs';

let server;
let maxModelLen;

before(async () => {
  server = await startServer(['--max-body-bytes', '64KiB']);
  maxModelLen = (await (await fetch(`${server.url}/v1/models`)).json()).data[0].max_model_len;
});

after(async () => {
  const { code } = await server.stop();
  assert.equal(code, 0, server.log());
});

async function expectNormalRequestWorks() {
  const r = await curl(`${server.url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ model: MODEL_NAME, prompt: 'ok', max_tokens: 2 }),
  });
  assert.equal(r.status, 200, r.body);
}

function checkError(r, status, type, param) {
  assert.equal(r.status, status, r.body);
  const body = JSON.parse(r.body);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.equal(body.error.type, type);
  assert.ok('param' in body.error && 'code' in body.error);
  if (param !== undefined) assert.equal(body.error.param, param);
  return body.error;
}

const bad = [
  ['malformed JSON', '{"prompt": "x",', 400, 'invalid_request_error', null],
  ['body not an object', '["x"]', 400, 'invalid_request_error', null],
  ['missing prompt', '{"max_tokens": 3}', 400, 'invalid_request_error', 'prompt'],
  ['empty prompt', '{"prompt": ""}', 400, 'invalid_request_error', 'prompt'],
  ['empty prompt list', '{"prompt": []}', 400, 'invalid_request_error', 'prompt'],
  ['prompt wrong type', '{"prompt": 12}', 400, 'invalid_request_error', 'prompt'],
  ['max_tokens wrong type', '{"prompt": "x", "max_tokens": "5"}', 400, 'invalid_request_error', 'max_tokens'],
  ['max_tokens 0', '{"prompt": "x", "max_tokens": 0}', 400, 'invalid_request_error', 'max_tokens'],
  ['temperature wrong type', '{"prompt": "x", "temperature": "hot"}', 400, 'invalid_request_error', 'temperature'],
  ['negative token id', '{"prompt": [1, -5]}', 400, 'invalid_request_error', 'prompt'],
  ['token id outside vocab', '{"prompt": [1, 99999999]}', 400, 'invalid_request_error', 'prompt'],
  ['n 0', '{"prompt": "x", "n": 0}', 400, 'invalid_request_error', 'n'],
  ['n too large', '{"prompt": "x", "n": 1000}', 400, 'invalid_request_error', 'n'],
  ['logprobs too large', '{"prompt": "x", "logprobs": 1000}', 400, 'invalid_request_error', 'logprobs'],
  ['logprobs negative', '{"prompt": "x", "logprobs": -1}', 400, 'invalid_request_error', 'logprobs'],
  ['stream_options without stream', '{"prompt": "x", "stream_options": {"include_usage": true}}', 400, 'invalid_request_error', 'stream_options'],
  ['stop wrong type', '{"prompt": "x", "stop": 5}', 400, 'invalid_request_error', 'stop'],
  ['unknown model', '{"prompt": "x", "model": "gpt-9"}', 404, 'not_found_error', 'model'],
];

for (const [name, body, status, type, param] of bad) {
  test(`bad input: ${name} -> ${status} ${type}`, async () => {
    const r = await curl(`${server.url}/v1/completions`, { method: 'POST', body });
    checkError(r, status, type, param);
    await expectNormalRequestWorks();
  });
}

test('unknown fields are ignored', async () => {
  const r = await curl(`${server.url}/v1/completions`, {
    method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 1, frobnicate: { a: [1] } }),
  });
  assert.equal(r.status, 200, r.body);
});

test('prompt + max_tokens beyond the context names both numbers', async () => {
  const r = await curl(`${server.url}/v1/completions`, {
    method: 'POST', body: JSON.stringify({ prompt: 'a b c', max_tokens: maxModelLen }),
  });
  const error = checkError(r, 400, 'invalid_request_error', 'max_tokens');
  assert.ok(error.message.includes(String(maxModelLen)), error.message);
  assert.ok(error.message.includes('3') || error.message.includes('prompt'), error.message);
  await expectNormalRequestWorks();
});

test('body over the limit -> 413', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagedserve-'));
  const file = join(dir, 'big.json');
  writeFileSync(file, JSON.stringify({ prompt: 'x'.repeat(100 * 1024) }));
  const r = await curl(`${server.url}/v1/completions`, { method: 'POST', dataFile: file });
  rmSync(dir, { recursive: true });
  checkError(r, 413, 'invalid_request_error');
  await expectNormalRequestWorks();
});

test('unknown route -> 404, wrong method -> 405', async () => {
  checkError(await curl(`${server.url}/v1/nothing`), 404, 'not_found_error');
  checkError(await curl(`${server.url}/v1/completions`), 405, 'invalid_request_error');
  checkError(await curl(`${server.url}/metrics`, { method: 'POST', body: '{}' }), 405, 'invalid_request_error');
  await expectNormalRequestWorks();
});

test('detokenize and tokenize reject bad input', async () => {
  checkError(await curl(`${server.url}/detokenize`, { method: 'POST', body: '{"tokens": [-1]}' }), 400, 'invalid_request_error');
  checkError(await curl(`${server.url}/tokenize`, { method: 'POST', body: '{"prompt": 1}' }), 400, 'invalid_request_error');
  await expectNormalRequestWorks();
});

test('the openai client surfaces the error status', async () => {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  await assert.rejects(client.completions.create({ model: MODEL_NAME, prompt: 'x', max_tokens: 0 }),
    (e) => e.status === 400 && e.error?.type === 'invalid_request_error');
});

test('--api-key: 401 without or with a wrong key, probes stay open', async () => {
  const keyed = await startServer(['--api-key', 'secret-key']);
  try {
    checkError(await curl(`${keyed.url}/v1/models`), 401, 'authentication_error');
    checkError(await curl(`${keyed.url}/v1/completions`, { method: 'POST', body: '{"prompt":"x"}', headers: ['Authorization: Bearer nope'] }), 401, 'authentication_error');
    assert.equal((await curl(`${keyed.url}/health`)).status, 200);
    assert.equal((await curl(`${keyed.url}/metrics`)).status, 200);
    const client = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'secret-key', maxRetries: 0 });
    const r = await client.completions.create({ model: MODEL_NAME, prompt: 'x', max_tokens: 2 });
    assert.equal(r.choices.length, 1);
  } finally {
    assert.equal((await keyed.stop()).code, 0);
  }
});
