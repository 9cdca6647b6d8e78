// The one error catalogue: stable snake_case codes, their HTTP status and default message.
// Errors cross threads as {code, message, details}; `fromWire` rebuilds them.

export const ERRORS = {
  validation_failed: { status: 400, message: 'request validation failed' },
  invalid_json: { status: 400, message: 'request body is not valid JSON' },
  /** GET /metrics without the METRICS_TOKEN bearer token (only when METRICS_TOKEN is set). */
  unauthorized: {
    status: 401,
    message: 'this endpoint needs Authorization: Bearer <METRICS_TOKEN>',
    headers: { 'WWW-Authenticate': 'Bearer realm="metrics"' },
  },
  not_found: { status: 404, message: 'not found' },
  method_not_allowed: { status: 405, message: 'method not allowed' },
  conflict: { status: 409, message: 'the request conflicts with the stored data' },
  idempotency_key_reused: {
    status: 422,
    message: 'this Idempotency-Key was already used for a different request (method, path or body)',
  },
  /** `Prefer: durability=replicated` (or DEFAULT_DURABILITY) on a server without REPLICA_URL: never silently downgraded. */
  durability_unavailable: { status: 400, message: 'durability=replicated needs a replica, and this server has none (no REPLICA_URL)' },
  payload_too_large: { status: 413, message: 'request body too large' },
  unsupported_media_type: {
    status: 415,
    message: 'request bodies must be JSON: Content-Type application/json (or a +json type), charset utf-8 if given',
  },
  /** The next product id would not be exactly representable in JSON numbers (above 2^53 - 1). */
  id_space_exhausted: {
    status: 507,
    message: 'no product id is left below 2^53: a new product cannot be stored with an id clients can read exactly',
  },
  /** Refusals of the request head (src/http/head-check.ts): the connection closes after them. */
  bad_framing: { status: 400, message: 'the request body framing is ambiguous or invalid' },
  unsupported_transfer_encoding: { status: 501, message: 'only the chunked transfer coding is supported' },
  overloaded: { status: 503, message: 'server is overloaded, retry later' },
  unavailable: { status: 503, message: 'server is unavailable' },
  request_timeout: { status: 503, message: 'no answer within the request timeout; a write may still be applied' },
  /** Litestream is not running: writes are refused rather than accepted unreplicated. */
  replication_down: { status: 503, message: 'replication to the replica is down; writes are refused until it recovers' },
  /** A durability=replicated write committed locally but the replica did not confirm it in time (details: its result). */
  replication_timeout: {
    status: 504,
    message: 'the write committed locally but is not confirmed in the replica; retry with the same Idempotency-Key to wait again',
  },
  /**
   * This server does not hold the writer lease (REPLICA_URL): it is a standby, it lost the lease, or it is handing
   * over. Nothing of the write was applied here, or (details.committed) it committed but the lease ran out before
   * it could be confirmed in the replica: the next leader may not have it. Retry: another instance leads.
   */
  not_leader: {
    status: 503,
    message: 'this instance does not hold the writer lease; the write was not applied, retry',
    headers: { 'Retry-After': '1' },
  },
  /**
   * SQLite answered SQLITE_FULL: the database volume (or DB_MAX_BYTES) is full. The write was not applied (a failed
   * batch rolls back whole); reads still work, and writes work again once space is freed (deletes, a bigger volume).
   */
  insufficient_storage: {
    status: 507,
    message: 'the database storage is full: the write was not applied; reads still work',
  },
  /**
   * A follower could not forward a write to the writer (src/follower/forward.ts): no connection, a reset before the
   * whole answer arrived, or no ID token to call it with (details: the reason). Never retried by the follower.
   */
  writer_unreachable: {
    status: 502,
    message:
      'the writer (WRITER_URL) could not be reached: the write was not forwarded, or its outcome is unknown; retry with the same Idempotency-Key',
  },
  /** A follower forwarded a write and the writer did not answer within the forward timeout. */
  writer_timeout: {
    status: 504,
    message: 'the writer did not answer in time: the write may still be applied; retry with the same Idempotency-Key',
  },
  internal: { status: 500, message: 'internal error' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export interface WireError {
  code: ErrorCode;
  message: string;
  details?: unknown[];
}

export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    readonly details?: unknown[],
    /** Extra response headers, e.g. Retry-After or Allow (default: the catalogue's, if any). */
    readonly headers: Readonly<Record<string, string>> | undefined = (ERRORS[code] as { headers?: Record<string, string> }).headers,
  ) {
    super(message);
    this.status = ERRORS[code].status;
  }

  toWire(): WireError {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }

  static fromWire(w: WireError): AppError {
    return new AppError(w.code in ERRORS ? w.code : 'internal', w.message, w.details);
  }
}

/** The answer to anything that arrives while the server drains: 503, and the connection closes. */
export function shuttingDown(): AppError {
  return new AppError('unavailable', 'server is shutting down', undefined, { Connection: 'close' });
}

/** Maps anything thrown by SQLite or our code to a client-safe AppError. Unknown errors become a bare 500. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')) {
    // CHECK/NOT NULL/UNIQUE violations: the input was valid JSON but not storable.
    return new AppError('conflict', constraintMessage(code));
  }
  if (isFull(err)) return new AppError('insufficient_storage');
  return new AppError('internal');
}

/** SQLITE_FULL: the database file or its WAL could not grow (volume full, or max_page_count from DB_MAX_BYTES). */
export function isFull(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'SQLITE_FULL';
}

/**
 * Why a whole batch failed (nothing in it committed), for every command in it: SQLITE_FULL, thrown by a statement
 * that made SQLite roll the transaction back or by COMMIT itself (its cause, when wrapped), is 507; anything else 500.
 */
export function batchFailureCode(err: unknown): 'insufficient_storage' | 'internal' {
  return isFull(err) || isFull((err as { cause?: unknown } | null)?.cause) ? 'insufficient_storage' : 'internal';
}

function constraintMessage(code: string): string {
  switch (code) {
    case 'SQLITE_CONSTRAINT_CHECK':
      return 'a value is out of the allowed range';
    case 'SQLITE_CONSTRAINT_UNIQUE':
    case 'SQLITE_CONSTRAINT_PRIMARYKEY':
      return 'a unique value already exists';
    default:
      return ERRORS.conflict.message;
  }
}

export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_') || code === 'SQLITE_LOCKED');
}
