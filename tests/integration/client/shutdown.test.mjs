// Graceful SIGTERM: the server stops accepting, lets the in-flight stream finish, then exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, MODEL_NAME } from './server.mjs';

test('SIGTERM mid-stream: the stream completes, new connections are refused, exit 0', async () => {
  const server = await startServer(['--shutdown-timeout', '60']);
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const stream = await client.completions.create({ model: MODEL_NAME, prompt: 'A long story:', max_tokens: 120,
    temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  let usage = null;
  let finish = null;
  let stopping = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) if (c.finish_reason) finish = c.finish_reason;
    if (!stopping) {
      stopping = server.stop();
      // Once the acceptor is closed, a new connection is refused.
      let refused = false;
      for (let attempt = 0; attempt < 100 && !refused; attempt++) {
        try {
          await fetch(`${server.url}/health`);
          await new Promise((r) => setTimeout(r, 20));
        } catch {
          refused = true;
        }
      }
      assert.ok(refused, 'new connections are refused while draining');
    }
  }
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 120);
  const { code } = await stopping;
  assert.equal(code, 0, server.log());
  assert.match(server.log(), /all in-flight requests finished/);
});
