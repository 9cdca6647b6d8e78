// A single-producer, single-consumer byte ring in shared memory: how writes travel from the main thread to the
// writer thread. A MessagePort costs ~3 us of CPU on each side per message (serialisation, a queue under a mutex,
// an event dispatch) and the main thread sends one per event-loop turn; here a message is one copy into shared
// memory, and the writer is woken (Atomics.notify) only when it said it was going to sleep. While it commits
// (an fsync with SQLITE_SYNCHRONOUS=FULL) everything the main thread sends waits in the ring at no cost.
// Measured: bench/ANALYSIS.md "CPU per request".
//
// Records are [u32 length][bytes], each contiguous: one that would cross the end is preceded by a wrap mark
// (length 0xffffffff) and starts again at offset 0. Indices are byte offsets into the data area; the ring is empty
// when they are equal and keeps one byte free so that full and empty differ.

const HEAD = 0; // next byte the producer writes (producer-owned)
const TAIL = 1; // next byte the consumer reads (consumer-owned)
const SLEEPING = 2; // 1 while the consumer is (about to be) waiting
const SEQ = 3; // bumped on every write: what the consumer waits on
const WRAP = 0xffffffff;

export interface RingBuffers {
  ctrl: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

export function createRing(bytes: number): RingBuffers {
  return { ctrl: new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT), data: new SharedArrayBuffer(bytes) };
}

class RingBase {
  protected readonly ctrl: Int32Array;
  protected readonly data: Uint8Array;
  protected readonly view: DataView;
  protected readonly cap: number;
  constructor(b: RingBuffers) {
    this.ctrl = new Int32Array(b.ctrl);
    this.data = new Uint8Array(b.data);
    this.view = new DataView(b.data);
    this.cap = b.data.byteLength;
  }
}

/** The main thread's end. */
export class RingWriter extends RingBase {
  /** The largest record this ring can ever take (anything larger must travel another way). */
  get maxRecord(): number {
    // A record must fit contiguously even when it lands just after a wrap: half the ring, less the headers.
    return (this.cap >>> 1) - 8;
  }

  /** Appends one record; false when there is no room now (nothing written). */
  write(bytes: Uint8Array): boolean {
    const n = bytes.length;
    if (n > this.maxRecord) return false;
    const head = this.ctrl[HEAD]!;
    const tail = Atomics.load(this.ctrl, TAIL);
    const need = 4 + n;
    let at = head;
    if (head >= tail) {
      // Free: head..cap and 0..tail-1. The record must be contiguous.
      if (this.cap - head >= need + (tail === 0 ? 1 : 0)) at = head;
      else if (tail - 1 >= need) {
        if (this.cap - head >= 4) this.view.setUint32(head, WRAP);
        at = 0;
      } else return false;
    } else if (tail - head - 1 < need) return false;
    this.view.setUint32(at, n);
    this.data.set(bytes, at + 4);
    let next = at + need;
    if (next === this.cap) next = 0;
    Atomics.store(this.ctrl, HEAD, next);
    Atomics.add(this.ctrl, SEQ, 1);
    if (Atomics.load(this.ctrl, SLEEPING) === 1) Atomics.notify(this.ctrl, SEQ);
    return true;
  }
}

/** The writer thread's end. */
export class RingReader extends RingBase {
  /** Where the record `peek` returned ends (the next TAIL), or -1 when none is held. */
  private held = -1;

  /**
   * The next record as a view into the shared memory, or null when the ring is empty. The view stays valid, and
   * its bytes unchanged, until `release()`: the producer cannot write over a record the consumer has not released.
   * No copy: a new typed array of a few hundred bytes costs V8 an off-heap allocation (~0.6 us measured, more than
   * the unpack of a one-write batch), and the writer unpacks the record before it releases it.
   */
  peek(): Uint8Array | null {
    let tail = this.ctrl[TAIL]!;
    const head = Atomics.load(this.ctrl, HEAD);
    if (tail === head) return null;
    if (this.cap - tail < 4 || this.view.getUint32(tail) === WRAP) {
      tail = 0;
      Atomics.store(this.ctrl, TAIL, 0);
      if (tail === head) return null;
    }
    const n = this.view.getUint32(tail);
    let next = tail + 4 + n;
    if (next === this.cap) next = 0;
    this.held = next;
    return this.data.subarray(tail + 4, tail + 4 + n);
  }

  /** Gives the record `peek` returned back to the producer (its view must no longer be used). */
  release(): void {
    if (this.held < 0) return;
    Atomics.store(this.ctrl, TAIL, this.held);
    this.held = -1;
  }

  /** The next record as a copy, safe to keep, or null when the ring is empty. */
  read(): Uint8Array | null {
    const view = this.peek();
    if (view === null) return null;
    const copy = view.slice();
    this.release();
    return copy;
  }

  /**
   * Blocks this thread until the ring may hold a record (at once if it does) or `ms` pass; false when it timed out.
   * A blocking wait is one futex: Atomics.waitAsync would add a task posted to this thread's event loop and an
   * eventfd wake-up on both sides for every batch. The producer notifies only while SLEEPING is set, and SEQ is
   * read before the ring is checked again, so a record written in between is never slept through.
   */
  waitSync(ms: number): boolean {
    const seq = Atomics.load(this.ctrl, SEQ);
    Atomics.store(this.ctrl, SLEEPING, 1);
    let woke = true;
    if (Atomics.load(this.ctrl, HEAD) === this.ctrl[TAIL]) woke = Atomics.wait(this.ctrl, SEQ, seq, ms) !== 'timed-out';
    Atomics.store(this.ctrl, SLEEPING, 0);
    return woke;
  }
}
