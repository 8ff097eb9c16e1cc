// bench_serve (bench/serve) against the real server on loopback: a closed-loop run whose JSON must
// add up (every request completed with exactly --output-len tokens under --ignore-eos, ordered
// percentiles, ITL gaps per request), whose --scrape-metrics p50s must roughly agree with the
// client's own (loosely: histogram buckets are coarse and CI machines slow; the 10% check runs
// on the GPU machine), and a run with the wrong API key whose failures are counted, not fatal.
// Environment: BENCH_SERVE_BIN, the bench_serve executable (tests/integration/CMakeLists.txt).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, MODEL_NAME } from './server.mjs';

const execFileP = promisify(execFile);
const KEY = 'bench-secret';
let server;
let dir;

before(async () => {
  server = await startServer(['--api-key', KEY]);
  dir = await mkdtemp(path.join(tmpdir(), 'bench-serve-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
  const { code } = await server.stop();
  assert.equal(code, 0, server.log());
});

async function benchServe(args) {
  const bin = process.env.BENCH_SERVE_BIN;
  if (!bin) throw new Error('BENCH_SERVE_BIN must be set');
  const resultFile = path.join(dir, `result-${Date.now()}.json`);
  const { stdout } = await execFileP(bin, ['--port', String(server.port), '--no-progress', '--result-file', resultFile, ...args],
    { timeout: 240000 });
  return { stdout, result: JSON.parse(await readFile(resultFile, 'utf8')) };
}

function assertOrdered(r, name) {
  const [median, p90, p99] = ['median', 'p90', 'p99'].map((p) => r[`${p}_${name}_ms`]);
  assert.ok(median > 0 && median <= p90 && p90 <= p99, `${name}: median ${median} p90 ${p90} p99 ${p99}`);
}

// Both p50s come out of the same buckets (the client's samples counted into the server's), so
// bucket width cancels; what is left is the HTTP/tokenizer time the server does not see and a
// busy CI machine: within a factor of 3, plus 10 ms.
function assertAgrees(server, client, what) {
  assert.ok(server <= 3 * client + 10 && server >= client / 3 - 10, `${what}: server p50 ${server} ms, client ${client} ms`);
}

test('16 prompts, concurrency 4, 32 in / 16 out: all complete, figures consistent, server p50s agree', async () => {
  const { stdout, result: r } = await benchServe(['--api-key', KEY, '--num-prompts', '16', '--max-concurrency', '4',
    '--input-len', '32', '--output-len', '16', '--ignore-eos', '--seed', '1', '--scrape-metrics']);
  assert.match(stdout, /Serving Benchmark Result/);
  assert.match(stdout, /Server median TTFT \(ms\):/);
  assert.equal(r.model_id, MODEL_NAME, 'the model comes from /v1/models');
  assert.equal(r.completed, 16, JSON.stringify(r.errors));
  assert.equal(r.failed, 0);
  assert.equal(r.total_input_tokens, 16 * 32);
  assert.equal(r.total_output_tokens, 16 * 16);
  assert.deepEqual(r.output_lens, Array(16).fill(16));
  assert.ok(r.duration > 0);
  assert.ok(Math.abs(r.output_throughput - r.total_output_tokens / r.duration) < 1e-6 * r.output_throughput);
  assert.ok(Math.abs(r.request_throughput - 16 / r.duration) < 1e-6 * r.request_throughput);
  for (const name of ['ttft', 'tpot', 'itl', 'e2el']) assertOrdered(r, name);
  for (let i = 0; i < 16; i++) {
    assert.ok(r.ttfts[i] > 0 && r.ttfts[i] < r.e2els[i], `request ${i}: ttft ${r.ttfts[i]} e2e ${r.e2els[i]}`);
    // At most one chunk per token (a token ending inside a UTF-8 character sends none); every gap
    // lies inside the request.
    assert.ok(r.itls[i].length >= 1 && r.itls[i].length <= 15, `request ${i}: ${r.itls[i].length} gaps`);
    const gaps = r.itls[i].reduce((a, b) => a + b, 0);
    assert.ok(gaps <= r.e2els[i] - r.ttfts[i] + 1e-6, `request ${i}: gaps ${gaps}`);
  }
  const s = r.server_metrics;
  assert.match(s.ttft_histogram, /^pagedserve[:_]time_to_first_token_seconds$/);
  assert.equal(s.ttft_count, 16);
  assert.equal(s.tpot_count, 16);
  assertAgrees(s.median_ttft_ms, s.client_median_ttft_ms_in_server_buckets, 'TTFT');
  assertAgrees(s.median_tpot_ms, s.client_median_tpot_ms_in_server_buckets, 'TPOT');
  // The bucketed client figure stays near the exact one (same sign, within the coarsest bucket).
  assert.ok(s.client_median_ttft_ms_in_server_buckets <= 2.5 * r.median_ttft_ms + 10);
});

test('Poisson arrivals at 20 req/s, model named: all complete', async () => {
  const { result: r } = await benchServe(['--api-key', KEY, '--model', MODEL_NAME, '--num-prompts', '8',
    '--request-rate', '20', '--input-len', '8', '--output-len', '2', '--seed', '5']);
  assert.equal(r.completed, 8, JSON.stringify(r.errors));
  assert.equal(r.request_rate, 20);
});

test('a wrong API key: every request fails with the 401, and the run still reports', async () => {
  const { stdout, result: r } = await benchServe(['--api-key', 'wrong', '--model', MODEL_NAME, '--num-prompts', '4',
    '--input-len', '8', '--output-len', '4']);
  assert.equal(r.completed, 0);
  assert.equal(r.failed, 4);
  for (const e of r.errors) assert.match(e, /^HTTP 401: .*API key/);
  assert.match(stdout, /first failure: HTTP 401/);
});
