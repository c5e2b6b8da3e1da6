import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { flushEvents, openEventBuffer } from './events';
import { asDatabaseError, DatabaseUnavailableError, isConnectionError } from './unavailable';

export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

/** Anything that runs SQL: the database itself or a transaction. */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * On PostgreSQL, a connection that breaks before COMMIT is sent re-runs `fn` on a fresh one
   * (a few times within seconds), so `fn` must be safe to run again: only database work, or
   * effects that are harmless twice (the outbox relay's publishes, deduplicated downstream).
   * A break during COMMIT is not retried: it rejects with a DatabaseUnavailableError.
   * Events appended with `appendEvents(tx, …)` are written as the last statement before COMMIT;
   * a re-run starts with an empty buffer.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Calls `onNotify` with the payload of every NOTIFY on `channel` until the returned function is
   * called. Best effort: a dropped listener reconnects by itself and then calls `onNotify('')` once,
   * since notifications sent meanwhile are lost; callers keep a slow timer for what it missed.
   * Resolves even while the database is down (it keeps trying with backoff); rejects only for
   * faults that retrying cannot fix.
   */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const channelName = /^[a-z_][a-z0-9_]*$/;

// int8 (counts, bigserial ids) as numbers on both drivers; numeric stays a string so costs keep their exact digits.
const INT8_OID = 20;
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** A change in whether the database answers, as seen by the work this process does. */
export type AvailabilityChange = { available: false; error: DatabaseUnavailableError } | { available: true };

export interface PostgresOptions {
  /** Pool size. */
  max?: number;
  /**
   * How long to wait for a connection, new or from a full pool, before failing with a
   * DatabaseUnavailableError; during an outage requests answer 503 instead of hanging.
   */
  connectionTimeoutMillis?: number;
  /** Called once when work starts failing for want of a connection and once when it succeeds again. */
  onAvailabilityChange?: (change: AvailabilityChange) => void;
  /** Bound on re-running a transaction whose connection broke before COMMIT (attempts and total time). */
  transactionRetry?: { attempts: number; budgetMs: number };
}

// Backoff between re-runs of a cut transaction; the total stays under transactionRetry.budgetMs.
const retryDelayMs = (attempt: number) => 100 * 3 ** (attempt - 1) * (0.75 + Math.random() * 0.5);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type TransactionAttempt<T> =
  | { outcome: 'committed'; value: T }
  | { outcome: 'cut'; error: DatabaseUnavailableError };

/**
 * Connects to PostgreSQL (`DATABASE_URL`). Connection faults never escape as `'error'` events:
 * every client has a listener, a broken client is discarded by the pool, and a statement that
 * meets a dead connection rejects with a DatabaseUnavailableError.
 */
export function connectPostgres(
  url: string,
  {
    // 10 is node-postgres's own default, not tuned: in docs/performance.md's benchmark PostgreSQL ran
    // at most one statement at a time, so the pool was not what limited throughput.
    max = 10,
    connectionTimeoutMillis = 5_000,
    onAvailabilityChange,
    transactionRetry = { attempts: 4, budgetMs: 3_000 },
  }: PostgresOptions = {},
): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types: pgTypes,
    connectionTimeoutMillis,
    keepAlive: true,
  });
  // An idle client that loses its server is dropped by the pool; the next query connects anew.
  pool.on('error', () => {});
  // Every pooled client keeps an 'error' listener for its whole life. The pool removes its own
  // while a client is checked out, and pool.query() hands a client to the next waiter in the middle
  // of parsing that client's socket data: a server's "terminating connection" in the same chunk
  // would reach a client nobody listens to yet, and end the process. The first error is kept so
  // a transaction can tell that its client broke.
  const clientErrors = new WeakMap<pg.ClientBase, Error>();
  pool.on('connect', (client) => {
    client.on('error', (error) => {
      if (!clientErrors.has(client)) clientErrors.set(client, error);
    });
  });

  let available = true;
  let lastFaultAt = 0;
  const fault = (error: unknown): unknown => {
    const mapped = asDatabaseError(error);
    if (mapped instanceof DatabaseUnavailableError) {
      lastFaultAt = Date.now();
      if (available) {
        available = false;
        onAvailabilityChange?.({ available: false, error: mapped });
      }
    }
    return mapped;
  };
  const succeeded = () => {
    // Backends of a stopping server end one by one: a statement that still succeeds in the same
    // instant as the faults around it is no recovery, and must not split one outage into two.
    if (available || Date.now() - lastFaultAt < 500) return;
    available = true;
    onAvailabilityChange?.({ available: true });
  };

  const wrap = (client: pg.Pool | pg.PoolClient): Queryable => ({
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      try {
        const res = await client.query(sql, params as unknown[]);
        succeeded();
        return { rows: res.rows as Row[], rowCount: res.rowCount ?? 0 };
      } catch (error) {
        throw fault(error);
      }
    },
    async exec(sql: string) {
      try {
        await client.query(sql);
        succeeded();
      } catch (error) {
        throw fault(error);
      }
    },
  });

  /**
   * One try of `fn` on its own connection. A connection that breaks before COMMIT is sent leaves
   * nothing behind (the server rolls back), so that try is reported as `cut` and may be re-run; a
   * break during COMMIT leaves the outcome unknown and is thrown, never retried.
   */
  const attemptTransaction = async <T>(fn: (tx: Queryable) => Promise<T>): Promise<TransactionAttempt<T>> => {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      const mapped = fault(error);
      if (mapped instanceof DatabaseUnavailableError) return { outcome: 'cut', error: mapped };
      throw mapped;
    }
    const broken = () => clientErrors.get(client);
    let commitSent = false;
    try {
      await client.query('BEGIN');
      // A fresh Queryable, and so a fresh event buffer, for every try: a cut try's events are gone with it.
      const tx = wrap(client);
      openEventBuffer(tx);
      const value = await fn(tx);
      await flushEvents(tx);
      // A client already broken refuses COMMIT without sending it: still a clean cut.
      const before = broken();
      if (before) throw before;
      commitSent = true;
      await client.query('COMMIT');
      succeeded();
      return { outcome: 'committed', value };
    } catch (error) {
      if (!isConnectionError(error)) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
      if (!clientErrors.has(client)) clientErrors.set(client, error as Error);
      const mapped = fault(error) as DatabaseUnavailableError;
      if (!commitSent) return { outcome: 'cut', error: mapped };
      throw new DatabaseUnavailableError(
        `The connection broke while committing, so whether the transaction was applied is unknown: ${mapped.message}`,
        { cause: error, commitUnknown: true },
      );
    } finally {
      // release(error) makes the pool discard the client instead of handing out a dead one.
      client.release(broken());
    }
  };

  return {
    kind: 'postgres',
    ...wrap(pool),
    async transaction(fn) {
      const started = Date.now();
      for (let attempt = 1; ; attempt++) {
        const tried = await attemptTransaction(fn);
        if (tried.outcome === 'committed') return tried.value;
        const delay = retryDelayMs(attempt);
        if (
          attempt >= transactionRetry.attempts ||
          Date.now() - started + delay > transactionRetry.budgetMs
        ) {
          throw tried.error;
        }
        await sleep(delay);
      }
    },
    async listen(channel, onNotify) {
      if (!channelName.test(channel)) throw new Error(`invalid channel name ${channel}`);
      let client: pg.Client | undefined;
      let stopped = false;
      let retry: NodeJS.Timeout | undefined;
      let delayMs = 250;
      const scheduleReconnect = () => {
        if (stopped || retry) return;
        retry = setTimeout(() => {
          retry = undefined;
          // Failures are handled inside connect(), which schedules the next try itself.
          void connect().catch(() => {});
        }, delayMs);
        // Capped low: notifications are lost until it is back, so it should be back soon after the server.
        delayMs = Math.min(delayMs * 2, 2_000);
      };
      const connect = async (): Promise<void> => {
        const next = new pg.Client({ connectionString: url, connectionTimeoutMillis, keepAlive: true });
        let lost = false;
        const drop = (error: unknown) => {
          if (lost) return;
          lost = true;
          if (client === next) client = undefined;
          next.end().catch(() => {});
          if (stopped) return;
          fault(error);
          scheduleReconnect();
        };
        next.on('error', drop);
        next.on('end', () => drop(new Error('Connection terminated unexpectedly')));
        next.on('notification', (message) => {
          if (message.channel === channel) onNotify(message.payload ?? '');
        });
        try {
          await next.connect();
          await next.query(`LISTEN ${channel}`);
        } catch (error) {
          drop(error);
          throw asDatabaseError(error);
        }
        if (stopped || lost) {
          await next.end().catch(() => {});
          return;
        }
        client = next;
        delayMs = 250;
        succeeded();
        // A notification may have been missed while reconnecting.
        onNotify('');
      };
      try {
        await connect();
      } catch (error) {
        // Down right now: the retry is already scheduled. Anything else (a wrong database name,
        // bad credentials) is a configuration error the caller must hear about.
        if (!(error instanceof DatabaseUnavailableError)) {
          stopped = true;
          clearTimeout(retry);
          throw error;
        }
      }
      return async () => {
        stopped = true;
        clearTimeout(retry);
        await client?.end().catch(() => {});
      };
    },
    close: () => pool.end(),
  };
}

/** Opens an embedded PGlite database in `dataDir` (in memory when undefined), or from a dumped data directory. */
export interface PgliteDb extends Db {
  readonly kind: 'pglite';
  /** The data directory as a tarball, loadable with `openPglite({ loadDataDir })`. */
  dump(): Promise<Blob>;
}

export async function openPglite(
  options: { dataDir?: string; loadDataDir?: Blob | File } = {},
): Promise<PgliteDb> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const db = await PGlite.create({ dataDir: options.dataDir, loadDataDir: options.loadDataDir });
  return wrapPglite(db);
}

export function wrapPglite(db: PGlite): PgliteDb {
  type PgliteLike = Pick<PGlite, 'query' | 'exec'>;
  const wrap = (client: PgliteLike): Queryable => ({
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      const res = await client.query<Row>(sql, params as unknown[]);
      // PGlite counts affected rows only for writes; a SELECT reports its rows, as node-postgres does.
      return { rows: res.rows, rowCount: Math.max(res.affectedRows ?? 0, res.rows.length) };
    },
    async exec(sql: string) {
      await client.exec(sql);
    },
  });
  return {
    kind: 'pglite' as const,
    ...wrap(db),
    transaction: (fn) =>
      db.transaction(async (client) => {
        const tx = wrap(client);
        openEventBuffer(tx);
        const value = await fn(tx);
        await flushEvents(tx);
        return value;
      }),
    async listen(channel, onNotify) {
      if (!channelName.test(channel)) throw new Error(`invalid channel name ${channel}`);
      const unsubscribe = await db.listen(channel, (payload) => onNotify(payload));
      return () => unsubscribe();
    },
    close: () => db.close(),
    dump: () => db.dumpDataDir('none'),
  };
}

/** One round trip that reads no table: resolves when the database answers, rejects when it does not. */
export async function ping(db: Queryable): Promise<void> {
  await db.query('SELECT 1');
}
