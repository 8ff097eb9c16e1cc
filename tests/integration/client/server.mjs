// Starts the real `pagedserve serve` on 127.0.0.1 with a free port (--port 0, read back from its
// log) and the tiny model, waits for /health, and stops it with SIGTERM.
// Environment (set by tests/integration/CMakeLists.txt / run-server-tests.sh):
//   PAGEDSERVE_BIN     the executable
//   PAGEDSERVE_MODEL   the model directory (models/tiny-qwen3)
//   PAGEDSERVE_LOAD_FORMAT  optional: "dummy" for a config+tokenizer-only directory
//   PAGEDSERVE_SERVE_ARGS   optional: more serve flags, space-separated (e.g. "--backend cuda" on the GPU machine)
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const MODEL_NAME = 'tiny-model';

export async function startServer(extraArgs = [], { timeoutMs = 120000 } = {}) {
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
      const r = await fetch(`${url}/health`);
      if (r.status === 200) break;
    } catch { /* not accepting yet */ }
    if (Date.now() > deadline) throw new Error(`/health never became 200:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    log: () => log,
    // SIGTERM, then the exit status (graceful shutdown exits 0).
    async stop() {
      if (child.exitCode !== null) return { code: child.exitCode };
      child.kill('SIGTERM');
      return exited;
    },
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

export async function metricsText(url) {
  const r = await fetch(`${url}/metrics`);
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
