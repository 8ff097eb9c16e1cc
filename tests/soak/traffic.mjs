// The soak's traffic: one request of a kind drawn by weight, sent with node:http on a keep-alive
// agent, and the client's own count of what it sent and what came back.
import http from 'node:http';
import { exchange, requestText } from '../integration/client/raw_http.mjs';
import { MODEL_NAME } from '../integration/client/server.mjs';

// [kind, weight, expected status, engine requests it causes when answered as expected]
const KINDS = [
  ['short', 30, 200, 1], ['long', 10, 200, 1], ['stream', 20, 200, 1], ['cancel', 15, 200, 1],
  ['chat', 8, 200, 1], ['n_logprobs', 5, 200, 8], ['bad_json', 3, 400, 0], ['over_limit', 3, 400, 0],
  ['no_route', 2, 404, 0], ['oversize_body', 1, 413, 0], ['bad_head', 2, 400, 0], ['probe', 1, 200, 0],
];
const TOTAL_WEIGHT = KINDS.reduce((sum, k) => sum + k[1], 0);

export class Tally {
  sent = 0;
  byKind = {};          // kind -> requests sent
  byStatus = {};        // status -> responses
  unexpected = [];      // the first few responses whose status was not the kind's
  unexpectedCount = 0;
  transportErrors = 0;  // a connection that failed where no hang-up was meant
  engineRequests = 0;   // what pagedserve_request_success_total must count
  cancels = 0;

  record(kind, status, expected, engine) {
    this.byStatus[status] = (this.byStatus[status] ?? 0) + 1;
    if (status === expected) {
      this.engineRequests += engine;
    } else {
      this.unexpectedCount++;
      if (this.unexpected.length < 10) this.unexpected.push(`${kind}: ${status}`);
    }
  }

  get fiveHundreds() {
    return Object.entries(this.byStatus).filter(([s]) => Number(s) >= 500).reduce((sum, [, n]) => sum + n, 0);
  }
}

export class Traffic {
  constructor(port, next) {
    this.port = port;
    this.next = next;  // a random number in [0, 1)
    this.tally = new Tally();
    this.resetConnections();
  }

  // Closes the keep-alive connections (before a sample, so that the server's fds compare).
  resetConnections() {
    this.agent?.destroy();
    this.agent = new http.Agent({ keepAlive: true });
  }

  pick() {
    let r = this.next() * TOTAL_WEIGHT;
    for (const k of KINDS) {
      if ((r -= k[1]) < 0) return k;
    }
    return KINDS[0];
  }

  ids(length) {
    return Array.from({ length }, () => 1000 + Math.floor(this.next() * 29000));
  }

  // Before the first measured sample: every kind at its largest, and long prompts enough to need
  // more than the whole KV cache at once, so that every page has been touched (the cache is
  // allocated up front but the OS maps its pages on first use, which would read as growth).
  async warmUp(kvTokens) {
    await Promise.all(KINDS.map((k) => this.one(k, true)));
    const long = KINDS.find(([kind]) => kind === 'long');
    await Promise.all(Array.from({ length: Math.ceil(kvTokens / 900) + 2 }, () => this.one(long, true)));
  }

  // Sends one request of a random kind (or of `chosen`, a row of KINDS) and records its outcome.
  async one(chosen, largest = false) {
    const [kind, , expected, engine] = chosen ?? this.pick();
    this.tally.sent++;
    this.tally.byKind[kind] = (this.tally.byKind[kind] ?? 0) + 1;
    try {
      const status = await this.send(kind, largest);
      this.tally.record(kind, status, expected, engine);
    } catch (e) {
      this.tally.transportErrors++;
      if (this.tally.unexpected.length < 10) this.tally.unexpected.push(`${kind}: ${e.message}`);
    }
  }

  // `largest`: the kind's longest prompt (warm-up).
  send(kind, largest = false) {
    const completion = (body, hangUpAfterChunks) =>
      this.post('/v1/completions', { model: MODEL_NAME, ...body }, hangUpAfterChunks);
    switch (kind) {
      case 'short': return completion({ prompt: `Soak ${this.next()}`, max_tokens: 8 });
      case 'long':
        return completion({ prompt: this.ids(largest ? 900 : 300 + Math.floor(this.next() * 600)), max_tokens: 8 });
      case 'stream': return completion({ prompt: 'A stream', max_tokens: 24, stream: true });
      case 'cancel':
        // Hang up after 1-20 chunks of a 200-token stream: the request has reached the engine.
        return completion({ prompt: 'Cancel me', max_tokens: 200, ignore_eos: true, stream: true },
          1 + Math.floor(this.next() * 20));
      case 'chat':
        return this.post('/v1/chat/completions', { model: MODEL_NAME, max_tokens: 8, stream: this.next() < 0.5,
          messages: [{ role: 'user', content: `Hello ${this.next()}` }] });
      case 'n_logprobs': return completion({ prompt: ['one', 'two'], n: 4, logprobs: 5, max_tokens: 4 });
      case 'bad_json': return this.post('/v1/completions', '{"prompt": "x",');
      case 'over_limit':
        return completion(this.next() < 0.5 ? { prompt: 'x', n: 1000 } : { prompt: 'x', max_tokens: 1 << 20 });
      case 'no_route': return this.request('GET', '/v1/nothing');
      case 'oversize_body': return completion({ prompt: 'x'.repeat(100 * 1024) });
      case 'bad_head': return this.badHead();
      default: return this.request('GET', this.next() < 0.5 ? '/health' : '/metrics');
    }
  }

  post(path, body, hangUpAfterChunks) {
    return this.request('POST', path, typeof body === 'string' ? body : JSON.stringify(body), hangUpAfterChunks);
  }

  // Resolves with the status once the body has been read (or the client hung up as asked).
  request(method, path, body, hangUpAfterChunks) {
    return new Promise((resolve, reject) => {
      const headers = body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
      const req = http.request({ agent: this.agent, host: '127.0.0.1', port: this.port, method, path, headers }, (res) => {
        let events = 0;
        res.on('data', (d) => {
          events += d.toString().split('\n\n').length - 1;
          if (hangUpAfterChunks !== undefined && events >= hangUpAfterChunks) {
            this.tally.cancels++;
            req.destroy();
            resolve(res.statusCode);
          }
        });
        res.on('end', () => resolve(res.statusCode));
        res.on('error', () => { if (hangUpAfterChunks === undefined) reject(new Error('response error')); });
      });
      req.on('error', (e) => { if (!req.destroyed || hangUpAfterChunks === undefined) reject(e); });
      req.end(body);
    });
  }

  async badHead() {
    const heads = ['HELLO\r\n\r\n', 'GET /health HTTP/1.1\r\nHost x\r\n\r\n',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n'];
    const r = await exchange(this.port, heads[Math.floor(this.next() * heads.length)], { timeoutMs: 10000 });
    const status = Number(r.data.toString('latin1').split(' ')[1]);
    if (!status) throw new Error(`bad head: no reply (${r.closed ? 'closed' : 'timed out'})`);
    return status;
  }
}
