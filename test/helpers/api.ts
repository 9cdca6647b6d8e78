// Shared by the API contract files (test/api-*.test.ts) and the files that run a concern per reader mode:
// the reader-mode matrix, a server per mode, and the assertions every JSON answer and error must meet.
import { afterAll, beforeAll, expect } from 'vitest';
import { req, startServer, type Reply, type Running } from './server.js';

/** Every contract runs once per reader mode: inline reads on the main thread, and a piscina pool. */
export const READER_MODES = [
  [0, 'inline reads on the main thread'],
  [2, 'a piscina reader pool'],
] as const;

/**
 * Starts a server with READERS=readers (plus `env`) in beforeAll and stops it in afterAll of the calling
 * describe block; the returned holder's `s` is set once it listens.
 */
export function serverPerSuite(readers: number, env: Record<string, string> = {}): { s: Running } {
  const holder = {} as { s: Running };
  beforeAll(async () => {
    holder.s = await startServer({ env: { READERS: String(readers), ...env } });
  });
  afterAll(async () => {
    await holder.s?.stop();
  });
  return holder;
}

export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

export function expectJson(r: { headers: Headers }): void {
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(r.headers.get('x-content-type-options')).toBe('nosniff');
}

/** Every error is {"error": {"code", "message", "details"?}} with the catalogue's status. */
export function expectError(r: Reply, status: number, code: string): void {
  expect({ status: r.status, body: r.body }).toMatchObject({ status, body: { error: { code } } });
  expectJson(r);
  expect(Object.keys(r.body)).toEqual(['error']);
  const e = r.body.error as Record<string, unknown>;
  expect(typeof e.message).toBe('string');
  expect((e.message as string).length).toBeGreaterThan(0);
  for (const k of Object.keys(e)) expect(['code', 'message', 'details']).toContain(k);
  if (code === 'validation_failed') {
    expect(Array.isArray(e.details)).toBe(true);
    expect((e.details as unknown[]).length).toBeGreaterThan(0);
  } else if (e.details !== undefined) {
    expect(Array.isArray(e.details)).toBe(true);
  }
}

export function expectProduct(p: any, want: { name: string; price: number; description?: string; stock?: number }): void {
  expect(Object.keys(p).sort()).toEqual(['created_at', 'description', 'id', 'name', 'price', 'stock', 'updated_at']);
  expect(Number.isSafeInteger(p.id) && p.id > 0).toBe(true);
  expect(p).toMatchObject({ name: want.name, price: want.price, description: want.description ?? '', stock: want.stock ?? 0 });
  expect(p.created_at).toMatch(ISO);
  expect(p.updated_at).toMatch(ISO);
  expect(Number.isNaN(Date.parse(p.created_at))).toBe(false);
  expect(p.updated_at >= p.created_at).toBe(true);
}

/** POST /products that must succeed (201): the stored product. */
export async function createProduct(base: string, body: Record<string, unknown>): Promise<Record<string, any>> {
  const r = await req(base, 'POST', '/products', body);
  expect(r.status).toBe(201);
  return r.body;
}
