// OpenTelemetry traces end to end: a real gatewayz exporting to an OTLP
// receiver (otlp_receiver.mjs, which decodes every export strictly), with
// `gatewayz mock-provider` processes upstream.
//
// Checks the span structure (ids, kinds, timestamps, parentage) and every
// attribute the dashboards group by on a plain, a streaming, a failed-over
// and an Anthropic request; inbound traceparent continuation and outbound
// injection (the mock records the headers it received); both OTLP encodings
// (protobuf + gzip from the config file, JSON from OTEL_* variables); and a
// collector that is down: requests unaffected, drops counted in
// gatewayz_spans_dropped_total.
//
// Run: GATEWAYZ_BIN=build/src/app/gatewayz node --test tests/node/traces.test.mjs
// (CTest does this: tests/integration/CMakeLists.txt).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Child, closedPort, waitForPort } from './lib/processes.mjs';
import { OtlpReceiver, attr } from './lib/otlp_receiver.mjs';

const upstreamKey = 'mock-upstream-key';
const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

function config({ portFile, goodPort, badPort, tracing, extra = '' }) {
  return `# written by tests/node/traces.test.mjs
server:
  listen: "127.0.0.1:0"
  port_file: "${portFile}"
  threads: 2
storage:
  url: none
tracing:
${tracing}
${extra}providers:
  - name: flaky
    kind: openai
    base_url: "http://127.0.0.1:${badPort}/v1"
    api_key: "${upstreamKey}"
    models:
      - id: failover-model
        upstream: gpt-4o-mini
  - name: mock
    kind: openai
    base_url: "http://127.0.0.1:${goodPort}/v1"
    api_key: "${upstreamKey}"
    models:
      - id: gpt-4o-mini
      - id: failover-model
        upstream: gpt-4o-mini
  - name: mock-anthropic
    kind: anthropic
    base_url: "http://127.0.0.1:${goodPort}/v1"
    api_key: "${upstreamKey}"
    models:
      - id: claude-sonnet-4.5
        upstream: claude-sonnet-4-5
`;
}


function assertIds(span) {
  assert.match(span.traceId, /^[0-9a-f]{32}$/);
  assert.match(span.spanId, /^[0-9a-f]{16}$/);
  assert.notEqual(span.traceId, '0'.repeat(32));
  assert.ok(span.end >= span.start, `${span.name}: end before start`);
  const now = BigInt(Date.now()) * 1_000_000n;
  assert.ok(span.start > now - 600_000_000_000n && span.end <= now + 1_000_000_000n, `${span.name}: timestamps off`);
}

function assertServerSpan(span, { model, route = '/v1/chat/completions', status = 200 }) {
  assertIds(span);
  assert.equal(span.kind, SERVER);
  assert.equal(span.name, `POST ${route}`);
  assert.equal(attr(span, 'http.request.method'), 'POST');
  assert.equal(attr(span, 'http.route'), route);
  assert.equal(attr(span, 'url.path'), route);
  assert.equal(attr(span, 'http.response.status_code'), BigInt(status));
  assert.equal(attr(span, 'http.status_code'), BigInt(status));
  assert.equal(attr(span, 'gen_ai.request.model'), model);
  assert.equal(attr(span, 'gen_ai.operation.name'), 'chat');
  assert.equal(span.status.code, 0, 'a served request leaves the status unset');
  assert.equal(span.resource.get('service.name').value, 'gatewayz-api');
  assert.ok(span.resource.get('service.version').value.length > 0);
}

// The CLIENT span's attributes every attempt carries (GenAI conventions and gatewayz's own).
function assertClientSpan(span, server, { model, system, provider, attempt, port, status = 200 }) {
  assertIds(span);
  assert.equal(span.kind, CLIENT);
  assert.equal(span.name, `chat ${model}`);
  assert.equal(span.traceId, server.traceId);
  assert.equal(span.parentSpanId, server.spanId);
  assert.ok(span.start >= server.start && span.end <= server.end, 'the attempt lies within the request');
  assert.equal(attr(span, 'gen_ai.system'), system);
  assert.equal(attr(span, 'gen_ai.provider.name'), system);
  assert.equal(attr(span, 'gen_ai.request.model'), model);
  assert.equal(attr(span, 'gen_ai.operation.name'), 'chat');
  assert.equal(attr(span, 'http.response.status_code'), BigInt(status));
  assert.equal(attr(span, 'gatewayz.provider.name'), provider);
  assert.equal(attr(span, 'gatewayz.attempt'), BigInt(attempt));
  assert.equal(attr(span, 'server.address'), '127.0.0.1');
  assert.equal(attr(span, 'server.port'), BigInt(port));
}

// `body`: the answer the client got (for a stream: the first chunk's id and
// model, the usage chunk's usage and the finish reason).
function assertAnswered(span, body) {
  const finish = body.choices.map((c) => c.finish_reason);
  assert.equal(attr(span, 'gen_ai.response.id'), body.id);
  assert.equal(attr(span, 'gen_ai.response.model'), body.model);
  assert.deepEqual(attr(span, 'gen_ai.response.finish_reasons').map((v) => v.value), finish);
  assert.equal(attr(span, 'gen_ai.response.finish_reason'), finish[0]);
  assert.equal(attr(span, 'gen_ai.usage.input_tokens'), BigInt(body.usage.prompt_tokens));
  assert.equal(attr(span, 'gen_ai.usage.output_tokens'), BigInt(body.usage.completion_tokens));
}

// Nothing secret may reach a span: no prompt text, no API key.
function assertNoSecrets(spans, ...secrets) {
  for (const span of spans) {
    for (const [key, value] of span.attributes) {
      const text = JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
      for (const secret of secrets) assert.ok(!text.includes(secret), `${span.name} ${key} carries ${secret}`);
    }
  }
}

describe('gatewayz traces', () => {
  let tmpDir;
  let good;
  let bad;
  let goodPort;
  let badPort;
  const gateways = [];
  let receiver;

  async function startGateway(name, tracing, env = undefined, extra = '') {
    const portFile = path.join(tmpDir, `${name}.port`);
    const configFile = path.join(tmpDir, `${name}.yaml`);
    await writeFile(configFile, config({ portFile, goodPort, badPort, tracing, extra }));
    const child = new Child(`gatewayz serve (${name})`, ['serve', '--config', configFile], env);
    gateways.push(child);
    const port = await waitForPort(child, portFile);
    return { child, base: `http://127.0.0.1:${port}` };
  }

  let gw;  // protobuf + gzip, configured in the file

  before(async () => {
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'gatewayz-traces-'));
    receiver = await new OtlpReceiver().start();
    const goodFile = path.join(tmpDir, 'good.port');
    good = new Child('mock-provider (good)', ['mock-provider', '--listen', '127.0.0.1:0', '--port-file', goodFile,
      '--threads', '1', '--api-key', upstreamKey, '--ttft-ms', '20']);
    const badFile = path.join(tmpDir, 'bad.port');
    bad = new Child('mock-provider (failing)', ['mock-provider', '--listen', '127.0.0.1:0', '--port-file', badFile,
      '--threads', '1', '--api-key', upstreamKey, '--error-rate', '1', '--failure', '500']);
    goodPort = await waitForPort(good, goodFile);
    badPort = await waitForPort(bad, badFile);
    gw = await startGateway('protobuf', `  enabled: true
  otlp_endpoint: "http://127.0.0.1:${receiver.port}"
  schedule_delay_ms: 100
  environment: test`);
  });

  after(async () => {
    for (const child of gateways) if (child.running) await child.terminate();
    for (const child of [good, bad]) if (child?.running) await child.terminate();
    if (receiver) await receiver.stop();
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  });

  async function chat(base, body, headers = {}) {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { res, text, requestId: res.headers.get('x-request-id') };
  }

  async function upstreamRequests() {
    const base = `http://127.0.0.1:${goodPort}/_mock/requests`;
    const { requests } = await (await fetch(base)).json();
    await fetch(base, { method: 'DELETE' });
    return requests;
  }

  // The server span of a request (by its x-request-id) and its client spans, by attempt.
  async function spansOf(requestId, clients = 1) {
    return receiver.waitFor((spans) => {
      const server = spans.find((s) => s.kind === SERVER && attr(s, 'gatewayz.request.id') === requestId);
      if (!server) return null;
      const attempts = spans.filter((s) => s.kind === CLIENT && s.parentSpanId === server.spanId)
        .sort((a, b) => Number(attr(a, 'gatewayz.attempt') - attr(b, 'gatewayz.attempt')));
      return attempts.length >= clients ? { server, attempts } : null;
    }, `spans of ${requestId}`);
  }

  test('a plain chat completion: one server span, one client span, every attribute', async () => {
    await upstreamRequests();
    const prompt = 'a secret prompt 7d1f';
    const { res, text, requestId } = await chat(gw.base, {
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }], max_tokens: 12, temperature: 0.5, top_p: 0.9,
    });
    assert.equal(res.status, 200, text);
    const body = JSON.parse(text);
    const { server, attempts } = await spansOf(requestId);
    assert.equal(attempts.length, 1);
    assertServerSpan(server, { model: 'gpt-4o-mini' });
    assert.equal(server.parentSpanId, '', 'a new trace: the server span is the root');
    assert.equal(server.resource.get('deployment.environment').value, 'test');
    assert.equal(attr(server, 'gen_ai.system'), 'openai');
    const [client] = attempts;
    assertClientSpan(client, server, { model: 'gpt-4o-mini', system: 'openai', provider: 'mock', attempt: 1, port: goodPort });
    assertAnswered(client, body);
    assert.equal(body.choices[0].finish_reason, 'length', 'max_tokens 12 cuts the answer');
    assert.equal(attr(client, 'gen_ai.request.max_tokens'), 12n);
    assert.equal(attr(client, 'gen_ai.request.temperature'), 0.5);
    assert.equal(attr(client, 'gen_ai.request.top_p'), 0.9);
    assert.equal(attr(client, 'gen_ai.request.stream'), undefined, 'set only when the request streams');
    assert.equal(attr(client, 'error.type'), undefined);
    assert.equal(client.status.code, 0);
    assertNoSecrets([server, client], prompt, upstreamKey);

    // Outbound injection: the provider got the client span as its parent.
    const upstream = await upstreamRequests();
    assert.equal(upstream.length, 1);
    assert.equal(upstream[0].headers.traceparent, `00-${server.traceId}-${client.spanId}-01`);
    assert.equal(upstream[0].headers.tracestate, undefined);
    // The export itself: protobuf, gzip.
    const exp = receiver.exports.find((e) => e.spans.includes(server));
    assert.equal(exp.contentType, 'application/x-protobuf');
    assert.equal(exp.contentEncoding, 'gzip');
  });

  test('a stream: gen_ai.request.stream and time to first chunk', async () => {
    const { res, text, requestId } = await chat(gw.base, {
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'stream it' }], stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(res.status, 200);
    const chunks = text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)));
    const usage = chunks.find((c) => c.usage).usage;
    const { server, attempts } = await spansOf(requestId);
    assertServerSpan(server, { model: 'gpt-4o-mini' });
    const [client] = attempts;
    assertClientSpan(client, server, { model: 'gpt-4o-mini', system: 'openai', provider: 'mock', attempt: 1, port: goodPort });
    assertAnswered(client, { id: chunks[0].id, model: chunks[0].model, usage, choices: [{ finish_reason: 'stop' }] });
    assert.equal(attr(client, 'gen_ai.request.stream'), true);
    assert.equal(attr(server, 'gen_ai.request.stream'), true);
    const ttfc = attr(client, 'gen_ai.response.time_to_first_chunk');
    assert.ok(ttfc >= 0.015 && ttfc < 30, `time to first chunk ${ttfc}`);  // the mock waits 20 ms
    const event = client.events.find((e) => e.name === 'gen_ai.first_chunk');
    assert.ok(event, 'first chunk event');
    assert.ok(event.time >= client.start && event.time <= client.end);
  });

  test('a failover: one server span, a failed client span with error status, then the served one', async () => {
    const { res, text, requestId } = await chat(gw.base, {
      model: 'failover-model', messages: [{ role: 'user', content: 'fail over' }],
    });
    assert.equal(res.status, 200, text);
    const { server, attempts } = await spansOf(requestId, 2);
    assert.equal(attempts.length, 2);
    assertServerSpan(server, { model: 'failover-model' });
    assert.equal(attr(server, 'gatewayz.provider.name'), 'mock');
    const [failed, served] = attempts;
    assertClientSpan(failed, server, { model: 'failover-model', system: 'openai', provider: 'flaky', attempt: 1,
      port: badPort, status: 500 });
    assert.equal(failed.status.code, ERROR);
    assert.equal(attr(failed, 'error.type'), '500');
    assertClientSpan(served, server, { model: 'failover-model', system: 'openai', provider: 'mock', attempt: 2,
      port: goodPort });
    assert.equal(served.status.code, 0);
    assert.ok(served.start >= failed.end, 'the second attempt follows the first');
    assertAnswered(served, JSON.parse(text));
  });

  test('an Anthropic request', async () => {
    const { res, text, requestId } = await chat(gw.base, {
      model: 'claude-sonnet-4.5', messages: [{ role: 'user', content: 'Hello Claude' }], max_tokens: 6,
    });
    assert.equal(res.status, 200, text);
    const { server, attempts } = await spansOf(requestId);
    assertServerSpan(server, { model: 'claude-sonnet-4.5' });
    assert.equal(attr(server, 'gen_ai.system'), 'anthropic');
    const [client] = attempts;
    assertClientSpan(client, server, { model: 'claude-sonnet-4.5', system: 'anthropic', provider: 'mock-anthropic',
      attempt: 1, port: goodPort });
    const body = JSON.parse(text);
    assert.equal(attr(client, 'gen_ai.response.model'), body.model);
    assert.equal(attr(client, 'gen_ai.response.id'), body.id);
    assert.equal(attr(client, 'gen_ai.usage.output_tokens'), BigInt(body.usage.completion_tokens));
    assert.equal(attr(client, 'gen_ai.request.max_tokens'), 6n);
  });

  test('an inbound traceparent is continued, its tracestate passed on', async () => {
    await upstreamRequests();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const { res, requestId } = await chat(gw.base, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
      { traceparent: `00-${traceId}-${parent}-01`, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
    assert.equal(res.status, 200);
    const { server, attempts } = await spansOf(requestId);
    assert.equal(server.traceId, traceId);
    assert.equal(server.parentSpanId, parent);
    assert.equal(server.traceState, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
    assert.equal(server.flags, 0x301, 'sampled, parent known to be remote');
    assert.equal(attempts[0].flags, 0x101, 'sampled, parent known to be local');
    const upstream = await upstreamRequests();
    assert.equal(upstream[0].headers.traceparent, `00-${traceId}-${attempts[0].spanId}-01`);
    assert.equal(upstream[0].headers.tracestate, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
  });

  test('an invalid traceparent starts a new trace; an unsampled one is propagated, not exported', async () => {
    const invalid = '00-00000000000000000000000000000000-00f067aa0ba902b7-01';
    const { requestId } = await chat(gw.base, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
      { traceparent: invalid, tracestate: 'congo=x' });
    const { server } = await spansOf(requestId);
    assert.notEqual(server.traceId, '0'.repeat(32));
    assert.equal(server.parentSpanId, '');
    assert.equal(server.traceState, '', 'tracestate is dropped with an invalid traceparent');

    await upstreamRequests();
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const unsampled = await chat(gw.base, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
      { traceparent: `00-${traceId}-b7ad6b7169203331-00` });
    assert.equal(unsampled.res.status, 200);
    const upstream = await upstreamRequests();
    assert.match(upstream[0].headers.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    // A later sampled request's spans arrive; the unsampled one's never do.
    const { requestId: later } = await chat(gw.base, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'y' }] });
    await spansOf(later);
    assert.equal(receiver.spans.filter((s) => s.traceId === traceId).length, 0);
  });

  test('OTEL_* variables: OTLP/JSON, service name, resource attributes and headers', async () => {
    const env = {
      ...process.env,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'none',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20otlp-token',
      OTEL_SERVICE_NAME: 'gatewayz-json',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=staging,team=ai',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    const json = await startGateway('json', '  enabled: false', env);
    const { res, text, requestId } = await chat(json.base, {
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'json please' }],
    });
    assert.equal(res.status, 200, text);
    const { server, attempts } = await spansOf(requestId);
    assert.equal(server.resource.get('service.name').value, 'gatewayz-json');
    assert.equal(server.resource.get('deployment.environment').value, 'staging');
    assert.equal(server.resource.get('team').value, 'ai');
    assert.equal(attempts[0].kind, CLIENT);
    assertAnswered(attempts[0], JSON.parse(text));
    const exp = receiver.exports.find((e) => e.spans.includes(server));
    assert.equal(exp.contentType, 'application/json');
    assert.equal(exp.contentEncoding, '');
    assert.equal(exp.authorization, 'Bearer otlp-token');
    assert.match(exp.userAgent, /^gatewayz\//);
    await json.child.terminate();
  });

  test('the response cache: lookup, attempt and store spans on a miss; only the lookup on a hit', async () => {
    const cached = await startGateway('cache', `  enabled: true
  otlp_endpoint: "http://127.0.0.1:${receiver.port}"
  schedule_delay_ms: 100`, undefined, 'cache:\n  mode: memory\n');
    const INTERNAL = 1;
    const request = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'cache me 5c2e' }] };
    const miss = await chat(cached.base, request);
    assert.equal(miss.res.status, 200, miss.text);
    assert.equal(miss.res.headers.get('x-gatewayz-cache'), 'miss');
    const hit = await chat(cached.base, request);
    assert.equal(hit.res.status, 200, hit.text);
    assert.equal(hit.res.headers.get('x-gatewayz-cache'), 'hit');
    const familyOf = (requestId, children) => receiver.waitFor((spans) => {
      const server = spans.find((s) => s.kind === SERVER && attr(s, 'gatewayz.request.id') === requestId);
      if (!server) return null;
      const below = spans.filter((s) => s.parentSpanId === server.spanId);
      return below.length >= children ? { server, below } : null;
    }, `spans of ${requestId}`);

    const m = await familyOf(miss.requestId, 3);
    assert.equal(attr(m.server, 'gatewayz.cache.result'), 'miss');
    const lookup = m.below.find((s) => s.name === 'cache lookup');
    const store = m.below.find((s) => s.name === 'cache store');
    const attempt = m.below.find((s) => s.kind === CLIENT);
    assert.ok(lookup && store && attempt, m.below.map((s) => s.name).join(', '));
    for (const span of [lookup, store]) {
      assertIds(span);
      assert.equal(span.kind, INTERNAL);
      assert.equal(span.traceId, m.server.traceId);
      assert.equal(attr(span, 'gatewayz.cache.backend'), 'memory');
      assert.ok(span.start >= m.server.start && span.end <= m.server.end, `${span.name} lies within the request`);
    }
    assert.equal(attr(lookup, 'gatewayz.cache.result'), 'miss');
    assert.ok(lookup.end <= attempt.start, 'the lookup comes before the provider call');
    // The answer is stored once it is in and before it is sent to the
    // client, which the attempt's span still covers.
    assert.ok(store.start >= attempt.start && store.end <= attempt.end, 'the store comes within the attempt');

    const h = await familyOf(hit.requestId, 1);
    assert.deepEqual(h.below.map((s) => s.name), ['cache lookup'], 'a hit calls no provider');
    assert.equal(attr(h.below[0], 'gatewayz.cache.result'), 'hit');
    assert.equal(attr(h.server, 'gatewayz.cache.result'), 'hit');
    assert.equal(attr(h.server, 'gatewayz.provider.name'), 'cache');
    const body = JSON.parse(hit.text);
    assert.equal(attr(h.server, 'gen_ai.usage.input_tokens'), BigInt(body.usage.prompt_tokens));
    assert.equal(attr(h.server, 'gen_ai.usage.output_tokens'), BigInt(body.usage.completion_tokens));
    assertNoSecrets([m.server, lookup, store, h.server, ...h.below], 'cache me 5c2e', upstreamKey);
    await cached.child.terminate();
  });

  test('a collector that is down: requests unaffected, dropped spans counted', async () => {
    const down = await closedPort();
    const gwDown = await startGateway('down', `  enabled: true
  otlp_endpoint: "http://127.0.0.1:${down}"
  schedule_delay_ms: 50
  export_timeout_ms: 300
  max_queue_size: 6
  max_export_batch_size: 2`);
    const started = Date.now();
    for (let i = 0; i < 30; ++i) {
      const { res, text } = await chat(gwDown.base, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `n${i}` }] });
      assert.equal(res.status, 200, text);
    }
    assert.ok(Date.now() - started < 20_000, 'requests were slowed down');
    let dropped = 0;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const metrics = await (await fetch(`${gwDown.base}/metrics`)).text();
      dropped = 0;
      for (const m of metrics.matchAll(/^gatewayz_spans_dropped_total\{reason="(queue_full|export_failed)"\} (\S+)$/gm)) {
        dropped += Number(m[2]);
      }
      if (dropped >= 60) break;  // 30 requests, 2 spans each: none can arrive
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(dropped, 60, 'every span was counted as dropped');
    await gwDown.child.terminate();
  });

  test('shutdown exports what is queued', async () => {
    const before = receiver.spans.length;
    const { requestId } = await chat(gw.base, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'bye' }] });
    const status = await gw.child.terminate();
    assert.equal(status.code, 0, gw.child.describe());
    assert.ok(receiver.spans.length > before);
    assert.ok(receiver.spans.some((s) => attr(s, 'gatewayz.request.id') === requestId));
    assert.deepEqual(receiver.errors, []);
  });
});
