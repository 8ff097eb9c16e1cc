// Load and fault suite, --api-key: missing, wrong and timing-attack-style keys (guesses right in
// their first 0, 1, ..., all-but-one bytes) are all 401 and the right key still works. The
// constant-time comparison itself is measured where it can be, in the unit test
// (tests/unit/server/api_key_test.cpp): over loopback HTTP a request's noise (~100 us) hides a
// memcmp's early exit (~100 ns), so the medians here are a record, not an assertion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, assertSettled } from './server.mjs';

const KEY = 'k'.repeat(4096);

// Replaces the byte at `at` of the key with one that differs.
const wrongAt = (at) => `${KEY.slice(0, at)}x${KEY.slice(at + 1)}`;

function get(agent, port, path, authorization) {
  return new Promise((resolve, reject) => {
    const headers = authorization === undefined ? {} : { Authorization: authorization };
    const started = process.hrtime.bigint();
    const req = http.request({ agent, host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, us: Number(process.hrtime.bigint() - started) / 1000 }));
    });
    req.on('error', reject);
    req.end();
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('--api-key: missing, wrong and timing-attack-style keys are 401; the key works', async () => {
  const server = await startServer(['--api-key', KEY, '--api-key-for-probes', 'true'],
    { headers: { Authorization: `Bearer ${KEY}` } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const refused = [
      ['missing', undefined],
      ['empty', ''],
      ['scheme only', 'Bearer '],
      ['lower-case scheme', `bearer ${KEY}`],
      ['Basic scheme', `Basic ${KEY}`],
      ['no scheme', KEY],
      ['two spaces', `Bearer  ${KEY}`],
      ['a space inside', `Bearer ${KEY.slice(0, 100)} ${KEY.slice(101)}`],
      ['a prefix of the key', `Bearer ${KEY.slice(0, -1)}`],
      ['the key and more', `Bearer ${KEY}k`],
      ['first byte wrong', `Bearer ${wrongAt(0)}`],
      ['last byte wrong', `Bearer ${wrongAt(KEY.length - 1)}`],
      ['twice the key', `Bearer ${KEY}${KEY}`],
    ];
    // A timing attack's guesses: right in their first 0, 256, 512, ... bytes.
    for (let at = 0; at < KEY.length; at += 256) refused.push([`right up to byte ${at}`, `Bearer ${wrongAt(at)}`]);
    for (const path of ['/v1/models', '/health', '/metrics']) {
      for (const [name, authorization] of refused) {
        const r = await get(agent, server.port, path, authorization);
        assert.equal(r.status, 401, `${path} ${name}`);
        assert.equal(JSON.parse(r.body).error.type, 'authentication_error');
      }
      assert.equal((await get(agent, server.port, path, `Bearer ${KEY}`)).status, 200, path);
    }

    // A record of the medians, first byte wrong against last byte wrong, interleaved.
    const early = [];
    const late = [];
    for (let i = 0; i < 300; i++) {
      early.push((await get(agent, server.port, '/v1/models', `Bearer ${wrongAt(0)}`)).us);
      late.push((await get(agent, server.port, '/v1/models', `Bearer ${wrongAt(KEY.length - 1)}`)).us);
    }
    console.log(`4 KiB key, 300 guesses each: median ${median(early).toFixed(0)} us (first byte wrong), ` +
      `${median(late).toFixed(0)} us (last byte wrong)`);
    await assertSettled(server, { headers: { Authorization: `Bearer ${KEY}` } });
  } finally {
    agent.destroy();
    assert.equal((await server.stop()).code, 0, server.log());
  }
});
