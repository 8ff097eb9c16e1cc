// Load and fault suite, HTTP: slow heads, 10,000 keep-alive requests on 4 connections, oversize
// and malformed heads, pipelined requests. One server for all (--read-timeout 2, --idle-timeout
// 60); every case ends with the engine idle, the KV cache empty and a completion answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { serveSuite, assertSettled, MODEL_NAME } from './server.mjs';
import { requestText, exchange, parseResponses } from './raw_http.mjs';

const READ_TIMEOUT_S = 2;
const suite = serveSuite(['--read-timeout', String(READ_TIMEOUT_S), '--idle-timeout', '60']);

const completionBody = (extra = {}) => JSON.stringify({ model: MODEL_NAME, prompt: 'Pipes and', max_tokens: 4, ...extra });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Sends `head` a byte every `everyMs`; resolves with the ms from the first byte to the server's
// close (or null when the whole head went through).
function slowHead(head, everyMs) {
  return new Promise((resolve) => {
    const socket = net.connect(suite.server.port, '127.0.0.1');
    let started = 0;
    let done = false;
    const end = (ms) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(ms);
    };
    socket.on('error', () => end(Date.now() - started));
    socket.on('close', () => end(Date.now() - started));
    socket.on('connect', async () => {
      started = Date.now();
      for (const byte of Buffer.from(head)) {
        if (done) return;
        socket.write(Buffer.from([byte]));
        await sleep(everyMs);
      }
      end(null);
    });
  });
}

test('slow heads a byte at a time are closed by the read timeout; others unaffected', async () => {
  // 8 clients, 300-byte heads at one byte per 100 ms (30 s each), beside an idle keep-alive
  // connection that must outlive them (it is under the 60 s idle timeout, not the read timeout).
  const idle = net.connect(suite.server.port, '127.0.0.1');
  let idleClosed = false;
  idle.on('close', () => { idleClosed = true; });
  idle.on('error', () => {});
  const head = requestText('GET', '/health', { headers: { 'X-Pad': 'p'.repeat(250) } });
  const slow = Promise.all(Array.from({ length: 8 }, () => slowHead(head, 100)));
  // Meanwhile: 20 completions (4 of them streamed) all succeed.
  const served = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    const r = await fetch(`${suite.server.url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: completionBody({ stream: i % 5 === 0 }) });
    await r.text();
    return r.status;
  }));
  assert.deepEqual(served, Array(20).fill(200));
  const closedAfter = await slow;
  for (const ms of closedAfter) {
    assert.notEqual(ms, null, 'a slow head went through');
    assert.ok(ms >= READ_TIMEOUT_S * 1000 - 200 && ms < READ_TIMEOUT_S * 1000 + 3000, `closed after ${ms} ms`);
  }
  assert.equal(idleClosed, false, 'the idle connection was closed by the read timeout');
  const reply = await new Promise((resolve) => {
    let data = Buffer.alloc(0);
    idle.on('data', (d) => {
      data = Buffer.concat([data, d]);
      const responses = parseResponses(data);
      if (responses.length) resolve(responses[0]);
    });
    idle.write(requestText('GET', '/health'));
  });
  assert.equal(reply.status, 200);
  idle.destroy();
  console.log(`slow heads closed after ${Math.min(...closedAfter)}-${Math.max(...closedAfter)} ms`);
  await assertSettled(suite.server);
});

test('10,000 keep-alive requests on 4 connections', async () => {
  const TOTAL = 10000;
  const CONNECTIONS = 4;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const sockets = new Set();
  const fdsBefore = suite.server.openFds();
  const call = (i) => new Promise((resolve, reject) => {
    // Every 100th a completion, the rest the cheap routes, so that the HTTP layer is what is loaded.
    const kind = i % 100 === 0 ? 'completion' : ['health', 'models', 'tokenize'][i % 3];
    const options = { agent, host: '127.0.0.1', port: suite.server.port, method: 'GET', path: '/health', headers: {} };
    let body;
    if (kind === 'models') options.path = '/v1/models';
    if (kind === 'tokenize') { options.method = 'POST'; options.path = '/tokenize'; body = JSON.stringify({ prompt: `n ${i}` }); }
    if (kind === 'completion') { options.method = 'POST'; options.path = '/v1/completions'; body = completionBody({ max_tokens: 2 }); }
    if (body) options.headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
    const req = http.request(options, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('socket', (s) => sockets.add(s));
    req.on('error', reject);
    req.end(body);
  });
  const started = Date.now();
  const statuses = new Map();
  let next = 0;
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (next < TOTAL) {
      const status = await call(next++);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  }));
  const seconds = (Date.now() - started) / 1000;
  agent.destroy();
  assert.deepEqual([...statuses], [[200, TOTAL]]);
  assert.ok(sockets.size <= CONNECTIONS, `${sockets.size} connections`);
  await sleep(200);
  assert.ok(suite.server.openFds() <= fdsBefore, `fds ${fdsBefore} -> ${suite.server.openFds()}`);
  console.log(`10,000 keep-alive requests on ${sockets.size} connections: ${seconds.toFixed(1)} s (${(TOTAL / seconds).toFixed(0)}/s)`);
  await assertSettled(suite.server);
});

// [name, bytes]: each must be answered with a 4xx and a close, or closed without a reply
// (an incomplete head is cut by the read timeout); never a 5xx, never left hanging.
const badHeads = [
  ['header block over 16 KiB', requestText('GET', '/health', { headers: { 'X-Big': 'a'.repeat(20000) } })],
  ['request line over 16 KiB', `GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`],
  ['400 headers', requestText('GET', '/health', { headers: Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`X-H${i}`, 'v'.repeat(40)])) })],
  ['body over 4 MiB announced', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n{'],
  ['not HTTP', 'HELLO WORLD\r\n\r\n'],
  ['binary junk', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37 + 11) % 256))],
  ['NUL in the target', 'GET /hea\0lth HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['unknown HTTP version', 'GET /health HTTP/7.3\r\nHost: x\r\n\r\n'],
  ['header without a colon', 'GET /health HTTP/1.1\r\nHost x\r\n\r\n'],
  ['space before the colon', 'GET /health HTTP/1.1\r\nHost : x\r\n\r\n'],
  ['bare LF line ends', 'GET /health HTTP/1.1\nHost: x\n\n'],
  ['negative Content-Length', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'],
  ['Content-Length not a number', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n'],
  ['two different Content-Lengths', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}'],
  ['bad chunk size', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n'],
  ['chunked and Content-Length', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'],
  ['head never finished', 'GET /health HTTP/1.1\r\nHost: x\r\n'],
  ['body shorter than announced', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"prompt":'],
];

test('oversize and malformed heads: 4xx or a close, never a 5xx or a hang', async () => {
  const seen = [];
  const results = await Promise.all(badHeads.map(async ([name, bytes]) => {
    const r = await exchange(suite.server.port, bytes, { timeoutMs: (READ_TIMEOUT_S + 8) * 1000 });
    return { name, r, responses: parseResponses(r.data) };
  }));
  for (const { name, r, responses } of results) {
    assert.equal(r.closed, true, `${name}: the server left the connection open`);
    assert.ok(responses.length <= 1, `${name}: ${r.data}`);
    const status = responses[0]?.status ?? 'close';
    if (status !== 'close') {
      assert.ok(status >= 400 && status < 500, `${name}: ${status} ${responses[0].body}`);
      assert.equal(typeof JSON.parse(responses[0].body).error.message, 'string', name);
    } else {
      assert.equal(r.data.length, 0, `${name}: unparseable reply ${r.data}`);
    }
    seen.push(`${name}: ${status} (${r.ms} ms)`);
  }
  // The limits answer with their own statuses.
  const statusOf = (name) => results.find((x) => x.name === name).responses[0]?.status;
  assert.equal(statusOf('header block over 16 KiB'), 431);
  assert.equal(statusOf('request line over 16 KiB'), 431);
  assert.equal(statusOf('400 headers'), 431);
  assert.equal(statusOf('body over 4 MiB announced'), 413);
  assert.equal(statusOf('not HTTP'), 400);
  console.log(seen.join('\n'));
  await assertSettled(suite.server);
});

test('pipelined requests are answered in order, also while a completion runs', async () => {
  // Five requests in one write: the cheap routes, a completion, a stream, and the last one closes.
  const five = [
    requestText('GET', '/health'),
    requestText('POST', '/v1/completions', { body: completionBody() }),
    requestText('GET', '/v1/models'),
    requestText('POST', '/v1/completions', { body: completionBody({ stream: true }) }),
    requestText('POST', '/tokenize', { body: JSON.stringify({ prompt: 'last' }), close: true }),
  ].join('');
  const r = await exchange(suite.server.port, five);
  assert.equal(r.closed, true);
  const responses = parseResponses(r.data);
  assert.deepEqual(responses.map((x) => x.status), [200, 200, 200, 200, 200]);
  assert.equal(JSON.parse(responses[1].body).usage.completion_tokens, 4);
  assert.equal(JSON.parse(responses[2].body).object, 'list');
  assert.match(responses[3].body, /data: \[DONE\]/);
  assert.ok(Array.isArray(JSON.parse(responses[4].body).tokens));

  // The next requests arrive while a 48-token stream is being generated (the hang-up watch reads
  // them): they are kept and answered after it, not taken for a hang-up.
  const during = await exchange(suite.server.port, undefined, {
    delayMs: 150,
    pieces: [requestText('POST', '/v1/completions', { body: completionBody({ stream: true, max_tokens: 48, ignore_eos: true }) }),
      requestText('GET', '/health'), requestText('POST', '/v1/completions', { body: completionBody(), close: true })],
  });
  const after = parseResponses(during.data);
  assert.deepEqual(after.map((x) => x.status), [200, 200, 200]);
  assert.equal((after[0].body.match(/"finish_reason":"length"/g) ?? []).length, 1);

  // 100 requests in one write, then a malformed one: 100 answers, a 400, a close.
  const hundred = Array.from({ length: 100 }, (_, i) => requestText(i % 2 ? 'GET' : 'POST',
    i % 2 ? '/health' : '/tokenize', i % 2 ? {} : { body: JSON.stringify({ prompt: `p${i}` }) })).join('');
  const many = await exchange(suite.server.port, hundred + 'NOT HTTP AT ALL\r\n\r\n');
  const manyResponses = parseResponses(many.data);
  assert.equal(many.closed, true);
  assert.equal(manyResponses.length, 101);
  assert.ok(manyResponses.slice(0, 100).every((x) => x.status === 200));
  assert.equal(manyResponses[100].status, 400);
  await assertSettled(suite.server);
});
