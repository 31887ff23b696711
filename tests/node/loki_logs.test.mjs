// gatewayz's logs as an operator reads them: JSON lines on stdout and the
// same lines pushed to Loki, with secrets redacted everywhere.
//
// Starts a Loki receiver (lib/loki_receiver.mjs: decodes gzip + JSON and
// checks Loki's push format, labels and per-stream ordering strictly),
// `gatewayz mock-provider` and `gatewayz serve` with logging.loki.url set,
// then checks:
//  - start-up, access, provider-error, failover, refusal, admin and shutdown
//    lines, with the guide's fields, on stdout and in Loki;
//  - an API key, a card number, a password and an e-mail address sent in
//    headers and bodies appear in no stdout line, no Loki push and not in
//    /metrics (with log_content on, so the prompt is logged, redacted);
//  - Loki refusing connections, then hanging, for 30 s under traffic:
//    requests keep their latency, drops are counted in
//    gatewayz_log_records_dropped_total, shipping resumes after.
//
// Run: GATEWAYZ_BIN=build/src/app/gatewayz node --test tests/node/loki_logs.test.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Child, closedPort, sleep, waitForPort } from './lib/processes.mjs';
import { LokiReceiver } from './lib/loki_receiver.mjs';

const adminKey = 'admin-Zq7xK2mP9vL4sT8w';
const upstreamKey = 'sk-upstream-9f8e7d6c5b4a3210';
const secrets = {
  card: '4111 1111 1111 1111',
  cardPlain: '4111111111111111',
  password: 'hunter2-Tr0ub4dor',
  email: 'jane.doe@example.com',
  bogusKey: 'sk-live-0123456789abcdefABCDEF',
};
const labels = { app: 'gatewayz-test', env: 'ci', service: 'gatewayz-api' };
const outageMs = Number(process.env.LOKI_OUTAGE_MS || 30_000);


function gatewayConfig({ portFile, mockPort, deadPort, lokiUrl, dbPath }) {
  return `# written by tests/node/loki_logs.test.mjs
server:
  listen: "127.0.0.1:0"
  port_file: "${portFile}"
  threads: 2
auth:
  mode: keys
  admin_key: "${adminKey}"
storage:
  url: "sqlite://${dbPath}"
  flush_interval_ms: 50
logging:
  level: info
  app: ${labels.app}
  env: ${labels.env}
  service: ${labels.service}
  log_content: true
  loki:
    url: "${lokiUrl}"
    flush_interval_ms: 200
    queue_max_records: 200
providers:
  - name: dead
    kind: openai
    base_url: "http://127.0.0.1:${deadPort}/v1"
    api_key: "${upstreamKey}"
    connect_timeout_s: 2
    models:
      - id: failover-model
        upstream: gpt-4o-mini
  - name: mock
    kind: openai
    base_url: "http://127.0.0.1:${mockPort}/v1"
    api_key: "${upstreamKey}"
    models:
      - id: gpt-4o-mini
        input_per_million: 1
        output_per_million: 2
      - id: failover-model
        upstream: gpt-4o-mini
        input_per_million: 1
        output_per_million: 2
`;
}

function parseLines(lines, where) {
  return lines.map((line) => {
    let record;
    assert.doesNotThrow(() => {
      record = JSON.parse(line);
    }, `${where}: not JSON: ${line}`);
    assert.equal(typeof record, 'object', `${where}: ${line}`);
    assert.match(record.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, `${where}: timestamp in ${line}`);
    assert.ok(['debug', 'info', 'warning', 'error'].includes(record.level), `${where}: level in ${line}`);
    assert.equal(typeof record.message, 'string', `${where}: message in ${line}`);
    return record;
  });
}

function assertNoSecrets(text, where) {
  for (const [name, value] of Object.entries({ ...secrets, adminKey, upstreamKey })) {
    assert.ok(!text.includes(value), `${where} contains the ${name}`);
  }
}

describe('gatewayz logs, stdout and Loki', () => {
  let tmpDir;
  let loki;
  let mock;
  let gateway;
  let base;
  let apiKey;

  const post = (pathname, body, headers = {}) =>
    fetch(`${base}${pathname}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  const chat = (model, content, extraHeaders = {}) =>
    post(
      '/v1/chat/completions',
      { model, max_tokens: 8, messages: [{ role: 'user', content }] },
      { Authorization: `Bearer ${apiKey}`, ...extraHeaders },
    );

  async function waitFor(what, predicate, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (predicate()) return;
      await sleep(50);
    }
    assert.fail(`timed out waiting for ${what}\n${gateway.describe()}`);
  }

  before(async () => {
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'gatewayz-loki-'));
    loki = new LokiReceiver({ expectedLabels: labels });
    await loki.start();
    const mockPortFile = path.join(tmpDir, 'mock.port');
    mock = new Child('mock-provider', ['mock-provider', '--listen', '127.0.0.1:0', '--port-file', mockPortFile,
      '--api-key', upstreamKey]);
    const mockPort = await waitForPort(mock, mockPortFile);
    const portFile = path.join(tmpDir, 'gateway.port');
    const configFile = path.join(tmpDir, 'gatewayz.yaml');
    await writeFile(configFile, gatewayConfig({
      portFile, mockPort, deadPort: await closedPort(), lokiUrl: loki.url, dbPath: path.join(tmpDir, 'gw.db'),
    }));
    gateway = new Child('gatewayz serve', ['serve', '--config', configFile]);
    base = `http://127.0.0.1:${await waitForPort(gateway, portFile)}`;

    // A customer and a key through the admin API (its answer holds the key).
    const admin = { Authorization: `Bearer ${adminKey}` };
    let res = await post('/admin/customers', { name: 'acme', credits_usd: '100' }, admin);
    assert.equal(res.status, 201, await res.text());
    res = await post('/admin/keys', { customer: 'acme' }, admin);
    assert.equal(res.status, 201);
    apiKey = (await res.json()).key;
    assert.match(apiKey, /^gwz_/);
  });

  after(async () => {
    if (gateway) await gateway.terminate();
    if (mock) await mock.terminate();
    if (loki) await loki.stop();
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  });

  test('every stdout line is a JSON log line, start-up first', async () => {
    await waitFor('the listening line', () => gateway.lines().some((l) => l.includes('"message":"listening"')));
    const records = parseLines(gateway.lines(), 'stdout');
    assert.equal(records[0].message, 'starting');
    assert.equal(records[0].level, 'info');
    assert.equal(records[0].storage, 'sqlite');
    assert.ok(!gateway.stdout.includes('sqlite://'), 'the storage URL is not logged');
  });

  test('an access line per request with the guide\'s fields, on stdout and in Loki', async () => {
    const res = await chat('gpt-4o-mini', 'hello', { 'X-Request-ID': 'access-line-1' });
    assert.equal(res.status, 200);
    await res.json();
    await waitFor('the access line in Loki', () => loki.lines().some((r) => r.request_id === 'access-line-1'));
    const line = parseLines(gateway.lines(), 'stdout').find(
      (r) => r.request_id === 'access-line-1' && r.message === 'request completed',
    );
    assert.ok(line, 'access line on stdout');
    assert.equal(line.level, 'info');
    assert.equal(line.model, 'gpt-4o-mini');
    assert.equal(line.provider, 'mock');
    assert.equal(line.status, 'success');
    assert.equal(line.http_status, 200);
    assert.equal(line.attempts, 1);
    assert.equal(line.route, '/v1/chat/completions');
    assert.equal(typeof line.duration_ms, 'number');
    assert.ok(line.tokens_used > 0 && line.tokens_used === line.input_tokens + line.output_tokens);
    assert.ok(line.cost_usd > 0, `cost_usd ${line.cost_usd}`);
    assert.equal(typeof line.customer_id, 'number');
    assert.equal(line.user_id, String(line.customer_id));
    const shipped = loki.lines().find((r) => r.request_id === 'access-line-1' && r.message === 'request completed');
    assert.deepEqual(shipped, line, 'Loki gets the same line as stdout');
    assert.deepEqual(loki.violations, []);
  });

  test('a streamed request has ttft_ms', async () => {
    const res = await post(
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', stream: true, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] },
      { Authorization: `Bearer ${apiKey}`, 'X-Request-ID': 'stream-line-1' },
    );
    assert.equal(res.status, 200);
    await res.text();
    await waitFor('the stream access line', () => loki.lines().some((r) => r.request_id === 'stream-line-1'));
    const line = loki.lines().find((r) => r.request_id === 'stream-line-1');
    assert.equal(line.stream, true);
    assert.equal(typeof line.ttft_ms, 'number');
  });

  test('an unreachable provider: an error line, a failover warning, then the access line', async () => {
    const res = await chat('failover-model', 'fail over please', { 'X-Request-ID': 'failover-1' });
    assert.equal(res.status, 200);
    await res.json();
    await waitFor('the failover lines', () => loki.lines().filter((r) => r.request_id === 'failover-1').length >= 3);
    const lines = loki.lines().filter((r) => r.request_id === 'failover-1');
    const error = lines.find((r) => r.message === 'provider error');
    assert.ok(error, JSON.stringify(lines));
    assert.equal(error.level, 'error');
    assert.equal(error.provider, 'dead');
    assert.equal(error.error_type, 'connection');
    assert.equal(error.will_fail_over, true);
    const warning = lines.find((r) => r.level === 'warning');
    assert.equal(warning.from_provider, 'dead');
    assert.equal(warning.provider, 'mock');
    const access = lines.find((r) => r.message === 'request completed');
    assert.equal(access.attempts, 2);
    assert.equal(access.provider, 'mock');
  });

  test('refusals and admin calls are logged; /health only at debug', async () => {
    let res = await chat('no-such-model', 'x', { 'X-Request-ID': 'refused-model' });
    assert.equal(res.status, 404);
    res = await post('/v1/chat/completions', '{"model": broken', {
      Authorization: `Bearer ${apiKey}`, 'X-Request-ID': 'refused-json',
    });
    assert.equal(res.status, 400);
    res = await fetch(`${base}/health`, { headers: { 'X-Request-ID': 'health-1' } });
    assert.equal(res.status, 200);
    await waitFor('the refusal lines', () =>
      ['refused-model', 'refused-json'].every((id) => loki.lines().some((r) => r.request_id === id)));
    const model = loki.lines().find((r) => r.request_id === 'refused-model');
    assert.equal(model.message, 'request refused');
    assert.equal(model.http_status, 404);
    assert.equal(model.error_code, 'model_not_found');
    assert.equal(model.model, 'no-such-model');
    const admin = loki.lines().filter((r) => r.message === 'admin request served');
    assert.ok(admin.some((r) => r.route === '/admin/keys' && r.http_status === 201), JSON.stringify(admin));
    assert.ok(!gateway.lines().some((l) => l.includes('"health-1"')), 'GET /health is logged at debug only');
  });

  test('secrets in headers and bodies reach no log line, no Loki push and not /metrics', async () => {
    const content = `my card is ${secrets.card} (or ${secrets.cardPlain}), password=${secrets.password}, ` +
      `mail me at ${secrets.email}, my other key is ${secrets.bogusKey}`;
    let res = await post(
      '/v1/chat/completions',
      {
        model: 'gpt-4o-mini', max_tokens: 4, password: secrets.password, api_key: secrets.bogusKey,
        messages: [{ role: 'user', content }],
      },
      {
        Authorization: `Bearer ${apiKey}`, 'X-Request-ID': 'secrets-1', Cookie: `session=${secrets.password}`,
        'X-Api-Key': secrets.bogusKey,
      },
    );
    assert.equal(res.status, 200);
    await res.text();
    // A wrong key, an admin call with a bad admin key, a body that is not JSON.
    res = await chat('gpt-4o-mini', content, { Authorization: `Bearer ${secrets.bogusKey}`, 'X-Request-ID': 'secrets-2' });
    assert.equal(res.status, 401);
    const badKeyBody = await res.text();
    res = await post('/admin/keys', { customer: 'acme' }, { Authorization: `Bearer ${secrets.bogusKey}` });
    assert.equal(res.status, 401);
    res = await post('/v1/chat/completions', `{"model":"gpt-4o-mini","password":"${secrets.password}",`, {
      Authorization: `Bearer ${apiKey}`, 'X-Request-ID': 'secrets-3',
    });
    assert.equal(res.status, 400);
    const badJsonBody = await res.text();
    await waitFor('the secrets lines in Loki', () =>
      ['secrets-1', 'secrets-2', 'secrets-3'].every((id) => loki.lines().some((r) => r.request_id === id)));

    // log_content is on: the prompt is on the access line, redacted.
    const access = loki.lines().find((r) => r.request_id === 'secrets-1' && r.message === 'request completed');
    assert.ok(access.prompt.includes('[REDACTED_CARD]'), access.prompt);
    assert.ok(access.prompt.includes('[REDACTED_EMAIL]'), access.prompt);
    assert.ok(access.prompt.includes('[REDACTED_KEY]'), access.prompt);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    assertNoSecrets(gateway.stdout, 'stdout');
    assertNoSecrets(gateway.stderr, 'stderr');
    assertNoSecrets(loki.rawBodies.join('\n'), 'a Loki push');
    assertNoSecrets(metrics, '/metrics');
    assertNoSecrets(badKeyBody + badJsonBody, 'an error body');
    assert.ok(!gateway.stdout.includes(apiKey) && !loki.rawBodies.join('').includes(apiKey), 'the API key is logged');
    assert.deepEqual(loki.violations, []);
  });

  test('Loki down for the outage under traffic: latency kept, drops counted, shipping resumes', async () => {
    const latencies = async (count) => {
      const times = [];
      for (let i = 0; i < count; i += 1) {
        const start = performance.now();
        const res = await chat('gpt-4o-mini', 'x');
        assert.equal(res.status, 200);
        await res.arrayBuffer();
        times.push(performance.now() - start);
      }
      return times.sort((a, b) => a - b);
    };
    const median = (xs) => xs[Math.floor(xs.length / 2)];
    const before = await latencies(40);

    // Half the outage refusing connections, half accepting and never answering.
    await loki.stop();
    const during = [];
    const outageEnd = Date.now() + outageMs;
    const hangAt = Date.now() + outageMs / 2;
    let hanging = false;
    while (Date.now() < outageEnd) {
      if (!hanging && Date.now() >= hangAt) {
        loki.mode = 'hang';
        await loki.start(loki.port);
        hanging = true;
      }
      during.push(...(await latencies(10)));
      await sleep(20);
    }
    during.sort((a, b) => a - b);
    assert.ok(during.length >= 100, `only ${during.length} requests during the outage`);
    // The request path never waits for Loki: the median stays put (with
    // room for a noisy sanitizer build).
    assert.ok(median(during) <= median(before) * 2 + 20, `median ${median(before)} ms -> ${median(during)} ms`);

    const scrape = async () => (await fetch(`${base}/metrics`)).text();
    const value = (text, series) => {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      return line ? Number(line.split(' ')[1]) : NaN;
    };
    const metrics = await scrape();
    const dropped = value(metrics, 'gatewayz_log_records_dropped_total{reason="queue_full"}');
    assert.ok(dropped > 0, `drops counted: ${dropped}`);
    assert.ok(value(metrics, 'loki_log_queue_size') <= 200, 'the queue stays bounded');
    const sentBefore = value(metrics, 'gatewayz_log_records_sent_total');

    // Loki is back: new lines arrive and the sent counter grows.
    loki.mode = 'ok';
    await loki.stop();
    await loki.start(loki.port);
    const res = await chat('gpt-4o-mini', 'after the outage', { 'X-Request-ID': 'after-outage' });
    assert.equal(res.status, 200);
    await res.json();
    await waitFor('lines after the outage', () => loki.lines().some((r) => r.request_id === 'after-outage'), 30_000);
    // The counter is published by the writer thread's next turn.
    let sentAfter = sentBefore;
    for (const deadline = Date.now() + 10_000; sentAfter <= sentBefore && Date.now() < deadline; await sleep(50)) {
      sentAfter = value(await scrape(), 'gatewayz_log_records_sent_total');
    }
    assert.ok(sentAfter > sentBefore, `gatewayz_log_records_sent_total ${sentBefore} -> ${sentAfter}`);
    assert.deepEqual(loki.violations, []);
  });

  test('shutdown is logged last', async () => {
    const status = await gateway.terminate();
    assert.equal(status.code, 0, gateway.describe());
    const records = parseLines(gateway.lines(), 'stdout');
    assert.equal(records.at(-1).message, 'stopped');
    assert.ok(records.some((r) => r.message.startsWith('shutting down')));
  });
});
