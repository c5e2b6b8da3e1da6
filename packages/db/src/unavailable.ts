/**
 * The database could not be reached, or the connection broke under a statement. Nothing about
 * the request is wrong: the same call may succeed in a moment. `cause` holds the driver's error.
 * @example
 * try { await db.query('SELECT 1') } catch (e) { if (e instanceof DatabaseUnavailableError) retryLater() }
 */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
  /** The connection broke during COMMIT: the transaction may or may not have been applied. */
  readonly commitUnknown: boolean;
  constructor(message: string, options: { cause?: unknown; commitUnknown?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.commitUnknown = options.commitUnknown ?? false;
  }
}

// SQLSTATE codes that say "this connection or this server is gone for now", not "your SQL is wrong":
// admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections.
const connectionSqlStates = new Set(['57P01', '57P02', '57P03', '53300']);
const socketCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTCONN']);
// node-postgres and pg-pool say these as plain messages without a code.
const connectionMessages = [
  /^Connection terminated/,
  /timeout exceeded when trying to connect/,
  /Client has encountered a connection error and is not queryable/,
  /Client was closed and is not queryable/,
  /the database system is (starting up|shutting down|in recovery mode)/,
];

/** True for an error that means the database is unreachable (SQLSTATE class 08 and the like), not a bad statement. */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || connectionSqlStates.has(code) || socketCodes.has(code)) return true;
  }
  if (connectionMessages.some((pattern) => pattern.test(error.message))) return true;
  // AggregateError from a connect that tried several addresses (localhost → ::1 and 127.0.0.1).
  if (error instanceof AggregateError) return error.errors.some(isConnectionError);
  return false;
}

/** `error` as a DatabaseUnavailableError when it is a connection fault, else unchanged. */
export function asDatabaseError(error: unknown): unknown {
  if (error instanceof DatabaseUnavailableError || !isConnectionError(error)) return error;
  const detail = (error as Error).message || (error as { code?: string }).code || 'connection failed';
  return new DatabaseUnavailableError(`The database is unavailable: ${detail}`, { cause: error });
}
