// The shared-memory ring that carries writes to the writer thread (src/shared/ring.ts): records come out whole, in
// order, across wrap-arounds, with a consumer on another thread that sleeps whenever the ring is empty.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { createRing, RingReader, RingWriter } from '../src/shared/ring.js';

/** A record of `n` bytes that says which one it is: its sequence number in the first 4 bytes, then a pattern. */
function record(seq: number, n: number): Uint8Array {
  const b = new Uint8Array(Math.max(4, n));
  new DataView(b.buffer).setUint32(0, seq);
  for (let i = 4; i < b.length; i++) b[i] = (seq + i) & 0xff;
  return b;
}

function check(b: Uint8Array, seq: number): void {
  expect(new DataView(b.buffer, b.byteOffset).getUint32(0)).toBe(seq);
  for (let i = 4; i < b.length; i++) if (b[i] !== ((seq + i) & 0xff)) throw new Error(`record ${seq} byte ${i} is wrong`);
}

describe('ring', () => {
  it('one thread: records of every size come out whole and in order through many wrap-arounds; full says false and loses nothing', () => {
    const buffers = createRing(1024);
    const w = new RingWriter(buffers);
    const r = new RingReader(buffers);
    expect(w.maxRecord).toBe(504);
    expect(w.write(new Uint8Array(505))).toBe(false);
    let next = 0;
    let expected = 0;
    let refused = 0;
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let step = 0; step < 20_000; step++) {
      if (rand(3) > 0) {
        const size = 4 + rand(w.maxRecord - 3);
        if (w.write(record(next, size))) next++;
        else refused++;
      } else {
        const b = r.read();
        if (b) check(b, expected++);
        else expect(expected).toBe(next);
      }
    }
    for (let b; (b = r.read()); ) check(b, expected++);
    expect(expected).toBe(next);
    // The ring filled up often, and every refusal left it intact.
    expect(refused).toBeGreaterThan(100);
    expect(next).toBeGreaterThan(5000);
    // Empty again: a record of the largest size fits wherever the indices stand.
    expect(w.write(record(next, w.maxRecord))).toBe(true);
    check(r.read()!, next);
  });

  it('peek: a view of the next record that the producer cannot write over until release(); read() is peek, copy, release', () => {
    const buffers = createRing(256);
    const w = new RingWriter(buffers);
    const r = new RingReader(buffers);
    expect(r.peek()).toBeNull();
    let next = 0;
    let expected = 0;
    // Many rounds, so that held records sit at every offset, wrap marks included.
    for (let round = 0; round < 500; round++) {
      while (w.write(record(next, 4 + ((next * 7) % 60)))) next++;
      const view = r.peek()!;
      const copy = view.slice();
      check(view, expected);
      // The producer writes all it can (a peek that passed a wrap mark freed the end of the ring): the held record
      // is not written over.
      while (w.write(record(next, 4))) next++;
      expect(view).toEqual(copy);
      expect(r.peek()).toEqual(copy); // peek again without release: the same record
      r.release();
      r.release(); // a second release without a peek gives nothing more back
      expected++;
      // The producer now fills what was freed; the released view may show anything, the next record is intact.
      while (w.write(record(next, 4))) next++;
      const b = r.read()!;
      check(b, expected++);
      expect(b.buffer).not.toBe(buffers.data);
      // Drain half of what is left, so the indices keep moving round the ring.
      for (let i = 0; i < 3; i++) {
        const c = r.read();
        if (c) check(c, expected++);
      }
    }
    for (let b; (b = r.read()); ) check(b, expected++);
    expect(expected).toBe(next);
    expect(next).toBeGreaterThan(2000);
  });

  it('two threads: a consumer that blocks when the ring is empty gets 200,000 records in order, woken only when it sleeps', async () => {
    const buffers = createRing(4096);
    const w = new RingWriter(buffers);
    const worker = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.ring).then(async ({ RingReader }) => {
        const r = new RingReader(workerData.buffers);
        let expected = 0, waits = 0;
        while (expected < workerData.total) {
          const b = r.read();
          if (!b) { waits++; r.waitSync(50); continue; }
          const seq = new DataView(b.buffer, b.byteOffset).getUint32(0);
          if (seq !== expected) { parentPort.postMessage({ error: 'record ' + seq + ' where ' + expected + ' was due' }); return; }
          for (let i = 4; i < b.length; i++) if (b[i] !== ((seq + i) & 0xff)) { parentPort.postMessage({ error: 'record ' + seq + ' corrupt' }); return; }
          expected++;
        }
        parentPort.postMessage({ got: expected, waits });
      });
      `,
      // The consumer runs the built copy (npm test builds first): a worker thread cannot load TypeScript.
      { eval: true, workerData: { buffers, total: 200_000, ring: new URL('../dist/shared/ring.js', import.meta.url).href } },
    );
    let reported: { got?: number; waits?: number; error?: string } | null = null;
    const done = new Promise<{ got?: number; waits?: number; error?: string }>((resolve, reject) => {
      worker.once('message', (m: { got?: number; waits?: number; error?: string }) => resolve((reported = m)));
      worker.once('error', reject);
    });
    let sent = 0;
    // Bursts with a yield after each, so the consumer both keeps up and falls asleep; stops early on its error.
    while (sent < 200_000 && reported === null) {
      const burst = 1 + (sent % 97);
      for (let i = 0; i < burst && sent < 200_000; i++) {
        if (w.write(record(sent, 4 + ((sent * 31) % 600)))) sent++;
      }
      await new Promise((r) => setImmediate(r));
    }
    const result = await done;
    await worker.terminate();
    expect(result.error).toBeUndefined();
    expect(result.got).toBe(200_000);
    expect(result.waits).toBeGreaterThan(0);
  });
});
