// Starts the real `pagedserve serve` on 127.0.0.1 with a free port (--port 0, read back from its
// log) and the tiny model, waits for /health, and stops it with SIGTERM.
// Environment (set by tests/integration/CMakeLists.txt / run-server-tests.sh):
//   PAGEDSERVE_BIN     the executable
//   PAGEDSERVE_MODEL   the model directory (models/tiny-qwen3)
//   PAGEDSERVE_LOAD_FORMAT  optional: "dummy" for a config+tokenizer-only directory
//   PAGEDSERVE_SERVE_ARGS   optional: more serve flags, space-separated (e.g. "--backend cuda" on the GPU machine)
import { spawn, execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const execFileP = promisify(execFile);

export const MODEL_NAME = 'tiny-model';

// `headers` go with the /health polls (an API key under --api-key-for-probes).
export async function startServer(extraArgs = [], { timeoutMs = 120000, headers = {} } = {}) {
  const bin = process.env.PAGEDSERVE_BIN;
  const model = process.env.PAGEDSERVE_MODEL;
  if (!bin || !model) throw new Error('PAGEDSERVE_BIN and PAGEDSERVE_MODEL must be set');
  const args = ['serve', '--model', model, '--served-model-name', MODEL_NAME, '--host', '127.0.0.1',
    '--port', '0', '--kv-cache-memory', '64MiB', '--threads', '2', '--log-level', 'info'];
  if (process.env.PAGEDSERVE_LOAD_FORMAT) args.push('--load-format', process.env.PAGEDSERVE_LOAD_FORMAT);
  if (process.env.PAGEDSERVE_SERVE_ARGS) args.push(...process.env.PAGEDSERVE_SERVE_ARGS.split(' ').filter(Boolean));
  args.push(...extraArgs);
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within ${timeoutMs} ms:\n${log}`)), timeoutMs);
    child.stderr.on('data', (chunk) => {
      log += chunk.toString();
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    exited.then(({ code, signal }) => reject(new Error(`server exited early (${code ?? signal}):\n${log}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/health`, { headers });
      if (r.status === 200) break;
    } catch { /* not accepting yet */ }
    if (Date.now() > deadline) throw new Error(`/health never became 200:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    pid: child.pid,
    log: () => log,
    // Open file descriptors of the server process (sockets included), for leak checks.
    openFds: () => readdirSync(`/proc/${child.pid}/fd`).length,
    // Resolves when the process has exited: { code, signal }.
    exited,
    // SIGTERM, then the exit status (graceful shutdown exits 0).
    async stop() {
      if (child.exitCode !== null) return { code: child.exitCode };
      child.kill('SIGTERM');
      return exited;
    },
  };
}

// The server and `openai` client most suites share: registers the suite's node:test `before`
// (start the server with `extraArgs`, make a client for it) and `after` (SIGTERM; the exit must be
// graceful, code 0). The returned object's `server` and `client` are set once `before` has run.
export function serveSuite(extraArgs = [], clientOptions = {}) {
  const suite = { server: null, client: null };
  before(async () => {
    suite.server = await startServer(extraArgs);
    suite.client = new OpenAI({ baseURL: `${suite.server.url}/v1`, apiKey: 'unused', maxRetries: 0, ...clientOptions });
  });
  after(async () => {
    const { code } = await suite.server.stop();
    assert.equal(code, 0, `graceful SIGTERM exit:\n${suite.server.log()}`);
  });
  return suite;
}

// Polls /metrics until nothing runs, nothing waits and the KV cache is empty, or the deadline
// passes; returns the last exposition text.
export async function waitForIdle(url, { timeoutMs = 30000, headers = {} } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await metricsText(url, headers);
    if (metricValue(text, 'pagedserve_num_requests_running') === 0 &&
        metricValue(text, 'pagedserve_num_requests_waiting') === 0 &&
        metricValue(text, 'pagedserve_kv_cache_usage_perc') === 0) return text;
    if (Date.now() > deadline) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// How every load and fault case ends: nothing running, nothing waiting, the KV cache empty, and
// the server still answering a completion. `headers` go with both (an API key). Returns the
// exposition text.
export async function assertSettled(server, { headers = {} } = {}) {
  const text = await waitForIdle(server.url, { headers });
  assert.equal(metricValue(text, 'pagedserve_num_requests_running'), 0, text);
  assert.equal(metricValue(text, 'pagedserve_num_requests_waiting'), 0, text);
  assert.equal(metricValue(text, 'pagedserve_kv_cache_usage_perc'), 0, text);
  const r = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ model: MODEL_NAME, prompt: 'still there?', max_tokens: 2 }),
  });
  assert.equal(r.status, 200, await r.text());
  return text;
}

// A seeded generator of numbers in [0, 1) (mulberry32): random choices that repeat from run to run.
export function seededRandom(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// curl with the status code on the last line: { status, body }.
export async function curl(url, { method = 'GET', body, headers = [], dataFile } = {}) {
  const args = ['-s', '-S', '-X', method, '-w', '\n%{http_code}', url];
  for (const h of headers) args.push('-H', h);
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', body);
  if (dataFile) args.push('-H', 'Content-Type: application/json', '--data-binary', `@${dataFile}`);
  const { stdout } = await execFileP('curl', args, { maxBuffer: 64 << 20 });
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

export async function metricsText(url, headers = {}) {
  const r = await fetch(`${url}/metrics`, { headers });
  return r.text();
}

// The value of one series, e.g. metricValue(text, 'pagedserve_num_requests_running') (labels ignored
// when the name has none; pass the full series with labels to pick one).
export function metricValue(text, series) {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const name = line.slice(0, space);
    if (name === series || name.replace(/\{.*\}$/, '') === series) return Number(line.slice(space + 1));
  }
  return undefined;
}

export function metricSum(text, name) {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name + '{') || line.startsWith(name + ' ')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

// promtool check metrics: a parse error or any lint finding fails (the names are
// Prometheus-legal, so nothing may be reported). Returns the findings.
export async function promtoolFindings(text) {
  const promtool = process.env.PROMTOOL || 'promtool';
  const result = await new Promise((resolve) => {
    const child = spawn(promtool, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => resolve({ code, out }));
    child.stdin.end(text);
  });
  const other = result.out.split('\n').filter((l) => l.trim());
  if (result.code !== 0) other.push(`promtool exit code ${result.code}`);
  return other;
}
