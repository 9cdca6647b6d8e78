// Replication to the replica (Litestream 0.5): the server's public surface for it.
export { LitestreamSupervisor, type SyncResult } from './litestream-supervisor.js';
export { ReplicaUnavailableError, type RestoreOutcome } from './restore.js';
