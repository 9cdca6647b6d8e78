// The DATA_FILE format: counters to set and products to insert or replace by id, validated with the same field
// rules as the API (src/shared/domain.ts) so the file can hold nothing a request could not.
import { z } from 'zod';
import { counterName, productInput } from './domain.js';

/** Largest data file read. Parsing and validating cost the main thread ~30 ms per MiB (HTTP waits meanwhile). */
export const DATA_FILE_MAX_BYTES = 16 * 1024 * 1024;

const MAX = Number.MAX_SAFE_INTEGER;

// A product as POST /products takes it, plus the id it is stored under.
const fileProduct = productInput.extend({ id: z.number().int().min(1).max(MAX) });

// The counters.value CHECK: integers clients can read back exactly. (A record drops a "__proto__" key without a
// word; load.ts refuses that name before this runs.)
const counters = z.record(counterName, z.number().int().min(-MAX).max(MAX));

export const dataFileSchema = z
  .strictObject({
    counters: counters.optional(),
    products: z.array(fileProduct).optional(),
  })
  .superRefine((f, ctx) => {
    const seen = new Set<number>();
    f.products?.forEach((p, i) => {
      if (seen.has(p.id)) ctx.addIssue({ code: 'custom', path: ['products', i, 'id'], message: `product id ${p.id} appears more than once` });
      seen.add(p.id);
    });
  });

export type DataFileProduct = z.infer<typeof fileProduct>;

/** What the writer applies: the validated content and the sha256 (hex) of the file's bytes. */
export interface DataFileContent {
  hash: string;
  counters: [name: string, value: number][];
  products: DataFileProduct[];
}

/** What applying a content did (the writer's answer to applyDataFile); `{applied: false}`: it was the one in force. */
export type DataFileOutcome = { applied: true; counters: number; products: number } | { applied: false };
