// Process entry: config, server, signals. Exit codes: 0 clean drain, 1 failure, 2 bad configuration.
// First import: refuses a Node older than 22 before any native module loads.
import './runtime-check.js';
import { ConfigError, loadConfig, type Config } from './shared/config.js';
import { createLogger } from './shared/log.js';
import { start, type Server } from './lifecycle.js';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

const log = createLogger(config.logLevel);
let server: Server | null = null;
let stopping = false;

async function stop(reason: string, code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (!server) {
    // Start-up has not finished: nothing was accepted, so nothing is drained. Exit 1 at once (start-up did not
    // complete); whatever the writer was doing rolls back with its uncommitted transaction.
    log.warn({ reason }, 'stopping during start-up: exiting without serving');
    process.exit(1);
  }
  // Should the event loop run dry before the drain ends (a step waiting on something that is gone), Node exits by
  // itself: with this code, not 0.
  process.exitCode = 1;
  // Cloud Run sends SIGKILL 10 s after SIGTERM: fail loudly before that rather than be killed mid-drain.
  const deadline = setTimeout(() => {
    log.fatal({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown did not finish in time; exiting with writes possibly unanswered');
    process.exit(1);
  }, config.shutdownTimeoutMs);
  deadline.unref();
  const failed = await server.shutdown(reason);
  if (failed.length > 0) log.error({ failed }, 'shutdown was not clean');
  process.exit(failed.length > 0 ? 1 : code);
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) {
      log.warn({ signal: sig }, 'second signal: exiting at once');
      process.exit(130);
    }
    void stop(sig, 0);
  });
}

process.on('uncaughtException', (err) => {
  log.fatal({ err }, 'uncaught exception');
  if (!stopping) void stop('uncaught exception', 1);
  else process.exit(1);
});

try {
  server = await start(config, log, (reason) => void stop(`writer failed: ${reason}`, 1));
} catch (err) {
  log.fatal({ err }, 'start-up failed');
  process.exit(1);
}
