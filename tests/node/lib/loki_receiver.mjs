// A Loki push API receiver for tests: POST /loki/api/v1/push with a gzip'd
// JSON body, decoded and checked strictly against Loki's documented format
// (https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs):
//   {"streams":[{"stream":{<label>:<value>...},"values":[["<unix ns>","<line>"(,{metadata})]...]}]}
// plus what gatewayz promises on top: exactly the labels app, env, service and
// level; every line one JSON object whose level matches its stream's; and
// timestamps strictly increasing per stream across pushes.
//
// A push that breaks any rule is answered 400 and recorded in `violations`
// (tests assert it stays empty). `mode` simulates Loki's failures:
// 'ok' (204), 'error' (500), 'throttle' (429), 'hang' (never answers),
// and stop()/start() make it refuse connections.

import http from 'node:http';
import zlib from 'node:zlib';

const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const rfc3339ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const levels = new Set(['debug', 'info', 'warning', 'error']);

export class LokiReceiver {
  constructor({ expectedLabels, tenant } = {}) {
    this.expectedLabels = expectedLabels; // {app, env, service}
    this.tenant = tenant;
    this.mode = 'ok';
    this.pushes = []; // decoded bodies of accepted pushes
    this.rawBodies = []; // decompressed text of every push received
    this.entries = []; // {labels, ns, line, record}
    this.violations = [];
    this.lastNs = new Map(); // stream key -> BigInt
    this.received = 0;
    this.hanging = [];
    this.server = null;
    this.port = 0;
  }

  async start(port = 0) {
    this.server = http.createServer((req, res) => this.#handle(req, res));
    this.server.keepAliveTimeout = 5000;
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    return this.port;
  }

  // Stops listening and drops every connection: pushes are refused.
  async stop() {
    if (!this.server) return;
    for (const res of this.hanging) res.destroy();
    this.hanging = [];
    const server = this.server;
    this.server = null;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  get url() {
    return `http://127.0.0.1:${this.port}/loki/api/v1/push`;
  }

  lines() {
    return this.entries.map((e) => e.record);
  }

  #violation(message) {
    this.violations.push(message);
  }

  #handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      this.received += 1;
      if (req.method !== 'POST' || req.url !== '/loki/api/v1/push') {
        this.#violation(`unexpected ${req.method} ${req.url}`);
        res.writeHead(404).end();
        return;
      }
      if (this.mode === 'hang') {
        this.hanging.push(res);
        return;
      }
      if (this.mode === 'error') return void res.writeHead(500).end('ingester down');
      if (this.mode === 'throttle') return void res.writeHead(429, { 'Retry-After': '1' }).end('rate limited');
      const problem = this.#accept(req, Buffer.concat(chunks));
      if (problem) {
        this.#violation(problem);
        res.writeHead(400).end(problem);
        return;
      }
      res.writeHead(204).end();
    });
  }

  // Returns a description of what is wrong with the push, or null.
  #accept(req, body) {
    const type = req.headers['content-type'];
    if (type !== 'application/json') return `Content-Type ${type}`;
    if (req.headers['content-encoding'] !== 'gzip') return `Content-Encoding ${req.headers['content-encoding']}`;
    if (this.tenant !== undefined && req.headers['x-scope-orgid'] !== this.tenant) {
      return `X-Scope-OrgID ${req.headers['x-scope-orgid']}`;
    }
    let text;
    try {
      text = zlib.gunzipSync(body).toString('utf8');
    } catch (err) {
      return `not gzip: ${err.message}`;
    }
    this.rawBodies.push(text);
    let push;
    try {
      push = JSON.parse(text);
    } catch (err) {
      return `not JSON: ${err.message}`;
    }
    if (!isObject(push) || !sameKeys(push, ['streams']) || !Array.isArray(push.streams) || push.streams.length === 0) {
      return 'the body is not {"streams":[...]}';
    }
    const accepted = [];
    for (const stream of push.streams) {
      if (!isObject(stream) || !sameKeys(stream, ['stream', 'values'])) return 'a stream is not {stream, values}';
      const labels = stream.stream;
      if (!isObject(labels) || !sameKeys(labels, ['app', 'env', 'service', 'level'])) {
        return `labels ${JSON.stringify(labels)}: want exactly app, env, service, level`;
      }
      for (const [name, value] of Object.entries(labels)) {
        if (!labelName.test(name) || typeof value !== 'string' || value.length === 0) return `label ${name}`;
      }
      if (!levels.has(labels.level)) return `level label ${labels.level}`;
      if (this.expectedLabels) {
        for (const key of ['app', 'env', 'service']) {
          if (labels[key] !== this.expectedLabels[key]) return `label ${key}=${labels[key]}`;
        }
      }
      if (!Array.isArray(stream.values) || stream.values.length === 0) return 'values is not a non-empty array';
      const key = JSON.stringify(labels);
      let last = this.lastNs.get(key) ?? -1n;
      for (const value of stream.values) {
        if (!Array.isArray(value) || (value.length !== 2 && value.length !== 3)) return 'a value is not [ts, line(, meta)]';
        const [ts, line, meta] = value;
        if (typeof ts !== 'string' || !/^[0-9]{1,19}$/.test(ts)) return `timestamp ${ts}`;
        if (typeof line !== 'string') return 'a line is not a string';
        if (meta !== undefined && (!isObject(meta) || Object.values(meta).some((v) => typeof v !== 'string'))) {
          return 'structured metadata is not a flat string map';
        }
        const ns = BigInt(ts);
        if (ns <= last) return `stream ${key}: timestamp ${ts} not after ${last}`;
        last = ns;
        let record;
        try {
          record = JSON.parse(line);
        } catch (err) {
          return `line is not JSON: ${line.slice(0, 200)}`;
        }
        if (!isObject(record)) return 'line is not a JSON object';
        if (typeof record.timestamp !== 'string' || !rfc3339ms.test(record.timestamp)) {
          return `line timestamp ${record.timestamp}`;
        }
        if (record.level !== labels.level) return `line level ${record.level} in stream ${labels.level}`;
        if (typeof record.message !== 'string') return 'line without message';
        // The entry's time is the line's own, give or take the 1 ns bumps
        // that keep a stream's timestamps increasing.
        const lineNs = BigInt(Date.parse(record.timestamp)) * 1_000_000n;
        if (ns < lineNs || ns - lineNs > 1_000_000_000n) return `entry ${ts} far from the line's ${record.timestamp}`;
        accepted.push({ labels, ns, line, record });
      }
      this.lastNs.set(key, last);
    }
    this.entries.push(...accepted);
    this.pushes.push(push);
    return null;
  }
}

function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameKeys(object, keys) {
  const have = Object.keys(object).sort();
  const want = [...keys].sort();
  return have.length === want.length && have.every((k, i) => k === want[i]);
}
