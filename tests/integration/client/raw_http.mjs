// Raw HTTP/1.1 on a TCP socket, for what fetch and the openai client never send: heads a byte at a
// time, malformed and oversize heads, several requests in one write (pipelining).
import net from 'node:net';

// One request as bytes. `headers` is an object; Content-Length is added for a body.
export function requestText(method, path, { body, headers = {}, close = false } = {}) {
  let text = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
  for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
  if (body !== undefined) text += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  if (close) text += 'Connection: close\r\n';
  return `${text}\r\n${body ?? ''}`;
}

// Connects, writes `bytes` (or each of `pieces`, `delayMs` apart), and collects what comes back
// until the server closes the connection or `timeoutMs` passes:
// { data: Buffer, closed: true|false (timed out), ms }.
export function exchange(port, bytes, { timeoutMs = 10000, pieces, delayMs = 0 } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    const received = [];
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(received), closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('connect', async () => {
      for (const piece of pieces ?? [bytes]) {
        if (done) return;
        socket.write(piece);
        if (pieces) await new Promise((r) => setTimeout(r, delayMs));
      }
    });
    socket.on('data', (d) => received.push(d));
    socket.on('error', () => finish(true));  // a reset counts as closed
    socket.on('close', () => finish(true));
  });
}

// Consecutive HTTP/1.1 responses in `data` (Content-Length or chunked bodies):
// [{ status, headers (lower-case names), body }]; stops at an incomplete one.
export function parseResponses(data) {
  const responses = [];
  let at = 0;
  for (;;) {
    const headEnd = data.indexOf('\r\n\r\n', at);
    if (headEnd < 0) return responses;
    const lines = data.subarray(at, headEnd).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let bodyAt = headEnd + 4;
    let body = '';
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const sizeEnd = data.indexOf('\r\n', bodyAt);
        if (sizeEnd < 0) return responses;
        const size = parseInt(data.subarray(bodyAt, sizeEnd).toString(), 16);
        if (data.length < sizeEnd + 2 + size + 2) return responses;
        body += data.subarray(sizeEnd + 2, sizeEnd + 2 + size).toString();
        bodyAt = sizeEnd + 2 + size + 2;
        if (size === 0) break;
      }
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (data.length < bodyAt + length) return responses;
      body = data.subarray(bodyAt, bodyAt + length).toString();
      bodyAt += length;
    }
    responses.push({ status, headers, body });
    at = bodyAt;
  }
}
