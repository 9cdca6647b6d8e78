// What every resource's handlers share: validation into typed data, a read through the readers, a write through
// the writer (with its durability), and reading a JSON body.
import type { HttpRequest } from 'uWebSockets.js';
import type { z } from 'zod';
import type { Config } from '../../shared/config.js';
import { AppError } from '../../shared/errors.js';
import type { ReadOp, ReadResult, WriteAnswer, WriteOp } from '../../shared/protocol.js';
import { contentTypeError } from '../content-type.js';
import { awaitBookmark, type FollowerEdge } from '../follower.js';
import { parseJson, readBody } from '../body.js';
import { F, field } from '../head-fields.js';
import type { Exchange } from '../exchange.js';
import { preferenceApplied, requestDurability, type Dur } from '../prefer.js';
import { issueDetails, type DigitsInt } from '../schemas.js';
import type { Backend, ServiceState } from '../state.js';

export interface RouteDeps {
  config: Config;
  /** Also where the backend (writer + readers) comes from: it changes with each term as the writer. */
  state: ServiceState;
  /** Set on a read follower (ROLE=follower): writes are forwarded, reads wait for their Bookmark. */
  follower?: FollowerEdge | null;
}

export type WriteReply = (r: WriteAnswer, headers?: Record<string, string>) => void;

/** `value` parsed by `schema`, or a 400 validation_failed naming `where` (body, query, id, ...). */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new AppError('validation_failed', `invalid ${where}`, issueDetails(r.error, where));
  return r.data;
}

/** A number in decimal digits (a path id): the plain check when it passes, else `parse` for the 400's issues. */
export function parseDigits(schema: DigitsInt, value: string, where: string): number {
  return schema.accept(value) ?? parse(schema, value, where);
}

export function routeKit({ config, state, follower = null }: RouteDeps) {
  const holdMs = config.replication?.standbyHoldMs ?? 0;
  /** A standby: `then` once this instance leads (the request is held meanwhile), or 503 not_leader after the hold. */
  const held = (ex: Exchange, then: (b: Backend) => void) => {
    ex.goAsync();
    state.awaitBackend(holdMs).then((b) => {
      try {
        then(b);
      } catch (err) {
        ex.error(err);
      }
    }, ex.fail);
  };

  // An inline read is answered at once, with no closure made for it (the pool's answer arrives later).
  const readWith = ({ readers }: Backend, ex: Exchange, op: ReadOp, status: number) => {
    const r = readers.run(op);
    if (typeof r === 'string' || r === null) replyRead(ex, op, status, r);
    else {
      ex.goAsync();
      r.then((body) => replyRead(ex, op, status, body), ex.fail);
    }
  };

  // The backend at once when this instance serves (no closure on this path), else once it leads.
  const read = (ex: Exchange, op: ReadOp, status = 200) => {
    const b = state.backend;
    if (follower && ex.awaiting && b) awaitBookmark(follower, ex, ex.awaiting, () => readWith(b, ex, op, status));
    else if (b) readWith(b, ex, op, status);
    else held(ex, (lead) => readWith(lead, ex, op, status));
  };

  /** The write's durability, from Prefer or DEFAULT_DURABILITY (read while `req` is valid). */
  const durability = (req: HttpRequest): Dur => requestDurability(req, config.defaultDurability, config.replication !== null);

  const writeWith = ({ writer }: Backend, ex: Exchange, op: WriteOp, d: Dur, reply: WriteReply) => {
    // A follower forwards writes before any handler runs (src/http/follower.ts): none reaches here.
    if (!writer) throw new Error('a write reached the handler on a follower');
    if (state.writesRefused) throw new AppError('replication_down', state.writesRefused, undefined, { 'Retry-After': '5' });
    ex.goAsync();
    const applied = preferenceApplied(d);
    writer.submitWith(op, d.durability, (err, r) => (err ? ex.error(err) : reply(r!, withBookmark(applied, r!.position))));
  };

  const write = (ex: Exchange, op: WriteOp, d: Dur, reply: WriteReply) => {
    const b = state.backend;
    if (b) writeWith(b, ex, op, d, reply);
    else held(ex, (lead) => writeWith(lead, ex, op, d, reply));
  };

  /** Runs `then` with the parsed JSON body; failures become error replies. */
  const withBody = (ex: Exchange, req: HttpRequest, empty: unknown, then: (body: unknown) => void) => {
    const type = field(req, F.contentType);
    readBody(ex, req, config.maxBodyBytes, (bytes) => {
      try {
        // Checked once the body is read (the connection stays usable), and only for a body: an empty
        // increment means `by: 1` whatever type a client library puts on it.
        const refused = bytes.length > 0 ? contentTypeError(type) : null;
        if (refused) throw refused;
        then(parseJson(bytes, empty));
      } catch (err) {
        ex.error(err);
      }
    });
  };

  return { read, durability, write, withBody };
}

export type RouteKit = ReturnType<typeof routeKit>;

/**
 * The write's Bookmark: the replica position of the transaction that committed it. A follower given it in a read's
 * `Bookmark` header answers only once its copy holds that position (docs/followers.md).
 */
function withBookmark(headers: Record<string, string> | undefined, position: number | undefined): Record<string, string> | undefined {
  if (position === undefined || position === 0) return headers;
  return headers ? { ...headers, Bookmark: String(position) } : { Bookmark: String(position) };
}

function replyRead(ex: Exchange, op: ReadOp, status: number, body: ReadResult): void {
  if (body === null) ex.error(new AppError('not_found', notFoundMessage(op)));
  else ex.json(status, body);
}

function notFoundMessage(op: ReadOp): string {
  switch (op.q) {
    case 'product':
      return `product ${op.id} not found`;
    case 'counter':
      return `counter ${op.name} not found`;
    default:
      return 'not found';
  }
}
