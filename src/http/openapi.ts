// The OpenAPI 3.1 document served at /openapi.json, generated from the same zod schemas that validate requests
// (JSON Schema 2020-12, which OpenAPI 3.1 uses as is). A test checks it against the routes the server registers.
import { z } from 'zod';
import { ERRORS, type ErrorCode } from '../shared/errors.js';
import {
  counterName,
  counterSchema,
  createProductBody,
  errorSchema,
  incrementBody,
  listQuery,
  patchProductBody,
  productId,
  productPageSchema,
  productSchema,
  putProductBody,
} from './schemas.js';

type Json = Record<string, unknown>;

function schema(s: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Json;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (s: Json) => ({ 'application/json': { schema: s } });

/** Error responses by status, each listing the codes it can carry. */
function errors(...codes: ErrorCode[]): Json {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const c of codes) byStatus.set(ERRORS[c].status, [...(byStatus.get(ERRORS[c].status) ?? []), c]);
  const out: Json = {};
  for (const [status, list] of byStatus) {
    out[String(status)] = { description: `error: ${list.join(', ')}`, content: json(ref('Error')) };
  }
  return out;
}

const pathParam = (name: string, s: z.ZodType, description: string) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: schema(s, 'input'),
});

const body = (s: z.ZodType, required = true) => ({ required, content: json(schema(s, 'input')) });

// Errors any route can answer: a refused request head (src/http/head-check.ts), overload, drain, timeout, internal.
const common: ErrorCode[] = [
  'bad_framing',
  'unsupported_transfer_encoding',
  'overloaded',
  'unavailable',
  'request_timeout',
  'internal',
];
const writeErrors: ErrorCode[] = [
  ...common,
  'replication_down',
  'replication_timeout',
  'insufficient_storage',
  'durability_unavailable',
  'invalid_json',
  'payload_too_large',
  'idempotency_key_reused',
];
const preferHeader = {
  name: 'Prefer',
  in: 'header',
  required: false,
  description:
    'RFC 7240 preferences; only `durability` is used, others are ignored. `durability=local`: answered once committed on the instance. `durability=replicated`: answered only once the commit is confirmed in Cloud Storage (504 replication_timeout if not within REPLICATION_TIMEOUT_MS: the write committed locally and the error details carry its result; retry with the same Idempotency-Key to wait again). Without it: DEFAULT_DURABILITY. `replicated` on a server without a replica is 400 durability_unavailable; another durability value is 400 validation_failed.',
  schema: { type: 'string' },
  examples: { replicated: { value: 'durability=replicated' }, local: { value: 'durability=local' } },
};
/** On a write's 2xx: which durability was applied (when the request named one, or it was replicated). */
const applied = {
  'Preference-Applied': { schema: { type: 'string', enum: ['durability=local', 'durability=replicated'] }, description: 'the durability applied' },
  Bookmark: {
    schema: { type: 'string', pattern: '^[0-9]+$' },
    description: 'the replica position that holds this write: pass it as a Bookmark header to a read follower to read your own write there',
  },
};
/** Writes that read a body also check its Content-Type. */
const bodyErrors: ErrorCode[] = [...writeErrors, 'unsupported_media_type'];
const idempotencyHeader = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Optional, sent at most once, 1..128 printable ASCII characters (anything else, or a second Idempotency-Key header, is 400). The first request with a key runs; a later one with the same key, method, path and JSON body gets the stored response (4xx included) for IDEMPOTENCY_TTL_S; a different request with the key is 422.',
  schema: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[\\x20-\\x7e]+$' },
};
const writeParams = [idempotencyHeader, preferHeader];
const idParam = pathParam('id', productId, 'product id (positive integer)');
const nameParam = pathParam('name', counterName, 'counter name');

const health = (operationId: string, description?: string) => ({
  operationId,
  ...(description ? { description } : {}),
  responses: { '200': { description: 'the process runs', content: json({ type: 'object' }) } },
});

const ready = (operationId: string, description?: string) => ({
  operationId,
  ...(description ? { description } : {}),
  responses: {
    '200': {
      description: 'ready: role leader, standby (holds requests until it leads), promoting or follower; storage ok, or full (writes answer 507, reads work)',
      content: json({ type: 'object' }),
    },
    '503': { description: 'starting, draining, or replication down', content: json({ type: 'object' }) },
  },
});

export function openApiDocument(): Json {
  const listShape = listQuery.shape;
  return {
    openapi: '3.1.0',
    info: {
      title: 'sqlite-api-server',
      version: '1',
      description:
        'Products and counters on SQLite: one group-committing writer, read-only readers. Every response carries X-Request-Id. ' +
        'HEAD is answered wherever GET is: the same status and headers, no body. Path parameters are percent-decoded once. ' +
        'Request bodies are UTF-8 JSON: Content-Type application/json or a +json type (charset utf-8 if given), or none. ' +
        'A read follower (ROLE=follower) serves the same API: reads from its copy of the replica (a Bookmark request header makes it wait until the copy holds that position), ' +
        'writes forwarded to the writer; its responses also carry Replica-Position and Replica-Age-Ms, and a failed forward is 502 writer_unreachable or 504 writer_timeout.',
    },
    paths: {
      '/products': {
        get: {
          operationId: 'listProducts',
          summary: 'Products ordered by id: offset pagination, or keyset with `after` (not both)',
          parameters: [
            // Documented as the integers they parse to (a query string carries them as text), from listQuery.
            { name: 'limit', in: 'query', description: 'page size', schema: { ...schema(listShape.limit.unwrap().out, 'input'), default: 20 } },
            { name: 'offset', in: 'query', description: 'rows to skip (not with after)', schema: schema(listShape.offset.unwrap().out, 'input') },
            { name: 'after', in: 'query', description: 'only ids greater than this (not with offset)', schema: schema(listShape.after.unwrap().out, 'input') },
          ],
          responses: { '200': { description: 'a page', content: json(ref('ProductPage')) }, ...errors('validation_failed', ...common) },
        },
        post: {
          operationId: 'createProduct',
          parameters: writeParams,
          requestBody: body(createProductBody),
          responses: {
            '201': {
              description: 'created',
              headers: { Location: { schema: { type: 'string' }, description: '/products/{id}' }, ...applied },
              content: json(ref('Product')),
            },
            ...errors('validation_failed', 'conflict', 'id_space_exhausted', ...bodyErrors),
          },
        },
      },
      '/products/{id}': {
        parameters: [idParam],
        get: {
          operationId: 'getProduct',
          responses: { '200': { description: 'the product', content: json(ref('Product')) }, ...errors('validation_failed', 'not_found', ...common) },
        },
        put: {
          operationId: 'replaceProduct',
          parameters: writeParams,
          summary: 'Replaces the product: omitted optional fields reset to their defaults',
          requestBody: body(putProductBody),
          responses: { '200': { description: 'replaced', headers: applied, content: json(ref('Product')) }, ...errors('validation_failed', 'not_found', 'conflict', ...bodyErrors) },
        },
        patch: {
          operationId: 'updateProduct',
          parameters: writeParams,
          requestBody: body(patchProductBody),
          responses: { '200': { description: 'updated', headers: applied, content: json(ref('Product')) }, ...errors('validation_failed', 'not_found', 'conflict', ...bodyErrors) },
        },
        delete: {
          operationId: 'deleteProduct',
          parameters: writeParams,
          responses: { '204': { description: 'deleted', headers: applied }, ...errors('validation_failed', 'not_found', ...writeErrors) },
        },
      },
      '/counters/{name}': {
        parameters: [nameParam],
        get: {
          operationId: 'getCounter',
          responses: { '200': { description: 'the counter', content: json(ref('Counter')) }, ...errors('validation_failed', 'not_found', ...common) },
        },
      },
      '/counters/{name}/increment': {
        parameters: [nameParam],
        post: {
          operationId: 'incrementCounter',
          parameters: writeParams,
          summary: 'Adds `by` (default 1); a missing counter starts at 0. Answers the value right after this increment.',
          requestBody: body(incrementBody, false),
          responses: { '200': { description: 'the new value', headers: applied, content: json(ref('Counter')) }, ...errors('validation_failed', 'conflict', ...bodyErrors) },
        },
      },
      '/healthz': { get: health('health') },
      '/health': { get: health('healthAlias', 'Same as /healthz, on a path Cloud Run\'s front end does not reserve (it may answer its own 404 for paths ending in z).') },
      '/readyz': { get: ready('ready') },
      '/ready': { get: ready('readyAlias', 'Same as /readyz, on a path Cloud Run\'s front end does not reserve (it may answer its own 404 for paths ending in z).') },
      '/metrics': {
        get: {
          operationId: 'metrics',
          description: 'With METRICS_TOKEN set, only with `Authorization: Bearer <METRICS_TOKEN>`.',
          responses: {
            '200': { description: 'Prometheus text', content: { 'text/plain': { schema: { type: 'string' } } } },
            ...errors('unauthorized'),
          },
        },
      },
      '/openapi.json': {
        get: { operationId: 'openapi', responses: { '200': { description: 'this document', content: json({ type: 'object' }) } } },
      },
    },
    components: {
      schemas: {
        Product: schema(productSchema, 'output'),
        ProductPage: schema(productPageSchema, 'output'),
        Counter: schema(counterSchema, 'output'),
        Error: schema(errorSchema, 'output'),
      },
    },
  };
}
