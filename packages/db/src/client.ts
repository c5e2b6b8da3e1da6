import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

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
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Calls `onNotify` with the payload of every NOTIFY on `channel` until the returned function is
   * called. Best effort: a dropped listener reconnects by itself and then calls `onNotify('')` once,
   * since notifications sent meanwhile are lost; callers keep a slow timer for what it missed.
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

/** Connects to PostgreSQL (`DATABASE_URL`). */
export function connectPostgres(url: string, { max = 10 }: { max?: number } = {}): Db {
  const pool = new pg.Pool({ connectionString: url, max, types: pgTypes });
  // An idle client that loses its server must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  const wrap = (client: pg.Pool | pg.PoolClient): Queryable => ({
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      const res = await client.query(sql, params as unknown[]);
      return { rows: res.rows as Row[], rowCount: res.rowCount ?? 0 };
    },
    async exec(sql: string) {
      await client.query(sql);
    },
  });
  return {
    kind: 'postgres',
    ...wrap(pool),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async listen(channel, onNotify) {
      if (!channelName.test(channel)) throw new Error(`invalid channel name ${channel}`);
      let client: pg.Client | undefined;
      let stopped = false;
      let retry: NodeJS.Timeout | undefined;
      const connect = async () => {
        const next = new pg.Client({ connectionString: url });
        next.on('notification', (message) => {
          if (message.channel === channel) onNotify(message.payload ?? '');
        });
        next.on('error', () => {
          next.end().catch(() => {});
          if (!stopped) retry = setTimeout(() => void connect().catch(() => {}), 1000);
        });
        await next.connect();
        await next.query(`LISTEN ${channel}`);
        client = next;
        // A notification may have been missed while reconnecting.
        onNotify('');
      };
      await connect();
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
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    async listen(channel, onNotify) {
      if (!channelName.test(channel)) throw new Error(`invalid channel name ${channel}`);
      const unsubscribe = await db.listen(channel, (payload) => onNotify(payload));
      return () => unsubscribe();
    },
    close: () => db.close(),
    dump: () => db.dumpDataDir('none'),
  };
}
