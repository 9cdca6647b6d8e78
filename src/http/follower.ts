// A read follower's HTTP side (ROLE=follower, docs/followers.md): every write is forwarded to the writer as it came
// (same method, path, headers and body; the writer's answer returned as it is), a read with a Bookmark the copy has
// not reached waits for it (FOLLOWER_WAIT_MS) and is forwarded to the writer past that, and every response says
// which replica position the copy holds and how long ago it was confirmed current.
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Follower } from '../follower/follower.js';
import type { ForwardRequest, ForwardResponse, WriterForwarder } from '../follower/forward.js';
import { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { m } from '../shared/metrics.js';
import { readBody } from './body.js';
import type { Exchange } from './exchange.js';

export interface FollowerEdge {
  follower: Follower;
  forwarder: WriterForwarder;
  /** FOLLOWER_WAIT_MS */
  waitMs: number;
  /** FOLLOWER_MAX_LAG_MS */
  maxLagMs: number;
  maxBodyBytes: number;
  log: Logger;
}

/**
 * What the writer needs to answer this request itself (read while `req` is valid: in the handler, before any
 * await), with this exchange's X-Request-Id (generated here if the client sent none), so both logs name one id.
 */
function capture(ex: Exchange, req: HttpRequest, method: string): ForwardRequest {
  const headers: [string, string][] = [];
  req.forEach((k, v) => {
    if (k !== 'x-request-id') headers.push([k, v]);
  });
  headers.push(['x-request-id', ex.id]);
  const query = req.getQuery();
  return { method, pathAndQuery: query ? `${req.getUrl()}?${query}` : req.getUrl(), headers, body: null };
}

/**
 * Headers of a forwarded answer that this server writes itself on every reply (uWS: Date, uWebSockets). The framing
 * and hop-by-hop ones never get here: the forwarder drops them (src/follower/forward.ts, NOT_RETURNED).
 */
const NOT_FORWARDED = new Set(['date', 'x-request-id', 'x-content-type-options', 'uwebsockets', 'replica-position', 'replica-age-ms']);

/**
 * Replies with what the writer answered: its status, body and headers as they are, except the ones every reply of
 * ours carries (X-Request-Id is passed through, so it is the same id).
 */
function replyForwarded(ex: Exchange, r: ForwardResponse): void {
  let contentType = 'application/json';
  const headers: Record<string, string> = {};
  for (const [k, v] of r.headers) {
    const name = k.toLowerCase();
    if (name === 'content-type') contentType = v;
    else if (!NOT_FORWARDED.has(name)) headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  ex.text(r.status, contentType, r.body, headers);
}

function forward(edge: FollowerEdge, ex: Exchange, request: ForwardRequest): void {
  ex.goAsync();
  edge.forwarder.forward(request).then(
    (r) => replyForwarded(ex, r),
    (err: AppError) => {
      // The cause (addresses, socket errors) is for the log only; the client gets the code and its details.
      edge.log.warn({ code: err.code, cause: (err.cause as Error | undefined)?.message, requestId: ex.id, method: request.method }, 'follower: forwarding to the writer failed');
      ex.error(err);
    },
  );
}

/** The handler of every write route on a follower: the body read under the same cap, then forwarded. */
export function forwardWrite(edge: FollowerEdge, ex: Exchange, req: HttpRequest, method: string): void {
  const request = capture(ex, req, method);
  readBody(ex, req, edge.maxBodyBytes, (bytes) => forward(edge, ex, { ...request, body: Buffer.from(bytes) }));
}

const POSITION = /^\d{1,15}$/;

/**
 * What a read must wait for before the copy may answer it: the position of its Bookmark, when the copy has not
 * reached it; or, when the copy was not confirmed current within FOLLOWER_MAX_LAG_MS (its polls failed, or Cloud
 * Run throttled the CPU of an idle instance so nothing polled), a poll that starts now. Null: answer at once. 400
 * when the Bookmark is not a position.
 */
export function pendingRead(edge: FollowerEdge, ex: Exchange, req: HttpRequest, method: string): Exchange['awaiting'] {
  const value = req.getHeader('bookmark');
  let position = 0;
  if (value !== '') {
    if (!POSITION.test(value)) {
      throw new AppError('validation_failed', 'Bookmark must be a replica position: the decimal number a write was answered with in its Bookmark header');
    }
    position = Number(value);
  }
  const { follower } = edge;
  const stale = follower.ageMs() > edge.maxLagMs;
  if (follower.position >= position && !stale) return null;
  return { position, since: stale ? performance.now() : Number.NEGATIVE_INFINITY, request: capture(ex, req, method) };
}

/** Answers `then` once the copy may answer (see pendingRead); forwards the read to the writer after FOLLOWER_WAIT_MS. */
export function awaitBookmark(edge: FollowerEdge, ex: Exchange, awaiting: NonNullable<Exchange['awaiting']>, then: () => void): void {
  ex.goAsync();
  edge.follower.waitFor(awaiting.position, awaiting.since, edge.waitMs).then((reached) => {
    m.followerBookmarkReads.labels(reached ? 'served' : 'forwarded').inc();
    if (!reached) forward(edge, ex, awaiting.request);
    else {
      try {
        then();
      } catch (err) {
        ex.error(err);
      }
    }
  }, ex.fail);
}

/** Replica-Position and Replica-Age-Ms, on every response of a follower. */
export function replicaHeaders(follower: Follower): (res: HttpResponse) => void {
  return (res) => {
    res.writeHeader('Replica-Position', String(follower.position));
    res.writeHeader('Replica-Age-Ms', String(Math.round(follower.ageMs())));
  };
}
