// Watches DATA_FILE by polling stat() (editors and `mv` replace the file, which fs.watch loses track of) and sends
// each new content to the writer as one applyDataFile command. Whether it is applied is decided inside the writer's
// transaction (src/writer/data-file.ts), so a restart or a second server seeing the same content applies nothing.
import fs from 'node:fs/promises';
import { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { m } from '../shared/metrics.js';
import type { WriterClient } from '../writer/client.js';
import type { DataFileOutcome } from '../shared/data-file-format.js';
import { answerJson } from '../shared/protocol.js';
import { loadDataFile } from './load.js';

export interface DataFileWatcherOptions {
  file: string;
  pollMs: number;
  writer: Pick<WriterClient, 'submit'>;
  log: Logger;
  /** Why writes are refused right now (replication down), if they are: the file then waits for a later poll. */
  writesRefused: () => string | undefined;
}

export class DataFileWatcher {
  /** stat() signature of the content last handled ('' = none yet, or retry it). */
  private seen = '';
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly opts: DataFileWatcherOptions) {
    this.log = opts.log.child({ component: 'data-file' });
  }

  /** Polls from now on, every `pollMs` after the previous check finished. */
  start(): void {
    const loop = async () => {
      await this.check();
      if (this.stopped) return;
      this.timer = setTimeout(loop, this.opts.pollMs);
      this.timer.unref();
    };
    this.timer = setTimeout(loop, this.opts.pollMs);
    this.timer.unref();
  }

  /** No new command after this (one already sent is answered before the writer closes). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Handles the file if it changed since the last check. Never throws: every failure is logged and counted. */
  async check(): Promise<void> {
    try {
      await this.checkOnce();
    } catch (err) {
      this.log.error({ err, path: this.opts.file }, 'data file check failed');
    }
  }

  private async checkOnce(): Promise<void> {
    const { file, writer } = this.opts;
    const log = this.log;
    let st;
    try {
      st = await fs.stat(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      if (this.seen === `stat:${code}`) return;
      this.seen = `stat:${code}`;
      if (code === 'ENOENT') {
        log.warn({ path: file }, 'data file not found; the last applied state stays and the file is applied when it appears');
      } else {
        m.dataFileLoads.labels('invalid').inc();
        log.error({ path: file, err }, 'cannot stat the data file; the last applied state stays');
      }
      return;
    }
    // Taken before reading: a write landing after it changes the signature, so the next poll reads again.
    const sig = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    if (sig === this.seen || this.stopped) return;
    const refused = this.opts.writesRefused();
    if (refused) {
      log.debug({ path: file, reason: refused }, 'data file changed while writes are refused; trying again at the next poll');
      return;
    }

    const t0 = performance.now();
    const loaded = await loadDataFile(file);
    if (this.stopped) return;
    this.seen = sig;
    if ('invalid' in loaded) {
      m.dataFileLoads.labels('invalid').inc();
      const { invalid: reason, hash, issues } = loaded;
      log.error(
        { path: file, hash: hash?.slice(0, 12), reason, issues: issues?.slice(0, 20), issueCount: issues?.length },
        'data file is invalid: nothing from it was applied, the last applied state stays',
      );
      return;
    }

    const { hash, counters, products } = loaded.ok;
    let outcome: DataFileOutcome;
    try {
      const r = await writer.submit({ op: 'applyDataFile', hash, counters, products });
      outcome = answerJson(r.body!) as DataFileOutcome;
    } catch (err) {
      const e = err instanceof AppError ? err : new AppError('internal');
      const fields = { path: file, hash: hash.slice(0, 12), code: e.code, reason: e.message };
      if (e.status < 500) {
        // The database refused a value (a CHECK): as invalid as a schema error, and rolled back as a whole.
        m.dataFileLoads.labels('invalid').inc();
        log.error(fields, 'data file refused by the database: nothing from it was applied');
      } else {
        // The writer is overloaded or stopping: nothing was applied; the next poll tries the same content again.
        this.seen = '';
        m.dataFileLoads.labels('error').inc();
        log.error(fields, 'applying the data file failed; retrying at the next poll');
      }
      return;
    }
    const ms = Math.round(performance.now() - t0);
    if (outcome.applied) {
      m.dataFileLoads.labels('applied').inc();
      log.info({ path: file, hash: hash.slice(0, 12), counters: outcome.counters, products: outcome.products, ms }, 'data file applied');
    } else {
      m.dataFileLoads.labels('unchanged').inc();
      log.info({ path: file, hash: hash.slice(0, 12) }, 'data file unchanged since it was last applied; nothing to do');
    }
  }
}
