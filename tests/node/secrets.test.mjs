// No secret leaves gatewayz through any output (issue #21, part 5).
//
// Starts `gatewayz mock-provider`, a Loki receiver, an OTLP receiver and
// `gatewayz serve` (SQLite store in a temp dir, tracing at 100 %, every
// credential the config can hold set to a distinctive value), drives every
// route -- chat completions plain and streamed (OpenAI and Anthropic
// upstreams), completions, embeddings, /v1/models, /health,
// /health/dashboard, /models/stats, /metrics, each admin route, 404s, 405s,
// malformed JSON, bad keys -- with secrets in the Authorization and
// x-api-key headers, cookies, the query string, body fields and prompts,
// then searches every output for each secret:
//   stdout and stderr, every Loki push (decompressed), every OTLP export
//   (decompressed protobuf bytes or JSON), /metrics, every response's
//   headers and body, the SQLite ledger (database, WAL and any spill file),
//   and the headers the upstream provider received.
// Twice: with log_content off (the prompt text must appear nowhere) and on
// (the prompt is logged, but keys, card numbers, e-mail addresses and
// passwords in it are redacted).
//
// Run: GATEWAYZ_BIN=build/src/app/gatewayz node --test tests/node/secrets.test.mjs

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Child, closedPort, sleep, waitForPort } from './lib/processes.mjs';
import { LokiReceiver } from './lib/loki_receiver.mjs';
import { OtlpReceiver } from './lib/otlp_receiver.mjs';

// Credentials in the configuration: they authenticate gatewayz and its
// clients and must never be printed or exported.
const configSecrets = {
  adminKey: 'adm-7Kq2Zx9Lw4Rt8Vn3',
  readToken: 'rdt-5Hm8Qp2Xs7Lc4Wz9',
  metricsToken: 'mtk-3Fj6Nd9Bv2Gy5Tk8',
  upstreamKey: 'sk-upstream-4Rq8Zm2Xc6Vb9Nl3',
  lokiAuth: 'bG9raVVzZXI6bDBrMVB3ZA',
  otlpToken: 'otlp-8Wd3Kf7Hs2Pq6Yz4',
};
// What clients send: in headers, the query string, body fields and prompts.
const clientSecrets = {
  bogusBearer: 'sk-live-Bx7Qm2Zr9Lt4Wc8N',
  xApiKey: 'sk-proj-Jd4Hs8Kq2Lm7Nz3P',
  queryKey: 'sk-query-Vt6Rn2Mk8Lp4Zq7W',
  cookie: 'sess-9Ty3Mn7Qz2Xc6Bv4',
  password: 'hunter2-Pw9Rq4Lz',
  card: '4111 1111 1111 1111',
  cardPlain: '4111111111111111',
  cardDashed: '5500-0000-0000-0004',
  email: 'jane.secret@example.org',
  promptKey: 'sk-ant-api03-Hq5Wm9Zx2Kc7Lv4B',
};
// Text that is only in prompts: with log_content off it must appear nowhere.
const promptMarker = 'PROMPT-MARKER-q8Zr4Lm2';
const prompt = `${promptMarker}: my card is ${clientSecrets.card} (or ${clientSecrets.cardPlain}, ` +
  `${clientSecrets.cardDashed}), password=${clientSecrets.password}, mail ${clientSecrets.email}, ` +
  `key ${clientSecrets.promptKey}`;

const labels = { app: 'gatewayz-secrets', env: 'ci', service: 'gatewayz-api' };

function gatewayConfig({ portFile, mockPort, deadPort, lokiUrl, otlpPort, dbPath, spillPath, logContent, protocol }) {
  return `# written by tests/node/secrets.test.mjs
server:
  listen: "127.0.0.1:0"
  port_file: "${portFile}"
  threads: 2
auth:
  mode: keys
  admin_key: "${configSecrets.adminKey}"
  read_token: "${configSecrets.readToken}"
storage:
  url: "sqlite://${dbPath}"
  spill_path: "${spillPath}"
  flush_interval_ms: 50
metrics:
  bearer_token: "${configSecrets.metricsToken}"
logging:
  level: debug
  app: ${labels.app}
  env: ${labels.env}
  service: ${labels.service}
  log_content: ${logContent}
  loki:
    url: "${lokiUrl}"
    flush_interval_ms: 100
    headers:
      Authorization: "Basic ${configSecrets.lokiAuth}"
tracing:
  enabled: true
  otlp_endpoint: "http://127.0.0.1:${otlpPort}"
  protocol: ${protocol}
  sampler: always_on
  schedule_delay_ms: 100
  headers:
    authorization: "Bearer ${configSecrets.otlpToken}"
providers:
  - name: dead
    kind: openai
    base_url: "http://127.0.0.1:${deadPort}/v1"
    api_key: "${configSecrets.upstreamKey}"
    connect_timeout_s: 2
    models:
      - id: failover-model
        upstream: gpt-4o-mini
  - name: mock
    kind: openai
    base_url: "http://127.0.0.1:${mockPort}/v1"
    api_key: "${configSecrets.upstreamKey}"
    models:
      - id: gpt-4o-mini
        input_per_million: 1
        output_per_million: 2
      - id: failover-model
        upstream: gpt-4o-mini
  - name: mock-anthropic
    kind: anthropic
    base_url: "http://127.0.0.1:${mockPort}/v1"
    api_key: "${configSecrets.upstreamKey}"
    models:
      - id: claude-sonnet-4.5
        upstream: claude-sonnet-4-5
`;
}

// The names of `secrets` whose value occurs in `text`.
function found(text, secrets) {
  return Object.entries(secrets).filter(([, value]) => text.includes(value)).map(([name]) => name);
}

function assertNone(text, secrets, where) {
  const names = found(text, secrets);
  if (names.length === 0) return;
  const at = text.indexOf(secrets[names[0]]);
  assert.fail(`${where} contains ${names.join(', ')}: ...${text.slice(Math.max(0, at - 300), at + 100)}...`);
}

// One gateway run: starts the processes, drives every route, stops the
// gateway (so the ledger is flushed) and returns everything it put out.
async function exercise({ logContent, protocol }) {
  const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'gatewayz-secrets-'));
  const loki = new LokiReceiver({ expectedLabels: labels });
  await loki.start();
  const otlp = await new OtlpReceiver().start();
  const mockPortFile = path.join(tmpDir, 'mock.port');
  const mock = new Child('mock-provider', ['mock-provider', '--listen', '127.0.0.1:0', '--port-file', mockPortFile,
    '--api-key', configSecrets.upstreamKey]);
  const responses = [];  // every response as text: status, headers, body
  let gateway;
  let createdKey = '';
  let apiKey = '';
  const dataDir = path.join(tmpDir, 'data');
  try {
    const mockPort = await waitForPort(mock, mockPortFile);
    const portFile = path.join(tmpDir, 'gateway.port');
    const configFile = path.join(tmpDir, 'gatewayz.yaml');
    await rm(dataDir, { recursive: true, force: true });
    await mkdir(dataDir);
    await writeFile(configFile, gatewayConfig({
      portFile, mockPort, deadPort: await closedPort(), lokiUrl: loki.url, otlpPort: otlp.port,
      dbPath: path.join(dataDir, 'gw.db'), spillPath: path.join(dataDir, 'ledger.spill'), logContent, protocol,
    }));
    gateway = new Child('gatewayz serve', ['serve', '--config', configFile]);
    const base = `http://127.0.0.1:${await waitForPort(gateway, portFile)}`;

    const call = async (method, pathname, { body, headers = {} } = {}) => {
      const res = await fetch(`${base}${pathname}`, {
        method,
        headers: { ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      const head = [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
      responses.push({ what: `${method} ${pathname} -> ${res.status}`, text: `${res.status}\n${head}\n\n${text}` });
      return { status: res.status, text };
    };
    const admin = { Authorization: `Bearer ${configSecrets.adminKey}` };
    const reader = { Authorization: `Bearer ${configSecrets.readToken}` };
    const bogus = { Authorization: `Bearer ${clientSecrets.bogusBearer}` };
    const extras = { Cookie: `session=${clientSecrets.cookie}`, 'X-Forwarded-Authorization': clientSecrets.xApiKey };
    const expect = (r, status) => assert.equal(r.status, status, r.text);

    // Admin API: customers, credit, keys, revocation, breakers.
    expect(await call('POST', '/admin/customers', { body: { name: 'acme', credits_usd: '100' }, headers: admin }), 201);
    expect(await call('GET', '/admin/customers', { headers: admin }), 200);
    expect(await call('POST', '/admin/customers/acme/credit', { body: { amount_usd: '5' }, headers: admin }), 200);
    // A validation error names the rejected value back to the admin who sent
    // it (its own input, not a credential): only credentials are searched there.
    const badAmount = await call('POST', '/admin/customers/acme/credit', {
      body: { amount_usd: clientSecrets.password }, headers: admin,
    });
    assert.equal(badAmount.status, 400, badAmount.text);
    responses.at(-1).echoesInput = true;
    expect(await call('POST', '/admin/customers/nobody/credit', { body: { amount_usd: '1' }, headers: admin }), 404);
    let r = await call('POST', '/admin/keys', { body: { customer: 'acme' }, headers: admin });
    expect(r, 201);
    apiKey = JSON.parse(r.text).key;
    // The answer that creates a key is the one place it may appear.
    responses.pop();
    r = await call('POST', '/admin/keys', { body: { customer: 'acme' }, headers: admin });
    expect(r, 201);
    const revoked = JSON.parse(r.text);
    createdKey = revoked.key;
    responses.pop();
    expect(await call('GET', '/admin/keys', { headers: admin }), 200);
    expect(await call('POST', `/admin/keys/${revoked.id}/revoke`, { headers: admin }), 200);
    expect(await call('GET', '/admin/circuit-breakers', { headers: admin }), 200);
    expect(await call('POST', '/admin/circuit-breakers/mock/reset', { headers: admin }), 200);
    expect(await call('POST', '/admin/keys', { body: { customer: 'acme' }, headers: bogus }), 401);
    expect(await call('GET', '/admin/customers', { headers: { 'X-Api-Key': clientSecrets.xApiKey } }), 401);
    expect(await call('POST', '/admin/customers', { body: `{"name":"x","password":"${clientSecrets.password}",`, headers: admin }), 400);

    // The proxied routes, with secrets in every place a client can put one.
    const auth = { Authorization: `Bearer ${apiKey}`, ...extras };
    const chatBody = (model, extra = {}) => ({
      model, max_tokens: 6, password: clientSecrets.password, api_key: clientSecrets.promptKey, user: clientSecrets.email,
      messages: [{ role: 'system', content: `secret system ${clientSecrets.email}` }, { role: 'user', content: prompt }],
      ...extra,
    });
    const q = `?api_key=${clientSecrets.queryKey}`;
    expect(await call('POST', `/v1/chat/completions${q}`, { body: chatBody('gpt-4o-mini'), headers: auth }), 200);
    const streamed = await call('POST', '/v1/chat/completions', { body: chatBody('gpt-4o-mini', { stream: true }), headers: auth });
    expect(streamed, 200);
    assert.ok(streamed.text.includes('data: [DONE]'), streamed.text);
    expect(await call('POST', '/v1/chat/completions', { body: chatBody('claude-sonnet-4.5'), headers: auth }), 200);
    expect(await call('POST', '/v1/chat/completions', {
      body: chatBody('claude-sonnet-4.5', { stream: true, stream_options: { include_usage: true } }), headers: auth,
    }), 200);
    expect(await call('POST', '/v1/chat/completions', { body: chatBody('failover-model'), headers: auth }), 200);
    expect(await call('POST', '/v1/chat/completions', {
      body: chatBody('gpt-4o-mini'), headers: { 'X-Api-Key': apiKey, Cookie: extras.Cookie },
    }), 200);
    expect(await call('POST', '/v1/completions', {
      body: { model: 'gpt-4o-mini', max_tokens: 4, prompt, password: clientSecrets.password }, headers: auth,
    }), 200);
    expect(await call('POST', '/v1/embeddings', { body: { model: 'gpt-4o-mini', input: prompt }, headers: auth }), 200);
    expect(await call('GET', `/v1/models${q}`, { headers: auth }), 200);

    // Refusals: bad and revoked keys, unknown model, malformed JSON, 404, 405.
    expect(await call('POST', '/v1/chat/completions', { body: chatBody('gpt-4o-mini'), headers: bogus }), 401);
    expect(await call('POST', '/v1/chat/completions', {
      body: chatBody('gpt-4o-mini'), headers: { 'X-Api-Key': clientSecrets.xApiKey },
    }), 401);
    expect(await call('POST', '/v1/chat/completions', {
      body: chatBody('gpt-4o-mini'), headers: { Authorization: `Bearer ${createdKey}` },
    }), 401);
    expect(await call('GET', '/v1/models', { headers: bogus }), 401);
    expect(await call('POST', '/v1/chat/completions', { body: chatBody('no-such-model'), headers: auth }), 404);
    expect(await call('POST', '/v1/chat/completions', {
      body: `{"model":"gpt-4o-mini","password":"${clientSecrets.password}","messages":[{"content":"${prompt}"`,
      headers: auth,
    }), 400);
    expect(await call('POST', '/v1/chat/completions', { body: { model: 'gpt-4o-mini', messages: prompt }, headers: auth }), 400);
    expect(await call('GET', `/v1/no-such-route${q}`, { headers: auth }), 404);
    expect(await call('GET', '/v1/chat/completions', { headers: auth }), 405);

    // Health, stats and metrics, with the right and wrong tokens.
    expect(await call('GET', '/health', { headers: bogus }), 200);
    expect(await call('GET', '/health/dashboard', { headers: reader }), 200);
    expect(await call('GET', '/health/dashboard', { headers: bogus }), 401);
    expect(await call('GET', '/models/stats', { headers: reader }), 200);
    expect(await call('GET', '/models/stats', { headers: admin }), 200);
    expect(await call('GET', '/models/stats', { headers: { 'X-Api-Key': clientSecrets.xApiKey } }), 401);
    expect(await call('GET', '/metrics', { headers: bogus }), 401);

    // Everything exported: wait for the access lines and the spans.
    await waitFor('Loki lines of the proxied requests', () =>
      loki.lines().filter((l) => l.message === 'request completed').length >= 8, gateway);
    await waitFor('spans of the proxied requests', () => otlp.spans.length >= 16, gateway);
    const metrics = await call('GET', '/metrics', { headers: { Authorization: `Bearer ${configSecrets.metricsToken}` } });
    expect(metrics, 200);
    const upstream = JSON.parse(await (await fetch(`http://127.0.0.1:${mockPort}/_mock/requests`)).text()).requests;

    const status = await gateway.terminate();
    assert.equal(status.code, 0, gateway.describe());
    const files = {};
    for (const name of await readdir(dataDir)) files[name] = await readFile(path.join(dataDir, name));
    return {
      stdout: gateway.stdout,
      stderr: gateway.stderr,
      loki: loki.rawBodies.join('\n'),
      lokiLines: loki.lines(),
      lokiViolations: loki.violations,
      otlp: otlp.rawBodies.map((b) => b.toString('latin1')).join('\n'),
      otlpErrors: otlp.errors,
      otlpAuthorization: otlp.exports.map((e) => e.authorization),
      spans: otlp.spans,
      metrics: metrics.text,
      responses,
      files,
      upstream,
      apiKey,
      createdKey,
    };
  } finally {
    if (gateway?.running) await gateway.terminate();
    await mock.terminate();
    await loki.stop();
    await otlp.stop();
    await rm(tmpDir, { recursive: true, force: true });
  }
}

async function waitFor(what, predicate, gateway, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}\n${gateway.describe()}`);
}

// The checks both runs share: no credential anywhere, the client's secrets
// in no log, export, metric, response or ledger, nothing of the client's
// credentials upstream.
function checkCommon(out) {
  const all = { ...configSecrets, ...clientSecrets, apiKey: out.apiKey, createdKey: out.createdKey };
  assertNone(out.stdout, all, 'stdout');
  assertNone(out.stderr, all, 'stderr');
  assertNone(out.loki, all, 'a Loki push');
  assertNone(out.otlp, all, 'an OTLP export');
  assertNone(out.metrics, all, '/metrics');
  const credentials = { ...configSecrets, apiKey: out.apiKey, createdKey: out.createdKey };
  for (const r of out.responses) assertNone(r.text, r.echoesInput ? credentials : all, `the response to ${r.what}`);
  for (const [name, bytes] of Object.entries(out.files)) assertNone(bytes.toString('latin1'), all, `ledger file ${name}`);
  assert.ok(Object.keys(out.files).some((n) => n.endsWith('-wal') || n === 'gw.db'), Object.keys(out.files).join());

  // Nothing searched was empty: the outputs did carry the traffic.
  assert.deepEqual(out.lokiViolations, []);
  assert.deepEqual(out.otlpErrors, []);
  assert.ok(out.lokiLines.some((l) => l.route === '/v1/embeddings'), 'embeddings logged');
  assert.ok(out.lokiLines.some((l) => l.message === 'admin request served'), 'admin calls logged');
  assert.ok(out.lokiLines.some((l) => l.message === 'request refused'), 'refusals logged');
  assert.ok(out.lokiLines.some((l) => l.message === 'provider error'), 'the failover logged');
  assert.ok(out.spans.some((s) => s.name === 'chat claude-sonnet-4-5' || s.name === 'chat claude-sonnet-4.5'),
    out.spans.map((s) => s.name).join());
  assert.ok(out.metrics.includes('model_inference_requests_total{'), 'metrics scraped');
  assert.ok(out.otlp.includes('gpt-4o-mini') && out.otlp.includes('/v1/embeddings'), 'the OTLP bytes are searchable');
  assert.ok(out.loki.includes('request completed'), 'the Loki bodies are searchable');
  const db = out.files['gw.db'].toString('latin1') + (out.files['gw.db-wal']?.toString('latin1') ?? '');
  assert.ok(db.includes('gpt-4o-mini'), 'ledger rows written');

  // The collectors get their credential in a header, never in the payload.
  assert.ok(out.otlpAuthorization.every((a) => a === `Bearer ${configSecrets.otlpToken}`), out.otlpAuthorization.join());

  // Upstream sees its own key and none of the client's credentials.
  assert.ok(out.upstream.length >= 6, `${out.upstream.length} upstream requests`);
  for (const u of out.upstream) {
    const headers = JSON.stringify(u.headers);
    assertNone(headers, { ...clientSecrets, apiKey: out.apiKey, adminKey: configSecrets.adminKey }, `upstream headers of ${u.target}`);
    assert.ok(headers.includes(configSecrets.upstreamKey), `upstream key sent to ${u.target}`);
    assert.ok(!u.target.includes(clientSecrets.queryKey), `query string forwarded to ${u.target}`);
  }
}

describe('secrets reach no output', () => {
  test('log_content off: no secret and no prompt text anywhere', async () => {
    const out = await exercise({ logContent: false, protocol: 'http/protobuf' });
    checkCommon(out);
    const marker = { promptMarker };
    assertNone(out.stdout, marker, 'stdout');
    assertNone(out.loki, marker, 'a Loki push');
    assertNone(out.otlp, marker, 'an OTLP export');
    assertNone(out.metrics, marker, '/metrics');
    for (const r of out.responses) assertNone(r.text, marker, `the response to ${r.what}`);
    for (const [name, bytes] of Object.entries(out.files)) assertNone(bytes.toString('latin1'), marker, `ledger file ${name}`);
    assert.ok(!out.lokiLines.some((l) => 'prompt' in l), 'no prompt field with log_content off');
  });

  test('log_content on: the prompt is logged with its secrets redacted', async () => {
    const out = await exercise({ logContent: true, protocol: 'http/json' });
    checkCommon(out);
    const logged = out.lokiLines.filter((l) => typeof l.prompt === 'string' && l.prompt.includes(promptMarker));
    assert.ok(logged.length >= 4, `${logged.length} access lines with the prompt`);
    for (const line of logged) {
      assert.ok(line.prompt.includes('[REDACTED_CARD]'), line.prompt);
      assert.ok(line.prompt.includes('[REDACTED_EMAIL]'), line.prompt);
      assert.ok(line.prompt.includes('[REDACTED_KEY]') || line.prompt.includes('[REDACTED]'), line.prompt);
    }
    // Traces carry no content even then.
    assertNone(out.otlp, { promptMarker }, 'an OTLP export');
    for (const [name, bytes] of Object.entries(out.files)) {
      assertNone(bytes.toString('latin1'), { promptMarker }, `ledger file ${name}`);
    }
  });

  test('a database URL password is not printed when the store cannot open', async () => {
    const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'gatewayz-secrets-db-'));
    const dbPassword = 'pgpw-Xc4Vb8Nm2Lk6Jh9G';
    try {
      const configFile = path.join(tmpDir, 'gatewayz.yaml');
      await writeFile(configFile, `server:
  listen: "127.0.0.1:0"
storage:
  url: "postgres://gatewayz:${dbPassword}@127.0.0.1:${await closedPort()}/gatewayz?sslmode=disable"
providers:
  - name: mock
    kind: openai
    base_url: "http://127.0.0.1:1/v1"
    api_key: "${configSecrets.upstreamKey}"
    models:
      - id: gpt-4o-mini
`);
      const check = new Child('gatewayz check-config', ['check-config', configFile]);
      await check.exited;
      const serve = new Child('gatewayz serve', ['serve', '--config', configFile]);
      const status = await serve.exited;
      assert.equal(status.code, 1, serve.describe());
      assert.ok(serve.stdout.includes('cannot open the store'), serve.describe());
      for (const child of [check, serve]) {
        assertNone(child.stdout + child.stderr, { dbPassword, upstreamKey: configSecrets.upstreamKey }, child.name);
        assert.ok(!(child.stdout + child.stderr).includes('Sanitizer'), child.describe());
      }
    } finally {
      await rm(tmpDir, { recursive: true, force: true });
    }
  });
});
