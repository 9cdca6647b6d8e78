// The follower's only contact with the bucket, and it is read-only: LIST the level-0 LTX files Litestream uploaded
// after a TXID, and GET one. Litestream 0.5 names them `<path>/ltx/0/<min TXID>-<max TXID>.ltx` (16 hex digits
// each), so a LIST from `<path>/ltx/0/<TXID + 1>` returns exactly the newer ones, in order: one Class A operation
// per poll however long the replica's history is (Litestream's own `restore -f` also lists levels 1-9 on every
// idle poll). docs/followers.md "Cost".
import type { Bucket } from '@google-cloud/storage';
import { gsLocation, storageFromEnv } from '../replication/lease.js';
import { parseTxid, txidHex } from '../replication/ltx.js';

export interface LtxObject {
  name: string;
  min: bigint;
  max: bigint;
  size: number;
}

export type GcsOp = 'list' | 'get';

const NAME = /\/?(\d)\/([0-9a-f]{16})-([0-9a-f]{16})\.ltx$/;

export class ReplicaSource {
  private readonly bucket: Bucket;
  /** `<path>/ltx/0/` */
  private readonly l0: string;

  constructor(
    replicaUrl: string,
    timeoutMs: number,
    /** Told about every operation sent to the bucket (metrics: what a follower costs). */
    private readonly onOp: (op: GcsOp) => void,
  ) {
    const { bucket, prefix } = gsLocation(replicaUrl, 'a follower');
    this.bucket = storageFromEnv(process.env, timeoutMs).bucket(bucket);
    this.l0 = `${prefix ? `${prefix}/` : ''}ltx/0/`;
  }

  /** Level-0 files whose first TXID is above `txid`, oldest first (one LIST per 1,000). */
  async after(txid: bigint): Promise<LtxObject[]> {
    return this.list(`${this.l0}${txidHex(txid + 1n)}`);
  }

  /** Every level-0 file still in the bucket (Litestream keeps them ~5 minutes after compaction), oldest first. */
  async all(): Promise<LtxObject[]> {
    return this.list(undefined);
  }

  async download(o: LtxObject): Promise<Buffer> {
    this.onOp('get');
    const [bytes] = await this.bucket.file(o.name).download();
    return bytes;
  }

  private async list(startOffset: string | undefined): Promise<LtxObject[]> {
    const out: LtxObject[] = [];
    let pageToken: string | undefined;
    do {
      this.onOp('list');
      const [files, next] = await this.bucket.getFiles({ prefix: this.l0, startOffset, autoPaginate: false, maxResults: 1000, pageToken });
      for (const f of files) {
        const m = NAME.exec(f.name);
        if (m) out.push({ name: f.name, min: parseTxid(m[2]!), max: parseTxid(m[3]!), size: Number(f.metadata.size ?? 0) });
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
    return out.sort((a, b) => (a.min < b.min ? -1 : a.min > b.min ? 1 : 0));
  }
}
