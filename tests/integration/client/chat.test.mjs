// POST /v1/chat/completions with the official `openai` client against the real binary and the
// tiny model (random weights: texts are arbitrary, so the checks compare the server with itself
// and with the chat template's prompt as /tokenize counts it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveSuite, startServer, curl, MODEL_NAME } from './server.mjs';

const suite = serveSuite();

const greedy = { model: MODEL_NAME, temperature: 0, max_tokens: 10 };
const hello = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello!' }];

async function tokenCount(prompt) {
  const r = await curl(`${suite.server.url}/tokenize`, {
    method: 'POST', body: JSON.stringify({ prompt, add_special_tokens: false }),
  });
  return JSON.parse(r.body).count;
}

test('chat: shape, usage, and the prompt is the Qwen3 template of the messages', async () => {
  const r = await suite.client.chat.completions.create({ ...greedy, messages: hello });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL_NAME);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  const prompt = '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n';
  assert.equal(r.usage.prompt_tokens, await tokenCount(prompt));
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('chat streaming equals non-streaming (greedy): role first, content deltas, usage, [DONE]', async () => {
  const body = { ...greedy, messages: hello, ignore_eos: true };
  const whole = await suite.client.chat.completions.create(body);
  const stream = await suite.client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let first = true;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.match(chunk.id, /^chatcmpl-/);
    if (chunk.usage) {
      usage = chunk.usage;
      assert.equal(chunk.choices.length, 0);
      continue;
    }
    if (first) assert.equal(chunk.choices[0].delta.role, 'assistant');
    first = false;
    text += chunk.choices[0].delta.content ?? '';
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, 'length');
  assert.deepEqual(usage, whole.usage);
});

test('max_completion_tokens, n, seed and logprobs with top_logprobs', async () => {
  const r = await suite.client.chat.completions.create({
    model: MODEL_NAME, messages: hello, max_completion_tokens: 4, ignore_eos: true, n: 2, seed: 7,
    logprobs: true, top_logprobs: 2,
  });
  assert.equal(r.choices.length, 2);
  for (const choice of r.choices) {
    assert.equal(choice.finish_reason, 'length');
    assert.equal(choice.logprobs.content.length, 4);
    for (const t of choice.logprobs.content) {
      assert.equal(typeof t.token, 'string');
      assert.ok(t.logprob <= 0);
      assert.ok(Array.isArray(t.bytes));
      assert.equal(t.top_logprobs.length, 2);
    }
    assert.equal(choice.logprobs.content.map((t) => t.token).join(''), choice.message.content);
  }
  assert.equal(r.usage.completion_tokens, 8);
});

test('chat_template_kwargs, text parts and continue_final_message reach the template', async () => {
  const plain = await suite.client.chat.completions.create({ ...greedy, messages: [{ role: 'user', content: 'Hi' }] });
  const noThinking = await suite.client.chat.completions.create({
    ...greedy, messages: [{ role: 'user', content: 'Hi' }], chat_template_kwargs: { enable_thinking: false },
  });
  assert.equal(noThinking.usage.prompt_tokens - plain.usage.prompt_tokens, await tokenCount('<think>\n\n</think>\n\n'));
  const parts = await suite.client.chat.completions.create({
    ...greedy, messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
  });
  assert.equal(parts.usage.prompt_tokens, plain.usage.prompt_tokens);
  const cont = await suite.client.chat.completions.create({
    ...greedy, add_generation_prompt: false, continue_final_message: true,
    messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Well,' }],
  });
  // Qwen3's template gives the turn after the last user message an empty think block.
  const prompt = '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nWell,';
  assert.equal(cont.usage.prompt_tokens, await tokenCount(prompt));
});

test('chat prompt_logprobs: one list at the top of the response, one entry per prompt token', async () => {
  const r = await suite.client.chat.completions.create({ ...greedy, messages: hello, max_tokens: 2, prompt_logprobs: 1 });
  assert.equal(r.prompt_logprobs.length, r.usage.prompt_tokens);
  assert.equal(r.prompt_logprobs[0], null);
  for (const position of r.prompt_logprobs.slice(1)) {
    const entries = Object.values(position);
    assert.ok(entries.length >= 1 && entries.length <= 2);
    assert.ok(entries.some((entry) => entry.rank === 1));
  }
  assert.equal(r.choices[0].prompt_logprobs, undefined);
  const plain = await suite.client.chat.completions.create({ ...greedy, messages: hello, max_tokens: 2 });
  assert.equal(plain.prompt_logprobs, undefined);
  assert.equal(plain.choices[0].message.content, r.choices[0].message.content);
});

test('bad chat bodies get a 400 with an OpenAI error body; the server keeps serving', async () => {
  const cases = [
    [{ messages: [] }, 'messages'],
    [{ messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
    [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] }] },
      'messages[0].content'],
    [{ messages: hello, max_completion_tokens: 0 }, 'max_completion_tokens'],
    [{ messages: hello, logprobs: true, top_logprobs: 99 }, 'top_logprobs'],
    [{ messages: hello, add_generation_prompt: true, continue_final_message: true }, 'continue_final_message'],
  ];
  for (const [body, param] of cases) {
    const r = await curl(`${suite.server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(body) });
    assert.equal(r.status, 400, r.body);
    const error = JSON.parse(r.body).error;
    assert.equal(error.type, 'invalid_request_error');
    assert.equal(error.param, param, r.body);
  }
  await assert.rejects(
    suite.client.chat.completions.create({ ...greedy, messages: [{ role: 'user', content: [{ type: 'input_audio' }] }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400,
  );
  const ok = await suite.client.chat.completions.create({ ...greedy, messages: hello });
  assert.equal(ok.object, 'chat.completion');
});

test('tools: shown to the template and validated; output without a call stays content', async () => {
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather', description: 'Weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  }];
  const body = { ...greedy, messages: hello, ignore_eos: true };
  const plain = await suite.client.chat.completions.create(body);
  const r = await suite.client.chat.completions.create({ ...body, tools, tool_choice: 'auto' });
  assert.ok(r.usage.prompt_tokens > plain.usage.prompt_tokens, 'the Qwen3 template lists the tools');
  const message = r.choices[0].message;
  // Random weights: a well-formed <tool_call> is not expected, so the text is content as it was.
  if (!message.tool_calls) {
    assert.equal(typeof message.content, 'string');
    const stream = await suite.client.chat.completions.create({ ...body, tools, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, message.content);
  }
  for (const [extra, param] of [
    [{ tools: [{ type: 'function' }] }, 'tools[0].function'],
    [{ tools, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice'],
    [{ tool_choice: 'required' }, 'tool_choice'],
  ]) {
    const bad = await curl(`${suite.server.url}/v1/chat/completions`, {
      method: 'POST', body: JSON.stringify({ messages: hello, ...extra }),
    });
    assert.equal(bad.status, 400, bad.body);
    assert.equal(JSON.parse(bad.body).error.param, param, bad.body);
  }
});

test('a model without a chat template: 400 that says how to add one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagedserve-no-template-'));
  const model = process.env.PAGEDSERVE_MODEL;
  for (const name of readdirSync(model)) {
    if (name !== 'tokenizer_config.json' && name !== 'chat_template.jinja') symlinkSync(join(model, name), join(dir, name));
  }
  const config = JSON.parse(readFileSync(join(model, 'tokenizer_config.json'), 'utf8'));
  delete config.chat_template;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  const bare = await startServer(['--model', dir]);
  try {
    const r = await curl(`${bare.url}/v1/chat/completions`, {
      method: 'POST', body: JSON.stringify({ messages: hello, max_tokens: 2 }),
    });
    assert.equal(r.status, 400, r.body);
    assert.match(JSON.parse(r.body).error.message, /chat_template/);
    const completion = await curl(`${bare.url}/v1/completions`, {
      method: 'POST', body: JSON.stringify({ prompt: 'still fine', max_tokens: 2 }),
    });
    assert.equal(completion.status, 200, completion.body);
  } finally {
    assert.equal((await bare.stop()).code, 0, bare.log());
  }
  // --chat-template FILE gives the same model a template: the prompt is exactly what it renders.
  const templateFile = join(dir, 'plain.jinja');
  writeFileSync(templateFile, '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant] ');
  const templated = await startServer(['--model', dir, '--chat-template', templateFile]);
  try {
    const r = await curl(`${templated.url}/v1/chat/completions`, {
      method: 'POST', body: JSON.stringify({ messages: hello, max_tokens: 2 }),
    });
    assert.equal(r.status, 200, r.body);
    const tokens = await curl(`${templated.url}/tokenize`, {
      method: 'POST', body: JSON.stringify({ prompt: hello.map((m) => `[${m.role}] ${m.content}\n`).join('') + '[assistant] ', add_special_tokens: false }),
    });
    assert.equal(JSON.parse(r.body).usage.prompt_tokens, JSON.parse(tokens.body).count, tokens.body);
  } finally {
    assert.equal((await templated.stop()).code, 0, templated.log());
    rmSync(dir, { recursive: true, force: true });
  }
});
