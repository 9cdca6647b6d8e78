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

/**
 * uWS reads its request-head limit from this variable once, when the binary loads (measured on v20.51.0: 4,096
 * bytes without it, the exact value with it, for a head in one read or several). MAX_HEADER_BYTES is that limit.
 */
export const UWS_HEAD_LIMIT_ENV = 'UWS_HTTP_MAX_HEADERS_SIZE';

/**
 * Loads the binary with its request-head limit set to `maxHeaderBytes` (request line, header fields and the blank
 * line): past it uWS answers 431 itself and closes. The variable is set here, before the first require, because
 * nothing read later changes it; one already set to another value is refused rather than silently overridden.
 */
export function loadNativeUws(maxHeaderBytes: number): Uws {
  const preset = process.env[UWS_HEAD_LIMIT_ENV];
  if (preset !== undefined && preset !== String(maxHeaderBytes)) {
    throw new Error(
      `${UWS_HEAD_LIMIT_ENV} is set to ${JSON.stringify(preset)} but MAX_HEADER_BYTES is ${maxHeaderBytes}: ` +
        `the server sets ${UWS_HEAD_LIMIT_ENV} from MAX_HEADER_BYTES; unset it and set only MAX_HEADER_BYTES`,
    );
  }
  process.env[UWS_HEAD_LIMIT_ENV] = String(maxHeaderBytes);
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
