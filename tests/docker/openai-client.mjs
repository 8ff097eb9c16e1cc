// The containerised server through the official openai npm client (the integration tests' pinned
// copy, tests/integration/client/node_modules): one completion and one stream.
//   node tests/docker/openai-client.mjs BASE_URL MODEL
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [baseURL, model] = process.argv.slice(2);
const require = createRequire(new URL('../integration/client/package.json', import.meta.url));
const mod = await import(pathToFileURL(require.resolve('openai')).href);
const OpenAI = mod.OpenAI ?? mod.default.OpenAI ?? mod.default;
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });

const done = await client.completions.create({ model, prompt: 'Paged attention is', max_tokens: 8, temperature: 0 });
assert.equal(done.choices[0].finish_reason, 'length');
assert.equal(done.usage.completion_tokens, 8);
console.log(`openai completion: ${JSON.stringify(done.choices[0].text)} usage ${JSON.stringify(done.usage)}`);

const stream = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0,
  ignore_eos: true, stream: true, stream_options: { include_usage: true } });
let text = '';
let chunks = 0;
let finish = null;
let usage = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.text;
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.equal(finish, 'length');
assert.equal(usage.completion_tokens, 16);
console.log(`openai stream: ${chunks} chunks, ${JSON.stringify(text)}, finish ${finish}`);
