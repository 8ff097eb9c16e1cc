// `pagedserve generate` (offline, no HTTP): the completion goes to stdout, logs to stderr, and the
// greedy text equals what the server answers for the same request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, MODEL_NAME } from './server.mjs';

const execFileP = promisify(execFile);

function generateArgs(extra) {
  const args = ['generate', '--model', process.env.PAGEDSERVE_MODEL, '--threads', '2', '--kv-cache-memory', '64MiB'];
  if (process.env.PAGEDSERVE_LOAD_FORMAT) args.push('--load-format', process.env.PAGEDSERVE_LOAD_FORMAT);
  return [...args, ...extra];
}

test('generate: greedy output equals the server; a seed reproduces', async () => {
  const prompt = 'The engine loop';
  const greedy = await execFileP(process.env.PAGEDSERVE_BIN,
    generateArgs(['--prompt', prompt, '--max-tokens', '10', '--temperature', '0', '--ignore-eos']));
  assert.match(greedy.stderr, /finish_reason=length prompt_tokens=\d+ completion_tokens=10/);
  const seeded = ['--prompt', prompt, '--max-tokens', '10', '--temperature', '1', '--seed', '99'];
  const a = await execFileP(process.env.PAGEDSERVE_BIN, generateArgs(seeded));
  const b = await execFileP(process.env.PAGEDSERVE_BIN, generateArgs(seeded));
  assert.equal(a.stdout, b.stdout);

  const server = await startServer();
  try {
    const r = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: MODEL_NAME, prompt, max_tokens: 10, temperature: 0, ignore_eos: true }),
    });
    const body = await r.json();
    assert.equal(greedy.stdout, body.choices[0].text + '\n');
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

test('generate: bad flags exit 2 with a message; a missing model exits 1 naming it', async () => {
  await assert.rejects(execFileP(process.env.PAGEDSERVE_BIN, ['generate', '--model', 'x', '--temperature', 'hot']),
    (e) => e.code === 2 && /--temperature/.test(e.stderr));
  await assert.rejects(execFileP(process.env.PAGEDSERVE_BIN, ['generate', '--model', '/nonexistent/model', '--prompt', 'x']),
    (e) => e.code === 1 && /\/nonexistent\/model/.test(e.stderr));
});

test('generate --backend cuda: runs where a GPU is, refuses in one line where none is', async () => {
  const { existsSync } = await import('node:fs');
  const args = generateArgs(['--backend', 'cuda', '--prompt', 'x', '--max-tokens', '2', '--temperature', '0']);
  if (existsSync('/dev/nvidiactl')) {
    const r = await execFileP(process.env.PAGEDSERVE_BIN, args);
    assert.match(r.stderr, /completion_tokens=2/);
    return;
  }
  await assert.rejects(execFileP(process.env.PAGEDSERVE_BIN, args), (e) => {
    assert.equal(e.code, 1, e.stderr);
    // No driver or no GPU (or a build without nvcc): the reason, naming the flag, on one line.
    assert.match(e.stderr, /--backend cuda.*(no usable CUDA driver or GPU|no CUDA GPU found|no CUDA backend)/);
    return true;
  });
});
