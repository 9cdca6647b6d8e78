// The uWebSockets.js package silently falls back to a pure-JS server when its binary does not load;
// UWS_USE_FALLBACK=1 makes the package take that path for real, and the server must refuse to run on it.
import { afterAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { killAll, runToExit, startServer, tempDir } from './helpers/server.js';
import path from 'node:path';

afterAll(killAll);

describe('uWebSockets.js native binary', () => {
  it('loads natively here (SSLApp, getParts, LIBUS_LISTEN_EXCLUSIVE_PORT === 1)', () => {
    const uws = createRequire(import.meta.url)('uWebSockets.js');
    expect(typeof uws.SSLApp).toBe('function');
    expect(typeof uws.getParts).toBe('function');
    expect(uws.LIBUS_LISTEN_EXCLUSIVE_PORT).toBe(1);
  });

  it('the server refuses to start on the pure-JS fallback', async () => {
    const dir = tempDir();
    const { code, output } = await runToExit({ UWS_USE_FALLBACK: '1', DB_PATH: path.join(dir, 'app.db') });
    expect(code).toBe(1);
    expect(output).toMatch(/refuses to run on the fallback/);
    expect(output).not.toMatch(/"msg":"listening"/);
  });

  it('a second server on the same port fails instead of sharing it (exclusive listen)', async () => {
    const first = await startServer();
    const { code, output } = await runToExit({ PORT: String(first.port), DB_PATH: path.join(tempDir(), 'app.db') });
    expect(code).toBe(1);
    expect(output).toMatch(/cannot listen on 127\.0\.0\.1:\d+/);
    expect(await first.stop()).toBe(0);
  });
});
