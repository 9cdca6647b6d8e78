// Loads uWebSockets.js and refuses its silent pure-JS fallback (about half the speed, different semantics).
import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';

const require = createRequire(import.meta.url);

/** The typings lag the 20.30 binary: these exist at runtime. */
export type Uws = typeof UWS & {
  LIBUS_LISTEN_EXCLUSIVE_PORT: number;
};
export type App = UWS.TemplatedApp & {
  /** Closes the listen sockets and every open connection. */
  close(): void;
  listen(host: string, port: number, options: number, cb: (ls: UWS.us_listen_socket | false) => void): App;
};

export function loadNativeUws(): Uws {
  const uws = require('uWebSockets.js') as Uws;
  const native =
    typeof (uws as { SSLApp?: unknown }).SSLApp === 'function' &&
    typeof (uws as { getParts?: unknown }).getParts === 'function' &&
    uws.LIBUS_LISTEN_EXCLUSIVE_PORT === 1;
  if (!native) {
    throw new Error(
      `uWebSockets.js native binary did not load for ${process.platform}-${process.arch} Node ABI ${process.versions.modules} ` +
        '(the package fell back to its pure-JS server); this server refuses to run on the fallback',
    );
  }
  return uws;
}
