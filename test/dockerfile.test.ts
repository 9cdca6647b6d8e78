// There is no Docker engine here: the Dockerfile, the Cloud Run service and litestream.yml are checked against
// the repo instead (Node major, the one Litestream pin, files copied, user, port, PID 1; container-start is run for
// real as root), plus the installed
// Litestream's version and its bundled SQLite when the tools are present.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareVersions, MIN_SQLITE_VERSION } from '../src/shared/db/open.js';
import { LITESTREAM_BIN, LITESTREAM_VERSION, litestreamVersion } from './helpers/gcs.js';
import { ROOT } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');

interface Instr {
  op: string;
  args: string;
}

/** Dockerfile instructions (comments dropped, continuation lines joined), split into stages at FROM. */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Instr[][] } {
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Instr[][] = [];
  for (const line of logical) {
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const instr = { op: m[1]!.toUpperCase(), args: m[2]!.trim() };
    if (instr.op === 'FROM') stages.push([]);
    if (stages.length === 0 && instr.op === 'ARG') {
      const [k, v] = instr.args.split('=');
      args.set(k!, v ?? '');
    }
    stages.at(-1)?.push(instr);
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const final = dockerfile.stages.at(-1)!;
const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; main: string };

describe('Dockerfile matches the repo', () => {
  it('Node major: the ARG default, package.json engines and the Node running these tests agree; runtime is bookworm-slim', () => {
    const major = dockerfile.args.get('NODE_MAJOR');
    const engines = /^>=\s*(\d+)/.exec(pkg.engines.node)?.[1];
    expect(major).toBe(engines);
    expect(major).toBe(process.versions.node.split('.')[0]);
    const froms = dockerfile.stages.map((s) => s[0]!.args);
    expect(froms.filter((f) => f.startsWith('node:'))).toEqual([
      'node:${NODE_MAJOR}-bookworm AS build',
      'node:${NODE_MAJOR}-bookworm AS deps',
      'node:${NODE_MAJOR}-bookworm-slim',
    ]);
  });

  it('the production node_modules leave out the pinned node-linux-* runtime (the image runs its base image\'s Node 22)', () => {
    const pkgAll = JSON.parse(read('package.json')) as { optionalDependencies: Record<string, string> };
    const deps = dockerfile.stages.find((s) => s[0]!.args.endsWith('AS deps'))!;
    const install = deps.find((i) => i.op === 'RUN' && i.args.includes('npm ci --omit=dev'))!;
    for (const name of Object.keys(pkgAll.optionalDependencies).filter((n) => n.startsWith('node-'))) {
      expect(install.args).toContain(`node_modules/${name}`);
    }
    expect(install.args).toContain('node_modules/.bin/node');
  });

  it('one Litestream pin: the Dockerfile ARG default equals .litestream-version, and the Go stage installs exactly that', () => {
    expect(LITESTREAM_VERSION).toMatch(/^v\d+\.\d+\.\d+$/);
    expect(dockerfile.args.get('LITESTREAM_VERSION')).toBe(LITESTREAM_VERSION);
    const goStage = dockerfile.stages.find((s) => s[0]!.args.startsWith('golang:'))!;
    expect(goStage.some((i) => i.op === 'RUN' && i.args.includes('go install') && i.args.includes('github.com/benbjohnson/litestream/cmd/litestream@${LITESTREAM_VERSION}'))).toBe(true);
    // The install script CI and developers use reads the same file.
    expect(read('scripts/install-replication-tools.sh')).toContain('.litestream-version');
  });

  it('every file the Dockerfile copies from the build context exists and is not excluded by .dockerignore', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const sources: string[] = [];
    for (const stage of dockerfile.stages) {
      for (const i of stage) {
        if (i.op !== 'COPY' || i.args.includes('--from=')) continue;
        const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
        sources.push(...parts.slice(0, -1));
      }
    }
    expect(sources.length).toBeGreaterThan(4);
    for (const src of sources) {
      expect(fs.existsSync(path.join(ROOT, src)), `${src} exists`).toBe(true);
      expect(ignored, `${src} is not in .dockerignore`).not.toContain(src.split('/')[0]);
    }
    // The runtime needs the compiled server, its production modules, and the Litestream config the server points at.
    const finalCopies = final.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(finalCopies).toEqual(
      expect.arrayContaining([
        '--from=litestream /out/litestream /usr/local/bin/litestream',
        '--from=deps /app/node_modules ./node_modules',
        '--from=build /app/dist ./dist',
      ]),
    );
    expect(finalCopies.some((c) => c.split(/\s+/).includes('litestream.yml'))).toBe(true);
    expect(dockerfile.stages.find((s) => s[0]!.args.endsWith('AS deps'))!.some((i) => i.op === 'RUN' && i.args.startsWith('npm ci --omit=dev'))).toBe(true);
  });

  it('the server runs as the non-root app user: /data owned by it, DB_PATH on /data, EXPOSE 8080; root only in container-start', () => {
    // No USER: Cloud Run mounts the in-memory volume over /data owned by root, so the image starts as root only to
    // hand that directory to uid 10001, and container-start drops to it before the server starts.
    expect(final.filter((i) => i.op === 'USER')).toEqual([]);
    expect(final.some((i) => i.op === 'RUN' && /useradd --system --uid 10001/.test(i.args) && /chown\s+app:app\s+\/data/.test(i.args))).toBe(true);
    const env = final.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
    expect(env).toMatch(/DB_PATH=\/data\/app\.db/);
    expect(env).toMatch(/PORT=8080/);
    expect(final.filter((i) => i.op === 'EXPOSE').map((i) => i.args)).toEqual(['8080']);
    const start = read('scripts/container-start.sh');
    expect(start).toMatch(/chown 10001:10001 "\$dir"/);
    expect(start).toMatch(/exec setpriv --reuid=10001 --regid=10001 --clear-groups --no-new-privs\s*\\\s*--inh-caps=-all --bounding-set=-all env HOME=\/app node dist\/main\.js/);
  });

  it('CMD is container-start (exec form, no ENTRYPOINT), which execs node dist/main.js: the server is PID 1 and gets SIGTERM', () => {
    const cmd = final.filter((i) => i.op === 'CMD').at(-1)!.args;
    expect(JSON.parse(cmd)).toEqual(['/usr/local/bin/container-start']);
    expect(final.map((i) => i.args)).toContain('scripts/container-start.sh /usr/local/bin/container-start');
    expect(fs.statSync(path.join(ROOT, 'scripts/container-start.sh')).mode & 0o111).not.toBe(0);
    expect(pkg.main).toBe('dist/main.js');
    expect(fs.existsSync(path.join(ROOT, 'src', 'main.ts'))).toBe(true);
    expect(final.some((i) => i.op === 'ENTRYPOINT')).toBe(false);
  });
});

describe.skipIf(process.getuid?.() !== 0)('scripts/container-start.sh, run as root (as on Cloud Run)', () => {
  it('hands a root-owned data directory to uid 10001 and execs the server as that user in the same process (PID kept)', async () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'container-start-'));
    fs.chmodSync(parent, 0o755);
    // uid 10001 must reach the checkout to run dist/main.js, as it reaches /app in the image. A checkout under a
    // directory only root may enter (a CI clone in a mkdtemp directory, mode 0700) gets others' search permission
    // for the length of the test, and its old mode back after.
    const opened: [string, number][] = [];
    for (let d = ROOT; ; d = path.dirname(d)) {
      const mode = fs.statSync(d).mode & 0o7777;
      if ((mode & 0o001) === 0) {
        fs.chmodSync(d, mode | 0o001);
        opened.push([d, mode]);
      }
      if (path.dirname(d) === d) break;
    }
    const dataDir = path.join(parent, 'data');
    fs.mkdirSync(dataDir, { mode: 0o755 }); // like the in-memory volume: root's, not writable by the app user
    const proc = spawn('/bin/sh', [path.join(ROOT, 'scripts/container-start.sh')], {
      cwd: ROOT,
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}`, DB_PATH: path.join(dataDir, 'app.db'), PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      const port = Number((await waitFor(() => /"port":(\d+),"msg":"listening"/.exec(out), `listening:\n${out}`, 20_000))[1]);
      const status = fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      expect(/^Uid:\s+(\d+)\s+(\d+)/m.exec(status)?.slice(1)).toEqual(['10001', '10001']);
      expect(/^CapEff:\s+(\w+)/m.exec(status)?.[1]).toMatch(/^0+$/);
      expect(fs.readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0')).toContain('dist/main.js');
      expect(fs.statSync(dataDir).uid).toBe(10001);
      expect(fs.statSync(path.join(dataDir, 'app.db')).uid).toBe(10001);
      expect((await fetch(`http://127.0.0.1:${port}/counters/c`)).status).toBe(404);
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      proc.kill('SIGKILL');
      fs.rmSync(parent, { recursive: true, force: true });
      for (const [d, mode] of opened) fs.chmodSync(d, mode);
    }
  });
});

describe('litestream.yml (the Cloud Run service is parsed and checked in test/deploy-artifacts.test.ts)', () => {
  const yml = read('litestream.yml');

  it('litestream.yml reads exactly the variables the supervisor sets, keeps metrics on loopback, and enables the socket', () => {
    const vars = new Set([...yml.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]));
    expect([...vars].sort()).toEqual(['DB_PATH', 'LITESTREAM_METRICS_ADDR', 'LITESTREAM_SOCKET', 'LITESTREAM_SYNC_INTERVAL', 'REPLICA_URL']);
    const supervisor = read('src/replication/litestream-supervisor.ts');
    for (const v of vars) expect(supervisor).toContain(`${v}:`);
    expect(yml).toMatch(/socket:\s+enabled: true/);
    expect(yml).not.toMatch(/gcs:\/\//);
    expect(yml).toMatch(/snapshot:\s+interval: \S+\s+retention: \S+/);
  });
});

describe.skipIf(!LITESTREAM_BIN)('the installed Litestream', () => {
  it('is the pinned version, and bundles SQLite >= the WAL-reset fix', () => {
    expect(litestreamVersion(LITESTREAM_BIN!)).toBe(LITESTREAM_VERSION);
    // The bundled SQLite is modernc.org/sqlite's: read its version from the module the binary was built with.
    const mod = spawnSync('go', ['version', '-m', LITESTREAM_BIN!], { encoding: 'utf8' });
    const modernc = /\bdep\s+modernc\.org\/sqlite\s+(v\S+)/.exec(mod.stdout ?? '')?.[1];
    if (!modernc) return void console.log('bundled SQLite: unknown (go not installed, cannot read the build info)');
    const gomodcache = spawnSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).stdout.trim();
    const lib = path.join(gomodcache, `modernc.org/sqlite@${modernc}`, 'lib', `sqlite_${process.platform}_${process.arch === 'x64' ? 'amd64' : process.arch}.go`);
    const sqlite = fs.existsSync(lib) ? /const SQLITE_VERSION = "([\d.]+)"/.exec(fs.readFileSync(lib, 'utf8'))?.[1] : undefined;
    console.log(`litestream ${LITESTREAM_VERSION}: modernc.org/sqlite ${modernc}, bundled SQLite ${sqlite ?? '(module source not in the cache)'}`);
    if (sqlite) expect(compareVersions(sqlite, MIN_SQLITE_VERSION)).toBeGreaterThanOrEqual(0);
  });
});
