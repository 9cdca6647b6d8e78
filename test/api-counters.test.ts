// The HTTP contract for /counters, against the real built server, once per reader mode (test/helpers/api.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, expectJson, READER_MODES, serverPerSuite } from './helpers/api.js';
import { killAll, req } from './helpers/server.js';

afterAll(killAll);

describe.each(READER_MODES)('API with READERS=%i (%s)', (readers, _mode) => {
  const server = serverPerSuite(readers);
  let base: string;
  beforeAll(() => {
    base = server.s.url;
  });

  describe('counters', () => {
    it('POST /counters/{name}/increment: no body adds 1, {"by": n} adds n; a missing counter starts at 0', async () => {
      const name = `c-${readers}`;
      const first = await req(base, 'POST', `/counters/${name}/increment`);
      expect(first.status).toBe(200);
      expectJson(first);
      expect(first.body).toEqual({ name, value: 1 });
      expect((await req(base, 'POST', `/counters/${name}/increment`, { by: 5 })).body).toEqual({ name, value: 6 });
      expect((await req(base, 'POST', `/counters/${name}/increment`, {})).body).toEqual({ name, value: 7 });
      expect((await req(base, 'POST', `/counters/${name}/increment`, { by: -10 })).body).toEqual({ name, value: -3 });
      expect((await req(base, 'POST', `/counters/${name}/increment`, { by: 1_000_000_000 })).body).toEqual({
        name,
        value: 999_999_997,
      });
      expect((await req(base, 'POST', `/counters/${name}/increment`, { by: -1_000_000_000 })).body).toEqual({ name, value: -3 });
      const fresh = await req(base, 'POST', `/counters/fresh-${readers}/increment`, { by: 42 });
      expect(fresh.body).toEqual({ name: `fresh-${readers}`, value: 42 });
    });

    it('GET /counters/{name} -> 200 {name, value}, 404 not_found when it never existed', async () => {
      const name = `A.z_0-9.${readers}`;
      await req(base, 'POST', `/counters/${name}/increment`, { by: 3 });
      const r = await req(base, 'GET', `/counters/${name}`);
      expect(r.status).toBe(200);
      expectJson(r);
      expect(r.body).toEqual({ name, value: 3 });
      expectError(await req(base, 'GET', `/counters/never-${readers}`), 404, 'not_found');
    });

    it('accepts a 64-character name', async () => {
      const name = 'n'.repeat(63) + String(readers);
      expect((await req(base, 'POST', `/counters/${name}/increment`)).body).toEqual({ name, value: 1 });
      expect((await req(base, 'GET', `/counters/${name}`)).status).toBe(200);
    });

    it.each([
      ['|by| over 1e9', { by: 1_000_000_001 }],
      ['by under -1e9', { by: -1_000_000_001 }],
      ['a fractional by', { by: 1.5 }],
      ['by as a string', { by: '2' }],
      ['an unknown field', { by: 1, extra: true }],
    ])('increment with %s -> 400 validation_failed (and nothing changes)', async (_what, body) => {
      const name = `v-${readers}`;
      await req(base, 'POST', `/counters/${name}/increment`, { by: 10 });
      const before = (await req(base, 'GET', `/counters/${name}`)).body.value;
      expectError(await req(base, 'POST', `/counters/${name}/increment`, body), 400, 'validation_failed');
      expect((await req(base, 'GET', `/counters/${name}`)).body.value).toBe(before);
    });

    it('increment with malformed JSON -> 400 invalid_json', async () => {
      expectError(await req(base, 'POST', '/counters/j/increment', '{"by":'), 400, 'invalid_json');
    });

    it.each(['bad!name', 'a%20b', 'n'.repeat(65), 'caf%C3%A9', 'a*b'])('a bad counter name %j -> 400 validation_failed', async (name) => {
      expectError(await req(base, 'POST', `/counters/${name}/increment`), 400, 'validation_failed');
      expectError(await req(base, 'GET', `/counters/${name}`), 400, 'validation_failed');
    });
  });
});
