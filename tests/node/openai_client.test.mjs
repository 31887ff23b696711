// Drives a real gatewayz with the official OpenAI Node client.
//
// Starts `gatewayz mock-provider` and `gatewayz serve` (both on port 0, found
// through their port files), then checks what a client application relies on:
// plain and streamed chat completions through an OpenAI-kind and an
// Anthropic-kind provider, stream usage only when asked for, errors mapped to
// the client's exception classes, embeddings, the model list, and a clean
// SIGTERM shutdown.
//
// Run: GATEWAYZ_BIN=build/src/app/gatewayz node --test tests/node/openai_client.test.mjs
// (CTest does this: tests/integration/CMakeLists.txt).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import OpenAI, { NotFoundError } from 'openai';

import { Child, waitForPort } from './lib/processes.mjs';

const upstreamKey = 'mock-upstream-key';
const anthropicMaxTokens = 6;

function gatewayConfig({ portFile, mockPort, dir }) {
  return `# written by tests/node/openai_client.test.mjs
server:
  listen: "127.0.0.1:0"
  port_file: "${portFile}"
  threads: 2
# In the test's temp dir: the default (./gatewayz.db) is the source tree.
storage:
  url: "sqlite://${dir}/gatewayz.db"
  spill_path: "${dir}/ledger.spill"
providers:
  - name: mock
    kind: openai
    base_url: "http://127.0.0.1:${mockPort}/v1"
    api_key: "${upstreamKey}"
    models:
      - id: gpt-4o-mini
      - id: text-embedding-3-small
  - name: mock-anthropic
    kind: anthropic
    base_url: "http://127.0.0.1:${mockPort}/v1"
    api_key: "${upstreamKey}"
    models:
      - id: claude-sonnet-4.5
        upstream: claude-sonnet-4-5
`;
}

// Collects a chat stream: chunks, joined content, finish reasons, usage chunks.
async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const content = chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
  const finishReasons = chunks.flatMap((c) => (c.choices ?? []).map((ch) => ch.finish_reason)).filter(Boolean);
  const usageChunks = chunks.filter((c) => c.usage != null);
  return { chunks, content, finishReasons, usageChunks };
}

function assertUsage(usage, what) {
  assert.ok(usage, `${what}: usage missing`);
  assert.ok(usage.prompt_tokens > 0, `${what}: prompt_tokens ${usage.prompt_tokens}`);
  assert.ok(usage.completion_tokens > 0, `${what}: completion_tokens ${usage.completion_tokens}`);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens, `${what}: total_tokens`);
}

function assertChunks(result, what, finishReason = 'stop') {
  assert.ok(result.chunks.length >= 3, `${what}: only ${result.chunks.length} chunks`);
  for (const chunk of result.chunks) {
    assert.equal(chunk.object, 'chat.completion.chunk', `${what}: chunk object`);
  }
  const ids = new Set(result.chunks.map((c) => c.id));
  assert.equal(ids.size, 1, `${what}: all chunks of a stream share one id, got ${[...ids].join(', ')}`);
  assert.ok(result.content.length > 0, `${what}: empty content`);
  assert.deepEqual(result.finishReasons, [finishReason], `${what}: finish reasons`);
}

describe('gatewayz with the official openai client', () => {
  let tmpDir;
  let mock;
  let gateway;
  let mockPort;
  let client;

  before(async () => {
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'gatewayz-node-'));
    const mockPortFile = path.join(tmpDir, 'mock.port');
    mock = new Child('mock-provider', [
      'mock-provider', '--listen', '127.0.0.1:0', '--port-file', mockPortFile,
      '--threads', '1', '--api-key', upstreamKey,
    ]);
    mockPort = await waitForPort(mock, mockPortFile);

    const gatewayPortFile = path.join(tmpDir, 'gateway.port');
    const configFile = path.join(tmpDir, 'gatewayz.yaml');
    await writeFile(configFile, gatewayConfig({ portFile: gatewayPortFile, mockPort, dir: tmpDir }));
    gateway = new Child('gatewayz serve', ['serve', '--config', configFile]);
    const gatewayPort = await waitForPort(gateway, gatewayPortFile);

    client = new OpenAI({
      baseURL: `http://127.0.0.1:${gatewayPort}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
      timeout: 30_000,
    });
  });

  after(async () => {
    // Normally both are gone already (the last test stops them).
    if (gateway?.running) await gateway.terminate();
    if (mock?.running) await mock.terminate();
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  });

  // Upstream requests the mock recorded since the last call (then forgotten).
  async function takeUpstreamRequests() {
    const base = `http://127.0.0.1:${mockPort}/_mock/requests`;
    const res = await fetch(base);
    assert.equal(res.status, 200);
    const { requests } = await res.json();
    await fetch(base, { method: 'DELETE' });
    return requests;
  }

  test('plain chat completion', async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Say hello to the gateway' }],
      })
      .withResponse();
    assert.equal(response.status, 200);
    assert.ok(response.headers.get('x-request-id'), 'x-request-id header missing');
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.choices.length, 1);
    assert.equal(data.choices[0].message.role, 'assistant');
    assert.ok(data.choices[0].message.content.length > 0, 'empty content');
    assert.equal(data.choices[0].finish_reason, 'stop');
    assertUsage(data.usage, 'chat');
  });

  test('streaming chat completion without usage', async () => {
    const { data: stream, response } = await client.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Stream something' }],
        stream: true,
      })
      .withResponse();
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.ok(response.headers.get('x-request-id'), 'x-request-id header missing');
    const result = await collect(stream);
    assertChunks(result, 'stream');
    assert.equal(result.usageChunks.length, 0, 'usage arrived although stream_options.include_usage was not set');
  });

  test('streaming chat completion with stream_options.include_usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Stream something and count it' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const result = await collect(stream);
    assertChunks(result, 'stream+usage');
    assert.equal(result.usageChunks.length, 1, 'exactly one chunk carries usage');
    const last = result.chunks.at(-1);
    assert.equal(last, result.usageChunks[0], 'the usage chunk is the last one');
    assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
    assertUsage(last.usage, 'stream usage');
  });

  test('chat through the anthropic provider', async () => {
    await takeUpstreamRequests();
    const { data, response } = await client.chat.completions
      .create({
        model: 'claude-sonnet-4.5',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hello Claude' },
        ],
        // The mock generates exactly max_tokens tokens when a request sets it
        // (Anthropic's API always does), so the answer stops for length.
        max_tokens: anthropicMaxTokens,
      })
      .withResponse();
    assert.ok(response.headers.get('x-request-id'), 'x-request-id header missing');
    assert.equal(data.object, 'chat.completion');
    assert.ok(data.choices[0].message.content.length > 0, 'empty content');
    assert.equal(data.choices[0].finish_reason, 'length', 'stop_reason max_tokens -> finish_reason length');
    assertUsage(data.usage, 'anthropic chat');
    assert.equal(data.usage.completion_tokens, anthropicMaxTokens);

    const upstream = await takeUpstreamRequests();
    assert.equal(upstream.length, 1, `one upstream request, got ${JSON.stringify(upstream)}`);
    assert.equal(upstream[0].method, 'POST');
    assert.equal(upstream[0].target, '/v1/messages');
    assert.equal(upstream[0].headers['x-api-key'], upstreamKey, 'provider key sent upstream');
    assert.ok(!('authorization' in upstream[0].headers), 'client credentials not forwarded');
    assert.equal(upstream[0].headers['anthropic-version'], '2023-06-01');
    const body = JSON.parse(upstream[0].body);
    assert.equal(body.model, 'claude-sonnet-4-5', 'upstream model name used');
    assert.equal(body.max_tokens, anthropicMaxTokens, 'max_tokens passed on');
    // Anthropic accepts content as a string or as text blocks.
    const textOf = (content) =>
      typeof content === 'string' ? content : content.map((block) => block.text ?? '').join('');
    assert.deepEqual(
      body.messages.map((m) => ({ role: m.role, text: textOf(m.content) })),
      [{ role: 'user', text: 'Hello Claude' }],
    );
    assert.equal(textOf(body.system), 'Be brief.', 'system message moved to the top-level system field');
  });

  test('streaming through the anthropic provider', async () => {
    const stream = await client.chat.completions.create({
      model: 'claude-sonnet-4.5',
      messages: [{ role: 'user', content: 'Stream, Claude' }],
      max_tokens: anthropicMaxTokens,
      stream: true,
    });
    const result = await collect(stream);
    assertChunks(result, 'anthropic stream', 'length');
    assert.equal(result.usageChunks.length, 0, 'usage arrived although not asked for');
  });

  test('streaming through the anthropic provider with include_usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'claude-sonnet-4.5',
      messages: [{ role: 'user', content: 'Stream, Claude, and count' }],
      max_tokens: anthropicMaxTokens,
      stream: true,
      stream_options: { include_usage: true },
    });
    const result = await collect(stream);
    assertChunks(result, 'anthropic stream+usage', 'length');
    assert.equal(result.usageChunks.length, 1, 'exactly one chunk carries usage');
    assert.equal(result.chunks.at(-1), result.usageChunks[0], 'the usage chunk is the last one');
    assertUsage(result.usageChunks[0].usage, 'anthropic stream usage');
    assert.equal(result.usageChunks[0].usage.completion_tokens, anthropicMaxTokens);
  });

  test('openai provider: own key upstream, client request id honoured', async () => {
    await takeUpstreamRequests();
    const { response } = await client.chat.completions
      .create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Who am I?' }] },
        { headers: { 'X-Request-ID': 'node-client-req-1' } },
      )
      .withResponse();
    assert.equal(response.headers.get('x-request-id'), 'node-client-req-1');
    const upstream = await takeUpstreamRequests();
    assert.equal(upstream.length, 1);
    assert.equal(upstream[0].target, '/v1/chat/completions');
    assert.equal(upstream[0].headers.authorization, `Bearer ${upstreamKey}`, 'provider key, not the client one');
    assert.equal(upstream[0].headers['x-request-id'], 'node-client-req-1', 'request id sent upstream');
  });

  test('unknown model -> NotFoundError 404', async () => {
    await assert.rejects(
      client.chat.completions.create({
        model: 'no-such-model',
        messages: [{ role: 'user', content: 'Hello?' }],
      }),
      (err) => {
        assert.ok(err instanceof NotFoundError, `expected NotFoundError, got ${err?.constructor?.name}: ${err}`);
        assert.equal(err.status, 404);
        assert.equal(err.code, 'model_not_found');
        assert.equal(err.type, 'invalid_request_error');
        assert.ok(err.headers?.get?.('x-request-id') ?? err.headers?.['x-request-id'], 'x-request-id on errors too');
        return true;
      },
    );
  });

  test('embeddings', async () => {
    // The client asks for base64 by default and decodes it; a float array comes back either way.
    const result = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['first text', 'second text'],
    });
    assert.equal(result.object, 'list');
    assert.equal(result.data.length, 2);
    result.data.forEach((item, i) => {
      assert.equal(item.index, i);
      assert.ok(Array.isArray(item.embedding) && item.embedding.length > 0, 'embedding vector');
      assert.ok(item.embedding.every(Number.isFinite), 'finite numbers');
    });
    assert.notDeepEqual(result.data[0].embedding, result.data[1].embedding);
    assert.ok(result.usage.prompt_tokens > 0, 'embedding usage');

    const floats = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: 'first text',
      encoding_format: 'float',
    });
    assert.deepEqual(
      floats.data[0].embedding.map((x) => Math.fround(x)),
      result.data[0].embedding.map((x) => Math.fround(x)),
      'float and base64 encodings agree',
    );
  });

  test('model list', async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    for (const id of ['gpt-4o-mini', 'text-embedding-3-small', 'claude-sonnet-4.5']) {
      assert.ok(ids.includes(id), `${id} listed in ${ids.join(', ')}`);
    }
  });

  test('SIGTERM: the gateway drains and exits 0', async () => {
    const status = await gateway.terminate();
    assert.deepEqual(
      { code: status.code, signal: status.signal },
      { code: 0, signal: null },
      `gateway exit ${JSON.stringify(status)}\n${gateway.describe()}`,
    );
    const mockStatus = await mock.terminate();
    assert.equal(mockStatus.killed, undefined, `mock-provider ignored SIGTERM\n${mock.describe()}`);
  });
});
