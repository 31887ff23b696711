// An OTLP/HTTP trace receiver for tests: decodes every export strictly and
// keeps the spans in one normalized shape, whichever encoding came in.
//
// protobuf: decoded with the protobufjs code generated from
// opentelemetry-proto that @opentelemetry/otlp-transformer ships (a decoder
// independent of gatewayz's encoder), then re-encoded: the bytes must be
// identical, so an unknown field, a wrong wire type or a field out of
// field-number order fails the export.
// JSON: checked against the OTLP/JSON mapping: only known lowerCamelCase
// keys, hex ids of the right length, integer enums, 64-bit integers as
// decimal strings.
// Any violation is recorded in `errors` (and answered with 400).

import http from 'node:http';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');
const ExportTraceServiceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const ExportTraceServiceResponse = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;

const hex = (bytes) => Buffer.from(bytes).toString('hex');

function fail(message) {
  throw new Error(message);
}

// --- protobuf -------------------------------------------------------------

function pbValue(v) {
  const set = Object.keys(v).filter((k) => k !== 'toJSON');
  if (set.length !== 1) fail(`AnyValue with ${set.length} members: ${JSON.stringify(set)}`);
  const k = set[0];
  switch (k) {
    case 'stringValue': return { type: 'string', value: v.stringValue };
    case 'boolValue': return { type: 'bool', value: v.boolValue };
    case 'intValue': return { type: 'int', value: BigInt(v.intValue.toString()) };
    case 'doubleValue': return { type: 'double', value: v.doubleValue };
    case 'arrayValue': return { type: 'array', value: (v.arrayValue.values ?? []).map(pbValue) };
    default: fail(`unexpected AnyValue member ${k}`);
  }
  return null;
}

function pbAttributes(list) {
  const out = new Map();
  for (const kv of list ?? []) {
    if (out.has(kv.key)) fail(`attribute ${kv.key} twice`);
    out.set(kv.key, pbValue(kv.value ?? {}));
  }
  return out;
}

function decodeProtobuf(body) {
  const message = ExportTraceServiceRequest.decode(body);
  const again = Buffer.from(ExportTraceServiceRequest.encode(message).finish());
  if (!again.equals(body)) {
    fail(`protobuf does not round-trip (unknown field, wrong wire type, order or default value): ` +
      `${body.length} bytes in, ${again.length} out`);
  }
  const verified = ExportTraceServiceRequest.verify(message);
  if (verified) fail(`protobuf verify: ${verified}`);
  const out = [];
  for (const rs of message.resourceSpans) {
    const resource = pbAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans) {
      for (const s of ss.spans) {
        out.push({
          resource,
          scope: { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' },
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: s.parentSpanId && s.parentSpanId.length ? hex(s.parentSpanId) : '',
          traceState: s.traceState ?? '',
          flags: s.flags ?? 0,
          name: s.name,
          kind: s.kind,
          start: BigInt(s.startTimeUnixNano.toString()),
          end: BigInt(s.endTimeUnixNano.toString()),
          attributes: pbAttributes(s.attributes),
          events: (s.events ?? []).map((e) => ({
            name: e.name,
            time: BigInt(e.timeUnixNano.toString()),
            attributes: pbAttributes(e.attributes),
          })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
        });
      }
    }
  }
  return out;
}

// --- JSON -----------------------------------------------------------------

function onlyKeys(obj, allowed, where) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail(`${where}: not an object`);
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) fail(`${where}: unexpected key ${k}`);
  }
}

function jsonHex(v, bytes, where) {
  if (typeof v !== 'string' || v.length !== 2 * bytes || !/^[0-9a-f]+$/.test(v)) {
    fail(`${where}: not ${2 * bytes} lower-case hex digits: ${JSON.stringify(v)}`);
  }
  if (/^0+$/.test(v)) fail(`${where}: all zero`);
  return v;
}

function jsonU64(v, where) {
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]*)$/.test(v)) fail(`${where}: not a decimal string: ${JSON.stringify(v)}`);
  return BigInt(v);
}

function jsonValue(v, where) {
  onlyKeys(v, ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue'], where);
  const keys = Object.keys(v);
  if (keys.length !== 1) fail(`${where}: AnyValue with ${keys.length} members`);
  const k = keys[0];
  const x = v[k];
  switch (k) {
    case 'stringValue':
      if (typeof x !== 'string') fail(`${where}: stringValue`);
      return { type: 'string', value: x };
    case 'boolValue':
      if (typeof x !== 'boolean') fail(`${where}: boolValue`);
      return { type: 'bool', value: x };
    case 'intValue':
      if (typeof x !== 'string' || !/^-?(0|[1-9][0-9]*)$/.test(x)) fail(`${where}: intValue must be a decimal string`);
      return { type: 'int', value: BigInt(x) };
    case 'doubleValue':
      if (typeof x !== 'number') fail(`${where}: doubleValue`);
      return { type: 'double', value: x };
    default:
      onlyKeys(x, ['values'], `${where}.arrayValue`);
      return { type: 'array', value: (x.values ?? []).map((e, i) => jsonValue(e, `${where}.values[${i}]`)) };
  }
}

function jsonAttributes(list, where) {
  const out = new Map();
  if (list === undefined) return out;
  if (!Array.isArray(list)) fail(`${where}: attributes not an array`);
  list.forEach((kv, i) => {
    onlyKeys(kv, ['key', 'value'], `${where}[${i}]`);
    if (typeof kv.key !== 'string') fail(`${where}[${i}].key`);
    if (out.has(kv.key)) fail(`${where}: attribute ${kv.key} twice`);
    out.set(kv.key, jsonValue(kv.value, `${where}[${i}].value`));
  });
  return out;
}

function decodeJson(text) {
  const doc = JSON.parse(text);
  onlyKeys(doc, ['resourceSpans'], 'request');
  const out = [];
  for (const [ri, rs] of doc.resourceSpans.entries()) {
    onlyKeys(rs, ['resource', 'scopeSpans', 'schemaUrl'], `resourceSpans[${ri}]`);
    onlyKeys(rs.resource, ['attributes', 'droppedAttributesCount'], 'resource');
    const resource = jsonAttributes(rs.resource.attributes, 'resource.attributes');
    for (const ss of rs.scopeSpans) {
      onlyKeys(ss, ['scope', 'spans', 'schemaUrl'], 'scopeSpans');
      onlyKeys(ss.scope, ['name', 'version', 'attributes', 'droppedAttributesCount'], 'scope');
      if (!ss.spans.length) fail('an empty scopeSpans envelope');
      for (const [si, s] of ss.spans.entries()) {
        const w = `spans[${si}]`;
        onlyKeys(s, ['traceId', 'spanId', 'traceState', 'parentSpanId', 'flags', 'name', 'kind', 'startTimeUnixNano',
          'endTimeUnixNano', 'attributes', 'events', 'status'], w);
        if (!Number.isInteger(s.kind)) fail(`${w}.kind must be an integer, got ${JSON.stringify(s.kind)}`);
        if (s.flags !== undefined && !Number.isInteger(s.flags)) fail(`${w}.flags must be an integer`);
        if (s.status !== undefined) {
          onlyKeys(s.status, ['code', 'message'], `${w}.status`);
          if (!Number.isInteger(s.status.code)) fail(`${w}.status.code must be an integer`);
        }
        out.push({
          resource,
          scope: { name: ss.scope.name ?? '', version: ss.scope.version ?? '' },
          traceId: jsonHex(s.traceId, 16, `${w}.traceId`),
          spanId: jsonHex(s.spanId, 8, `${w}.spanId`),
          parentSpanId: s.parentSpanId === undefined ? '' : jsonHex(s.parentSpanId, 8, `${w}.parentSpanId`),
          traceState: s.traceState ?? '',
          flags: s.flags ?? 0,
          name: s.name,
          kind: s.kind,
          start: jsonU64(s.startTimeUnixNano, `${w}.startTimeUnixNano`),
          end: jsonU64(s.endTimeUnixNano, `${w}.endTimeUnixNano`),
          attributes: jsonAttributes(s.attributes, `${w}.attributes`),
          events: (s.events ?? []).map((e, ei) => {
            onlyKeys(e, ['timeUnixNano', 'name', 'attributes'], `${w}.events[${ei}]`);
            return {
              name: e.name,
              time: jsonU64(e.timeUnixNano, `${w}.events[${ei}].timeUnixNano`),
              attributes: jsonAttributes(e.attributes, `${w}.events[${ei}].attributes`),
            };
          }),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
        });
      }
    }
  }
  return out;
}

// --- the receiver ---------------------------------------------------------

export class OtlpReceiver {
  constructor() {
    this.spans = [];
    this.errors = [];
    this.exports = [];  // {contentType, contentEncoding, authorization, userAgent, spans}
    this.rawBodies = [];  // every export's decompressed body (Buffer), for byte-level checks
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    return this;
  }

  async stop() {
    await new Promise((resolve) => this.server.close(resolve));
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const contentType = req.headers['content-type'] ?? '';
      try {
        if (req.method !== 'POST' || req.url !== '/v1/traces') fail(`${req.method} ${req.url}`);
        let body = Buffer.concat(chunks);
        const encoding = req.headers['content-encoding'] ?? '';
        if (encoding === 'gzip') body = zlib.gunzipSync(body);
        else if (encoding !== '') fail(`content-encoding ${encoding}`);
        this.rawBodies.push(body);
        let spans;
        if (contentType === 'application/x-protobuf') spans = decodeProtobuf(body);
        else if (contentType === 'application/json') spans = decodeJson(body.toString('utf8'));
        else fail(`content-type ${contentType}`);
        this.exports.push({
          contentType,
          contentEncoding: encoding,
          authorization: req.headers.authorization ?? '',
          userAgent: req.headers['user-agent'] ?? '',
          spans,
        });
        this.spans.push(...spans);
        if (contentType === 'application/json') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{}');
        } else {
          res.writeHead(200, { 'content-type': 'application/x-protobuf' });
          res.end(Buffer.from(ExportTraceServiceResponse.encode({}).finish()));
        }
      } catch (err) {
        this.errors.push(err.message);
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: err.message }));
      }
    });
  }

  // Waits until `pick(spans)` returns something truthy (or throws after `ms`).
  async waitFor(pick, what, ms = 15_000) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (this.errors.length) throw new Error(`receiver rejected an export: ${this.errors.join('; ')}`);
      const got = pick(this.spans);
      if (got) return got;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no ${what} within ${ms} ms; got ${this.spans.length} spans: ` +
      this.spans.map((s) => s.name).join(', '));
  }
}

export const attr = (span, key) => span.attributes.get(key)?.value;
