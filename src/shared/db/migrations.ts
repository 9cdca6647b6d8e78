// Ordered schema migrations, applied by the writer at start-up; PRAGMA user_version records how many ran.
// Append only: never edit a migration that has shipped.

const NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE products (
     id          INTEGER PRIMARY KEY AUTOINCREMENT,
     name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
     price       REAL    NOT NULL CHECK (price >= 0),
     description TEXT    NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
     stock       INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
     created_at  TEXT    NOT NULL DEFAULT (${NOW}),
     updated_at  TEXT    NOT NULL DEFAULT (${NOW})
   ) STRICT;
   CREATE TABLE counters (
     name  TEXT    PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
     -- JSON numbers are IEEE doubles: keep values exactly representable for clients.
     value INTEGER NOT NULL CHECK (value BETWEEN -9007199254740991 AND 9007199254740991)
   ) STRICT, WITHOUT ROWID;`,
  // Idempotency keys: the outcome of the first request with a key, written in the same transaction as its command.
  `CREATE TABLE idempotency (
     key         TEXT    PRIMARY KEY,
     -- sha256 of method, path and the parsed JSON body: a different request with the same key is refused.
     fingerprint TEXT    NOT NULL,
     -- {"ok": {"body", "id"?}} or {"err": {"code", "message", "details"?}}
     outcome     TEXT    NOT NULL,
     created_at  INTEGER NOT NULL  -- ms since the epoch
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX idempotency_created_at ON idempotency (created_at);`,
  // DATA_FILE: one row per applied content, written in the same transaction as the rows it set. The newest row's
  // hash is the content now in force; the same content again is not re-applied (see src/writer/data-file.ts).
  `CREATE TABLE data_file_applied (
     seq        INTEGER PRIMARY KEY,
     hash       TEXT    NOT NULL,  -- sha256 (hex) of the file's bytes
     applied_at TEXT    NOT NULL,  -- the transaction's ISO-8601 timestamp
     counters   INTEGER NOT NULL,  -- how many the file set
     products   INTEGER NOT NULL
   ) STRICT;`,
  // A dense copy of the ids for list pages by offset (src/readers/queries.ts): stepping over N products reads
  // ~N/400 pages of this index instead of ~N/30 leaf pages of the table. It matters because every commit of the
  // writer empties a reader's page cache (WAL mode: a reader that sees a new snapshot drops its cached pages), so
  // under writes each page is read from the file again: an offset of 5,000 went from ~250 to ~100 us.
  `CREATE INDEX products_id_skip ON products (id);`,
  // The replica position (issue 19): +1 in every transaction the writer commits (each batch, and a heartbeat when
  // idle), in the same transaction. A write's Bookmark is its transaction's seq; a follower reads the row from its
  // copy to know exactly which writes it holds (docs/followers.md).
  `CREATE TABLE replica_position (
     id         INTEGER PRIMARY KEY CHECK (id = 1),
     seq        INTEGER NOT NULL,
     written_at INTEGER NOT NULL  -- ms since the epoch, on the writer's clock
   ) STRICT;
   INSERT INTO replica_position (id, seq, written_at) VALUES (1, 0, 0);`,
];
