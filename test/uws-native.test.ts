// The runtime: Node 22 and the pinned uWebSockets.js build (@based/uws 6.0.1 = uWS.js v20.51.0, native binary for
// this platform), checked against the package's own files; the server logs all three versions and refuses Node < 22.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { uwsBuild } from '../src/http/uws.js';
import { ENTRY, killAll, ROOT, runToExit, startServer, tempDir } from './helpers/server.js';
import { logLines } from './helpers/wait.js';

afterAll(killAll);

/** The build package.json pins, and the commit its binaries were built from (docs/development.md "Dependency notes"). */
const EXPECTED = { package: '@based/uws@6.0.1', version: 'v20.51.0', sourceCommit: '14bb3af6789a263804899d5440223b9e2a5a43e3' };

/** A Node older than 22 on this machine (the system one here is 20), or null. */
function olderNode(): string | null {
  for (const bin of ['/usr/bin/node', '/usr/local/bin/node']) {
    try {
      const v = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
      if (Number(/^v(\d+)/.exec(v)?.[1]) < 22) return bin;
    } catch {
      // not there
    }
  }
  return null;
}

describe('runtime: Node 22 and the native uWebSockets.js build', () => {
  it('these tests run on Node 22 (npm scripts put the pinned node-linux-* binary first on PATH)', () => {
    expect(process.versions.node.split('.')[0]).toBe('22');
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.dependencies['uWebSockets.js']).toBe(`npm:${EXPECTED.package}`);
  });

  it('uWebSockets.js is the pinned build, and its native binary for this platform and ABI loads', () => {
    const build = uwsBuild();
    expect(build).toMatchObject(EXPECTED);
    expect(build.binary).toBe(`uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
    const uws = createRequire(import.meta.url)('uWebSockets.js');
    expect(typeof uws.App).toBe('function');
    expect(typeof uws.SSLApp).toBe('function');
    expect(uws.LIBUS_LISTEN_EXCLUSIVE_PORT).toBe(1);
    // A native addon, not JavaScript: the process has the binary mapped.
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    expect(maps).toContain(build.binary);
  });

  it('the server logs its Node, uWS and SQLite versions at start', async () => {
    const s = await startServer();
    try {
      const [line] = logLines(s, 'runtime');
      expect(line).toBeDefined();
      expect(line!.node).toBe(process.version);
      expect(line!.uws).toMatchObject(EXPECTED);
      expect(line!.sqliteVersion).toMatch(/^3\.\d+\.\d+$/);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  it.runIf(olderNode() !== null)('on a Node older than 22 the server refuses to start with a clear message (exit 1)', () => {
    const bin = olderNode()!;
    let code = 0;
    let output = '';
    try {
      execFileSync(bin, [ENTRY], { cwd: ROOT, env: { ...process.env, PORT: '0', DB_PATH: path.join(tempDir(), 'app.db') }, encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      const e = err as { status: number; stderr: string; stdout: string };
      code = e.status;
      output = e.stderr + e.stdout;
    }
    expect(code).toBe(1);
    expect(output).toMatch(/needs Node\.js 22 or newer and runs on v\d+/);
    expect(output).not.toMatch(/listening/);
  });

  it("MAX_HEADER_BYTES is uWS's head limit: a preset UWS_HTTP_MAX_HEADERS_SIZE that disagrees stops start-up (exit 1)", async () => {
    const dbPath = path.join(tempDir(), 'app.db');
    const { code, output } = await runToExit({ DB_PATH: dbPath, MAX_HEADER_BYTES: '8192', UWS_HTTP_MAX_HEADERS_SIZE: '4096' });
    expect(code).toBe(1);
    expect(output).toMatch(/UWS_HTTP_MAX_HEADERS_SIZE is set to .*4096.* but MAX_HEADER_BYTES is 8192/);
    expect(output).not.toMatch(/listening/);
    expect(fs.existsSync(dbPath)).toBe(false);
    // The same value is no conflict.
    const s = await startServer({ env: { MAX_HEADER_BYTES: '8192', UWS_HTTP_MAX_HEADERS_SIZE: '8192' } });
    expect(await s.stop()).toBe(0);
  });

  it('a second server on the same port fails instead of sharing it (exclusive listen)', async () => {
    const first = await startServer();
    const { code, output } = await runToExit({ PORT: String(first.port), DB_PATH: path.join(tempDir(), 'app.db') });
    expect(code).toBe(1);
    expect(output).toMatch(/cannot listen on 127\.0\.0\.1:\d+/);
    expect(await first.stop()).toBe(0);
  });
});
