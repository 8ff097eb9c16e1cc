// The rest of the OpenAI/vLLM request surface with the official `openai` client against the real
// binary and the tiny model: logit_bias, return_tokens_as_token_ids, usage's cached_tokens,
// skip_special_tokens, suffix/best_of refusals, /tokenize with messages, and n > 1 computing its
// prompt once (measured on /metrics). The tiny model's weights are random, so checks compare the
// server with itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { serveSuite, curl, metricsText, metricValue, MODEL_NAME } from './server.mjs';

const suite = serveSuite();

const greedy = { model: MODEL_NAME, temperature: 0, max_tokens: 4, ignore_eos: true };
const PAGE = 16;  // --page-size default

async function tokenize(body) {
  const r = await curl(`${suite.server.url}/tokenize`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body);
}

// `count` ids of ordinary tokens, different for each salt (prefix-cache tests need fresh prompts).
function idPrompt(count, salt) {
  return Array.from({ length: count }, (_, i) => 1000 + ((i * 7919 + salt * 104729) % 20000));
}

test('logit_bias: +100 forces a token, -100 bans the greedy one, on both APIs', async () => {
  const [word] = (await tokenize({ prompt: ' the', add_special_tokens: false })).tokens;
  const detok = await curl(`${suite.server.url}/detokenize`, { method: 'POST', body: JSON.stringify({ tokens: [word] }) });
  const wordText = JSON.parse(detok.body).prompt;
  assert.ok(wordText.length > 0);
  const forced = await suite.client.completions.create({
    ...greedy, prompt: 'Hello', logprobs: 1, logit_bias: { [String(word)]: 100 }, return_tokens_as_token_ids: true,
  });
  assert.deepEqual(forced.choices[0].logprobs.tokens, Array(4).fill(`token_id:${word}`));
  assert.equal(forced.choices[0].text, wordText.repeat(4));

  const plain = await suite.client.completions.create({ ...greedy, prompt: 'Hello', logprobs: 0, return_tokens_as_token_ids: true });
  const first = Number(plain.choices[0].logprobs.tokens[0].slice('token_id:'.length));
  const banned = await suite.client.completions.create({
    ...greedy, prompt: 'Hello', logprobs: 0, return_tokens_as_token_ids: true, logit_bias: { [String(first)]: -100 },
  });
  assert.notEqual(banned.choices[0].logprobs.tokens[0], `token_id:${first}`);

  const chat = await suite.client.chat.completions.create({
    ...greedy, messages: [{ role: 'user', content: 'Hi' }], logit_bias: { [String(word)]: 100 },
  });
  assert.equal(chat.choices[0].message.content, wordText.repeat(4));
});

test('logit_bias out of the vocabulary or range: 400 naming logit_bias; the server keeps serving', async () => {
  for (const bias of [{ 999999999: 1 }, { 5: 101 }, { x: 1 }]) {
    for (const [path, extra] of [['completions', { prompt: 'Hi' }], ['chat/completions', { messages: [{ role: 'user', content: 'Hi' }] }]]) {
      const r = await curl(`${suite.server.url}/v1/${path}`, { method: 'POST', body: JSON.stringify({ ...extra, logit_bias: bias }) });
      assert.equal(r.status, 400, r.body);
      assert.equal(JSON.parse(r.body).error.param, 'logit_bias');
    }
  }
  await assert.rejects(
    suite.client.completions.create({ ...greedy, prompt: 'Hi', logit_bias: { 151669: 3 } }),
    (e) => e instanceof OpenAI.BadRequestError && /vocabulary/.test(e.message),
  );
  assert.equal((await suite.client.completions.create({ ...greedy, prompt: 'Hi' })).choices.length, 1);
});

test('return_tokens_as_token_ids names chat logprobs and top_logprobs by id', async () => {
  const r = await suite.client.chat.completions.create({
    ...greedy, messages: [{ role: 'user', content: 'Hi' }], logprobs: true, top_logprobs: 2, return_tokens_as_token_ids: true,
  });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 4);
  for (const entry of content) {
    assert.match(entry.token, /^token_id:\d+$/);
    assert.equal(entry.top_logprobs.length, 2);
    for (const alt of entry.top_logprobs) assert.match(alt.token, /^token_id:\d+$/);
  }
});

test('usage.prompt_tokens_details.cached_tokens counts the prefix-cache hit', async () => {
  const prompt = idPrompt(100, 1);
  const cold = await suite.client.completions.create({ ...greedy, prompt });
  assert.equal(cold.usage.prompt_tokens_details.cached_tokens, 0);
  const warm = await suite.client.completions.create({ ...greedy, prompt });
  assert.equal(warm.usage.prompt_tokens_details.cached_tokens, Math.floor(99 / PAGE) * PAGE);
  const messages = [{ role: 'system', content: 'x '.repeat(80) }, { role: 'user', content: 'Hi' }];
  await suite.client.chat.completions.create({ ...greedy, messages });
  const chat = await suite.client.chat.completions.create({ ...greedy, messages });
  assert.ok(chat.usage.prompt_tokens_details.cached_tokens >= 80, JSON.stringify(chat.usage));
  assert.ok(chat.usage.prompt_tokens_details.cached_tokens < chat.usage.prompt_tokens);
});

test('skip_special_tokens: false keeps a generated special token in the text', async () => {
  const [imEnd] = (await tokenize({ prompt: '<|im_end|>', add_special_tokens: false })).tokens;
  const body = { ...greedy, prompt: 'Hi', max_tokens: 1, logit_bias: { [String(imEnd)]: 100 } };
  assert.equal((await suite.client.completions.create(body)).choices[0].text, '');
  assert.equal((await suite.client.completions.create({ ...body, skip_special_tokens: false })).choices[0].text, '<|im_end|>');
});

test('suffix and best_of other than n are refused with a 400 that says so', async () => {
  for (const [extra, param] of [[{ suffix: 'end' }, 'suffix'], [{ best_of: 3 }, 'best_of'], [{ n: 2, best_of: 4 }, 'best_of']]) {
    const r = await curl(`${suite.server.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'Hi', ...extra }) });
    assert.equal(r.status, 400, r.body);
    const error = JSON.parse(r.body).error;
    assert.equal(error.param, param);
    assert.match(error.message, /not supported/);
  }
  const same = await suite.client.completions.create({ ...greedy, prompt: 'Hi', n: 2, best_of: 2 });
  assert.equal(same.choices.length, 2);
});

test('/tokenize with messages counts what chat completions prompts with', async () => {
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello!' }];
  const tok = await tokenize({ messages });
  const text = '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n';
  assert.deepEqual(tok.tokens, (await tokenize({ prompt: text, add_special_tokens: false })).tokens);
  assert.equal(tok.count, tok.tokens.length);
  assert.ok(tok.max_model_len > 0);
  const chat = await suite.client.chat.completions.create({ ...greedy, messages });
  assert.equal(chat.usage.prompt_tokens, tok.count);

  const noPrompt = await tokenize({ messages, add_generation_prompt: false });
  assert.equal(noPrompt.count, tok.count - (await tokenize({ prompt: '<|im_start|>assistant\n', add_special_tokens: false })).count);
  const kwargs = await tokenize({ messages, chat_template_kwargs: { enable_thinking: false } });
  assert.equal(kwargs.count - tok.count, (await tokenize({ prompt: '<think>\n\n</think>\n\n', add_special_tokens: false })).count);
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
  const withTools = await tokenize({ messages, tools });
  const chatTools = await suite.client.chat.completions.create({ ...greedy, messages, tools });
  assert.equal(chatTools.usage.prompt_tokens, withTools.count);
  assert.ok(withTools.count > tok.count);
  const cont = await tokenize({
    messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Well,' }],
    add_generation_prompt: false, continue_final_message: true,
  });
  const contText = '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nWell,';
  assert.deepEqual(cont.tokens, (await tokenize({ prompt: contText, add_special_tokens: false })).tokens);

  for (const [body, param] of [[{ messages: [] }, 'messages'], [{ messages, prompt: 'x' }, 'messages'],
    [{ messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role']]) {
    const r = await curl(`${suite.server.url}/tokenize`, { method: 'POST', body: JSON.stringify(body) });
    assert.equal(r.status, 400, r.body);
    assert.equal(JSON.parse(r.body).error.param, param);
  }
});

test('n = 8 on a 1,000-token prompt computes the prompt once', async () => {
  const prompt = idPrompt(1000, 2);
  const hits = (text) => metricValue(text, 'pagedserve_prefix_cache_hits_total');
  const queries = (text) => metricValue(text, 'pagedserve_prefix_cache_queries_total');
  const before = await metricsText(suite.server.url);
  const r = await suite.client.completions.create({ model: MODEL_NAME, prompt, n: 8, max_tokens: 3, temperature: 1, seed: 5, ignore_eos: true });
  const after = await metricsText(suite.server.url);
  assert.equal(r.choices.length, 8);
  assert.equal(r.usage.prompt_tokens, 1000);
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, 0);  // the first choice computed it
  // Every choice looked its 1,000 tokens up; 7 found the 62 full pages (992 tokens) the first
  // one computed and copied its partly filled last page (7 tokens), so 1,000 + 7 x 1 prompt tokens
  // ran through the model instead of 8,000 (the engine test counts them).
  assert.equal(queries(after) - queries(before), 8 * 1000);
  assert.equal(hits(after) - hits(before), 7 * 992);
});
