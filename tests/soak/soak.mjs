// The soak driver (tests/soak/run.sh is its front door): starts the server, runs the traffic of
// traffic.mjs from a few clients, and every --sample-seconds pauses it, lets it drain and samples
// the server's RSS, open fds and threads; then checks growth, 5xx and the request accounting.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startServer, waitForIdle, metricsText, metricValue, metricSum, seededRandom, MODEL_NAME }
  from '../integration/client/server.mjs';
import { Traffic } from './traffic.mjs';

const { values: args } = parseArgs({ options: {
  minutes: { type: 'string', default: '60' },
  'sample-seconds': { type: 'string', default: '60' },
  'warmup-minutes': { type: 'string' },
  concurrency: { type: 'string', default: '3' },
  'think-ms': { type: 'string', default: '20' },
  seed: { type: 'string', default: '15' },
  out: { type: 'string' },
} });
const minutes = Number(args.minutes);
const sampleMs = Number(args['sample-seconds']) * 1000;
const warmupMinutes = Number(args['warmup-minutes'] ?? (minutes >= 30 ? 10 : 1));
const concurrency = Number(args.concurrency);
const thinkMs = Number(args['think-ms']);
const GROWTH_LIMIT = 0.05;

// The server's RSS, threads and open fds, and the CPU seconds of both processes so far (utime +
// stime from /proc/PID/stat, in clock ticks of 1/100 s; this process's from process.cpuUsage()).
function processSample(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))[1]);
  const statLine = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const stat = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');  // from field 3 (state) on
  const client = process.cpuUsage();
  return { rssKiB: field('VmRSS'), threads: field('Threads'), fds: readdirSync(`/proc/${pid}/fd`).length,
    serverCpuS: (Number(stat[11]) + Number(stat[12])) / 100, clientCpuS: (client.user + client.system) / 1e6 };
}

// One kernel thread and two HTTP threads: with the 3 clients, about one core in all. A KV cache of
// 8,192 tokens (tiny-qwen3: 2 KiB a token), which the warm-up fills.
const KV_TOKENS = 8192;
const server = await startServer(['--threads', '1', '--http-threads', '2', '--max-body-bytes', '64KiB',
  '--kv-cache-memory', '16MiB']);
const traffic = new Traffic(server.port, seededRandom(Number(args.seed)));  // the same seed, the same traffic
const started = Date.now();
const endAt = started + minutes * 60000;
const samples = [];
console.log(`soak: ${minutes} min, ${concurrency} clients, a sample every ${sampleMs / 1000} s, ` +
  `warm-up ${warmupMinutes} min, server pid ${server.pid} at ${server.url}`);

// Traffic until the next sample is due; then the clients stop taking new requests and return.
async function runUntil(deadline) {
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < deadline) {
      await traffic.one();
      await new Promise((r) => setTimeout(r, thinkMs));  // think time keeps it near one core
    }
  }));
}

async function sample() {
  traffic.resetConnections();
  await waitForIdle(server.url);
  await new Promise((r) => setTimeout(r, 300));  // the server's side of the closed connections
  const s = { minute: (Date.now() - started) / 60000, requests: traffic.tally.sent, ...processSample(server.pid) };
  samples.push(s);
  console.log(`  ${s.minute.toFixed(1).padStart(5)} min  ${String(s.requests).padStart(7)} requests  ` +
    `RSS ${(s.rssKiB / 1024).toFixed(1)} MiB  fds ${s.fds}  threads ${s.threads}  ` +
    `CPU s: server ${s.serverCpuS.toFixed(0)}, client ${s.clientCpuS.toFixed(0)}`);
}

await sample();  // at start, before any traffic
await traffic.warmUp(KV_TOKENS);
while (Date.now() < endAt) {
  await runUntil(Math.min(endAt, Date.now() + sampleMs));
  await sample();
}

// The verdict.
const failures = [];
const warm = samples.find((s) => s.minute >= warmupMinutes) ?? samples[samples.length - 1];
const after = samples.filter((s) => s.minute > warm.minute);
const growth = {};
for (const key of ['rssKiB', 'fds', 'threads']) {
  const peak = Math.max(warm[key], ...after.map((s) => s[key]));
  growth[key] = peak / warm[key] - 1;
  if (growth[key] > GROWTH_LIMIT) {
    failures.push(`${key} grew ${(100 * growth[key]).toFixed(1)}% after warm-up (${warm[key]} -> ${peak})`);
  }
}
if (after.length === 0) failures.push('no sample after the warm-up: run longer than --warmup-minutes');
const tally = traffic.tally;
const text = await metricsText(server.url);
const served = metricSum(text, 'pagedserve_request_success_total');
const aborted = metricValue(text, `pagedserve_request_success_total{model_name="${MODEL_NAME}",finished_reason="abort"}`);
const answered = Object.values(tally.byStatus).reduce((a, b) => a + b, 0);
if (tally.fiveHundreds > 0) failures.push(`${tally.fiveHundreds} responses were 5xx`);
if (tally.transportErrors > 0) failures.push(`${tally.transportErrors} transport errors`);
if (tally.unexpectedCount > 0) failures.push(`${tally.unexpectedCount} unexpected statuses: ${tally.unexpected.join(', ')}`);
if (answered + tally.transportErrors !== tally.sent) failures.push(`sent ${tally.sent}, accounted ${answered + tally.transportErrors}`);
if (served !== tally.engineRequests) failures.push(`the server finished ${served} engine requests, the client caused ${tally.engineRequests}`);
if (aborted > tally.cancels) failures.push(`${aborted} aborts for ${tally.cancels} hang-ups`);
const last = samples[samples.length - 1];
const cores = (last.serverCpuS + last.clientCpuS) / (last.minute * 60);
const { code } = await server.stop();
if (code !== 0) failures.push(`exit code ${code}`);

const summary = {
  minutes, concurrency, cores, samples, warmSample: warm, growth, sent: tally.sent, byKind: tally.byKind,
  byStatus: tally.byStatus, cancels: tally.cancels, engineRequests: tally.engineRequests,
  serverSuccessTotal: served, serverAborts: aborted, exitCode: code, failures,
};
if (args.out) writeFileSync(args.out, JSON.stringify(summary, null, 2));
console.log(`requests ${tally.sent} (${JSON.stringify(tally.byStatus)}), hang-ups ${tally.cancels}; ` +
  `engine requests: client ${tally.engineRequests}, server ${served} (${aborted} aborted)`);
console.log(`CPU: ${cores.toFixed(2)} cores on average (server ${last.serverCpuS.toFixed(0)} s, client ` +
  `${last.clientCpuS.toFixed(0)} s in ${(last.minute * 60).toFixed(0)} s)`);
console.log(`growth after warm-up (${warm.minute.toFixed(1)} min): RSS ${(100 * growth.rssKiB).toFixed(1)}%, ` +
  `fds ${(100 * growth.fds).toFixed(1)}%, threads ${(100 * growth.threads).toFixed(1)}%`);
console.log(failures.length ? `SOAK FAILED:\n  ${failures.join('\n  ')}` : 'SOAK PASSED');
process.exit(failures.length ? 1 : 0);
