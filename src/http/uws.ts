// Loads uWebSockets.js and says which build it is. The package is `@based/uws` 6.0.1 under the name
// `uWebSockets.js` (package.json alias): a repack of uWebSockets.js v20.51.0's binaries, whose `source_commit` file
// names the uNetworking/uWebSockets.js commit they were built from (docs/development.md "Dependency notes").
// Unlike the 20.30 build shipped before, it has no pure-JS fallback: a binary that does not load throws.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as UWS from 'uWebSockets.js';

const require = createRequire(import.meta.url);

/** The typings lag the binary: these exist at runtime. */
export type Uws = typeof UWS & {
  LIBUS_LISTEN_EXCLUSIVE_PORT: number;
};
export type App = UWS.TemplatedApp & {
  /** Closes the listen sockets and every open connection. */
  close(): void;
  listen(host: string, port: number, options: number, cb: (ls: UWS.us_listen_socket | false) => void): App;
};

export interface UwsBuild {
  /** The npm package behind the alias, e.g. `@based/uws@6.0.1`. */
  package: string;
  /** uWebSockets.js release the binaries come from, e.g. `v20.51.0` (from the loader's own message). */
  version: string;
  /** uNetworking/uWebSockets.js commit the binaries were built from. */
  sourceCommit: string;
  /** The binary this process loaded. */
  binary: string;
}

export function loadNativeUws(): Uws {
  let uws: Uws;
  try {
    uws = require('uWebSockets.js') as Uws;
  } catch (err) {
    throw new Error(
      `uWebSockets.js has no native binary for ${process.platform}-${process.arch} Node ${process.version} (ABI ${process.versions.modules}): ` +
        (err as Error).message.split('\n')[0],
    );
  }
  const native = typeof (uws as { SSLApp?: unknown }).SSLApp === 'function' && uws.LIBUS_LISTEN_EXCLUSIVE_PORT === 1;
  if (!native) throw new Error('uWebSockets.js loaded without its native API (SSLApp, LIBUS_LISTEN_EXCLUSIVE_PORT); refusing to run on it');
  return uws;
}

/** Which uWebSockets.js build is installed, read from the package's own files (logged at start-up). */
export function uwsBuild(): UwsBuild {
  const dir = path.dirname(require.resolve('uWebSockets.js'));
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name: string; version: string };
  const loader = fs.readFileSync(path.join(dir, 'uws.js'), 'utf8');
  const commitFile = path.join(dir, 'source_commit');
  return {
    package: `${pkg.name}@${pkg.version}`,
    version: /This version of uWS\.js \((v\d+\.\d+\.\d+)\)/.exec(loader)?.[1] ?? 'unknown',
    sourceCommit: fs.existsSync(commitFile) ? fs.readFileSync(commitFile, 'utf8').trim() : 'unknown',
    binary: `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`,
  };
}
