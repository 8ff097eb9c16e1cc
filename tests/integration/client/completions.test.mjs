// The OpenAI-compatible surface with real clients (the `openai` npm package and curl) against the
// real binary and the tiny model. Texts of a random-weight tiny model are arbitrary, so the checks
// compare the server with itself: greedy streaming == greedy non-streaming, token-id prompt ==
// text prompt, a seed reproduces, a stop string cuts where the unstopped text had it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveSuite, curl, MODEL_NAME } from './server.mjs';

const suite = serveSuite();

const greedy = { model: MODEL_NAME, temperature: 0, max_tokens: 12 };

test('completion: shape, usage and finish reason', async () => {
  const r = await suite.client.completions.create({ ...greedy, prompt: 'The capital of France is' });
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, 'text_completion');
  assert.equal(r.model, MODEL_NAME);
  assert.ok(Number.isInteger(r.created));
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].index, 0);
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 12);
});

test('ignore_eos runs to max_tokens', async () => {
  const r = await suite.client.completions.create({ ...greedy, prompt: 'Count:', max_tokens: 9, ignore_eos: true });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 9);
});

test('streaming equals non-streaming (greedy), with a usage chunk and [DONE]', async () => {
  const body = { ...greedy, prompt: 'Once upon a time', ignore_eos: true };
  const whole = await suite.client.completions.create(body);
  const stream = await suite.client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'text_completion');
    if (chunk.usage) {
      usage = chunk.usage;
      assert.equal(chunk.choices.length, 0);
      continue;
    }
    chunks++;
    text += chunk.choices[0].text;
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.ok(chunks >= 2, 'streamed in several chunks');
  assert.equal(text, whole.choices[0].text);
  assert.equal(finish, 'length');
  assert.deepEqual(usage, whole.usage);
});

test('raw SSE framing over curl ends with data: [DONE]', async () => {
  const r = await curl(`${suite.server.url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ ...greedy, prompt: 'Hi', stream: true, max_tokens: 3, ignore_eos: true }),
  });
  assert.equal(r.status, 200);
  const events = r.body.split('\n\n').filter((e) => e.length);
  for (const e of events) assert.ok(e.startsWith('data: '), e);
  assert.equal(events.at(-1), 'data: [DONE]');
  const parsed = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
  assert.equal(parsed.map((c) => c.choices[0].text).join('').length > 0, true);
});

test('n > 1 gives independent choices in order', async () => {
  const r = await suite.client.completions.create({ model: MODEL_NAME, prompt: 'Hello', n: 3, max_tokens: 5, temperature: 1, seed: 3, ignore_eos: true });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  for (const c of r.choices) assert.equal(c.finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 15);
});

test('a seed reproduces the same text', async () => {
  const body = { model: MODEL_NAME, prompt: 'Random words:', max_tokens: 10, temperature: 1.0, top_p: 0.9, seed: 1234 };
  const a = await suite.client.completions.create(body);
  const b = await suite.client.completions.create(body);
  assert.equal(a.choices[0].text, b.choices[0].text);
});

test('stop string cuts the text where it first appears', async () => {
  const body = { ...greedy, prompt: 'The list:', max_tokens: 16, ignore_eos: true };
  const full = (await suite.client.completions.create(body)).choices[0].text;
  // A stop string from the middle of the unstopped greedy text: two characters, not blank.
  let stop = '';
  for (let start = Math.floor(full.length / 3); start + 2 <= full.length && !stop; start++) {
    const candidate = full.slice(start, start + 2);
    if (candidate.trim().length === 2 && !/[\uD800-\uDFFF]/.test(candidate)) stop = candidate;
  }
  assert.ok(stop, `no usable stop string in ${JSON.stringify(full)}`);
  const cut = await suite.client.completions.create({ ...body, stop: [stop] });
  assert.equal(cut.choices[0].finish_reason, 'stop');
  assert.equal(cut.choices[0].text, full.slice(0, full.indexOf(stop)));
});

test('logprobs: one entry per token, top alternatives, offsets', async () => {
  const r = await suite.client.completions.create({ ...greedy, prompt: 'Numbers', max_tokens: 5, logprobs: 2, ignore_eos: true });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, 5);
  assert.equal(lp.token_logprobs.length, 5);
  assert.equal(lp.top_logprobs.length, 5);
  assert.equal(lp.text_offset.length, 5);
  for (let i = 0; i < 5; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    const alternatives = Object.values(lp.top_logprobs[i]);
    assert.ok(alternatives.length >= 1 && alternatives.length <= 2);
    // Greedy: the chosen token is the most likely one.
    assert.ok(Math.abs(Math.max(...alternatives) - lp.token_logprobs[i]) < 1e-4);
  }
  assert.equal(lp.tokens.join(''), r.choices[0].text);
});

test('batched prompts: one choice per prompt, in order', async () => {
  const prompts = ['Alpha', 'Beta gamma', 'Delta'];
  const r = await suite.client.completions.create({ ...greedy, prompt: prompts, max_tokens: 4, ignore_eos: true });
  assert.equal(r.choices.length, 3);
  for (let i = 0; i < 3; i++) {
    const single = await suite.client.completions.create({ ...greedy, prompt: prompts[i], max_tokens: 4, ignore_eos: true });
    assert.equal(r.choices[i].index, i);
    assert.equal(r.choices[i].text, single.choices[0].text);
  }
  assert.equal(r.usage.completion_tokens, 12);
});

test('token-id prompts equal their text prompts; tokenize/detokenize round trip', async () => {
  const text = 'Paged attention keeps the cache in pages.';
  const tok = await (await fetch(`${suite.server.url}/tokenize`, { method: 'POST', body: JSON.stringify({ prompt: text }) })).json();
  assert.equal(tok.count, tok.tokens.length);
  assert.ok(tok.max_model_len > 0);
  const detok = await (await fetch(`${suite.server.url}/detokenize`, { method: 'POST', body: JSON.stringify({ tokens: tok.tokens }) })).json();
  assert.equal(detok.prompt, text);
  const byText = await suite.client.completions.create({ ...greedy, prompt: text, ignore_eos: true });
  const byIds = await suite.client.completions.create({ ...greedy, prompt: tok.tokens, ignore_eos: true });
  assert.equal(byIds.choices[0].text, byText.choices[0].text);
  assert.equal(byIds.usage.prompt_tokens, tok.count);
  const lists = await suite.client.completions.create({ ...greedy, prompt: [tok.tokens, tok.tokens], ignore_eos: true });
  assert.equal(lists.choices[1].text, byText.choices[0].text);
});

test('echo prepends the prompt', async () => {
  const r = await suite.client.completions.create({ ...greedy, prompt: 'Echo me', echo: true, max_tokens: 3 });
  assert.ok(r.choices[0].text.startsWith('Echo me'));
});

// Greedy generation with logprobs, then the prompt + the generated ids sent back as a prompt with
// prompt_logprobs: each generated token's prompt logprob is the one it was generated with, and
// (greedy) its rank is 1. Positions shifted by one, or a prefix-cache hit skipping them, would fail.
test('prompt_logprobs equal the logprobs of the same tokens when generated', async () => {
  const { tokens: promptIds } = await (await fetch(`${suite.server.url}/tokenize`, {
    method: 'POST', body: JSON.stringify({ prompt: 'The quick brown fox jumps' }),
  })).json();
  const generated = await suite.client.completions.create({
    ...greedy, prompt: promptIds, max_tokens: 8, ignore_eos: true, logprobs: 3, return_tokens_as_token_ids: true,
  });
  const lp = generated.choices[0].logprobs;
  const ids = lp.tokens.map((t) => Number(t.slice('token_id:'.length)));
  const resent = [...promptIds, ...ids.slice(0, 7)];
  const scored = await suite.client.completions.create({
    ...greedy, prompt: resent, max_tokens: 1, prompt_logprobs: 3,
  });
  const prompt = scored.choices[0].prompt_logprobs;
  assert.equal(prompt.length, resent.length);
  assert.equal(prompt[0], null);
  for (let i = 1; i < resent.length; i++) {
    const own = prompt[i][String(resent[i])];
    assert.ok(own, `position ${i} names its prompt token`);
    assert.ok(own.rank >= 1 && own.logprob <= 0 && typeof own.decoded_token === 'string');
    assert.ok(Object.keys(prompt[i]).length >= 3 && Object.keys(prompt[i]).length <= 4);
  }
  // Prefill and decode round the bf16 KV cache and attention differently: a few hundredths apart.
  for (let j = 0; j < 7; j++) {
    const own = prompt[promptIds.length + j][String(ids[j])];
    assert.ok(Math.abs(own.logprob - lp.token_logprobs[j]) < 0.1,
      `token ${j}: prompt logprob ${own.logprob}, generated with ${lp.token_logprobs[j]}`);
    const alternatives = Object.values(lp.top_logprobs[j]).sort((a, b) => b - a);
    if (alternatives[0] - alternatives[1] > 0.1) assert.equal(own.rank, 1, `token ${j} was the argmax`);
  }
  // The last position's logits gave the first generated token: the same prompt continues the same.
  assert.equal(scored.choices[0].text, (await suite.client.completions.create({ ...greedy, prompt: resent, max_tokens: 1 })).choices[0].text);
});

test('echo with logprobs: the prompt tokens lead the logprobs, the first one null', async () => {
  const body = { ...greedy, prompt: 'Echo me back', max_tokens: 3, ignore_eos: true, logprobs: 2 };
  const count = (await (await fetch(`${suite.server.url}/tokenize`, { method: 'POST', body: JSON.stringify({ prompt: body.prompt }) })).json()).count;
  const plain = await suite.client.completions.create(body);
  const echoed = await suite.client.completions.create({ ...body, echo: true });
  const withPrompt = await suite.client.completions.create({ ...body, prompt_logprobs: 2 });
  const e = echoed.choices[0];
  assert.equal(e.text, body.prompt + plain.choices[0].text);
  assert.equal(e.logprobs.tokens.length, count + 3);
  assert.equal(e.logprobs.tokens.join(''), e.text);
  assert.equal(e.logprobs.token_logprobs[0], null);
  assert.equal(e.logprobs.top_logprobs[0], null);
  assert.equal(e.logprobs.text_offset[0], 0);
  for (let i = 1; i < e.logprobs.text_offset.length; i++) assert.ok(e.logprobs.text_offset[i] >= e.logprobs.text_offset[i - 1]);
  // The echoed prompt logprobs are prompt_logprobs; the generated part is what no echo gives.
  const scored = withPrompt.choices[0].prompt_logprobs;
  for (let i = 1; i < count; i++) {
    const own = Object.values(scored[i]).find((entry) => entry.decoded_token === e.logprobs.tokens[i]);
    assert.ok(own && Math.abs(own.logprob - e.logprobs.token_logprobs[i]) < 1e-5, `prompt position ${i}`);
    assert.equal(Object.keys(e.logprobs.top_logprobs[i]).length <= 2, true);
  }
  const generatedLogprobs = plain.choices[0].logprobs.token_logprobs;
  e.logprobs.token_logprobs.slice(count).forEach((value, j) => assert.ok(Math.abs(value - generatedLogprobs[j]) < 1e-3));
  assert.equal(withPrompt.choices[0].text, plain.choices[0].text);

  // Streaming: the prompt and its logprobs come with the first token.
  const stream = await suite.client.completions.create({ ...body, echo: true, stream: true });
  let text = '';
  const tokens = [];
  for await (const chunk of stream) {
    text += chunk.choices[0].text;
    if (chunk.choices[0].logprobs) tokens.push(...chunk.choices[0].logprobs.tokens);
  }
  assert.equal(text, e.text);
  assert.deepEqual(tokens, e.logprobs.tokens);
});

test('echo with max_tokens 0 scores the prompt alone (lm-eval loglikelihood)', async () => {
  const body = { ...greedy, prompt: 'Score this prompt', echo: true, logprobs: 1 };
  const scoredOnly = await suite.client.completions.create({ ...body, max_tokens: 0 });
  const withOutput = await suite.client.completions.create({ ...body, max_tokens: 2 });
  const count = (await (await fetch(`${suite.server.url}/tokenize`, { method: 'POST', body: JSON.stringify({ prompt: body.prompt }) })).json()).count;
  const c = scoredOnly.choices[0];
  assert.equal(c.text, body.prompt);
  assert.equal(c.finish_reason, 'length');
  assert.equal(scoredOnly.usage.completion_tokens, 0);
  assert.equal(c.logprobs.tokens.length, count);
  assert.deepEqual(c.logprobs.tokens, withOutput.choices[0].logprobs.tokens.slice(0, count));
  c.logprobs.token_logprobs.slice(1).forEach((value, i) =>
    assert.ok(Math.abs(value - withOutput.choices[0].logprobs.token_logprobs[i + 1]) < 1e-5, `position ${i + 1}`));
  await assert.rejects(suite.client.completions.create({ ...greedy, prompt: 'x', max_tokens: 0 }),
    (error) => error.status === 400 && error.error?.param === 'max_tokens');
});

test('prompt_logprobs over 20, below 0 or with a stream: 400 naming prompt_logprobs', async () => {
  for (const extra of [{ prompt_logprobs: 21 }, { prompt_logprobs: -1 }, { prompt_logprobs: 1, stream: true }]) {
    await assert.rejects(
      suite.client.completions.create({ ...greedy, prompt: 'x', ...extra }),
      (error) => error.status === 400 && error.error?.param === 'prompt_logprobs' && /prompt_logprobs/.test(error.message),
    );
  }
  const r = await suite.client.completions.create({ ...greedy, prompt: 'still serving', max_tokens: 2 });
  assert.equal(r.choices.length, 1);
});

test('/v1/models lists the model with max_model_len; /health is 200', async () => {
  const models = await suite.client.models.list();
  assert.equal(models.data[0].id, MODEL_NAME);
  assert.ok(models.data[0].max_model_len > 0);
  assert.equal((await curl(`${suite.server.url}/health`)).status, 200);
});
