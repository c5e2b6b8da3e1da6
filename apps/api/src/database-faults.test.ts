import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectPostgres, DatabaseUnavailableError, type Db } from '@devart/db';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { type DevartProcess, spawnDevart } from '../../../test/devart-process';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../../../test/throwaway-postgres';
import { signUserToken } from './auth/jwt';

// This file starts its own PostgreSQL whatever DATABASE_URL says: it restarts and kills the
// server, which must never happen to a shared one.
let server: ThrowawayPostgres;
beforeAll(async () => {
  server = await startThrowawayPostgres();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('transactions on a connection that breaks', () => {
  let db: Db;
  let admin: Db;
  beforeAll(async () => {
    const url = await server.createDatabase('devart_tx');
    db = connectPostgres(url, { max: 4 });
    admin = connectPostgres(url, { max: 1 });
    await admin.exec(`
      CREATE TABLE items (id serial PRIMARY KEY, label text NOT NULL);
      -- Makes COMMIT take a moment, so a test can cut the connection during it.
      CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN PERFORM pg_sleep(0.6); RETURN NULL; END $$;
      CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON items DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW WHEN (NEW.label LIKE 'slow%') EXECUTE FUNCTION slow_commit();
    `);
  });
  afterAll(async () => {
    await db?.close();
    await admin?.close();
  });

  const count = async (label: string) =>
    (await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM items WHERE label = $1', [label]))
      .rows[0]!.n;
  const backendPid = async (tx: { query: Db['query'] }) =>
    (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

  it('re-runs a transaction cut before COMMIT on a fresh connection, and commits it once', async () => {
    let runs = 0;
    const result = await db.transaction(async (tx) => {
      runs++;
      await tx.query('INSERT INTO items (label) VALUES ($1)', ['cut-mid-transaction']);
      if (runs === 1) {
        await admin.query('SELECT pg_terminate_backend($1)', [await backendPid(tx)]);
        await tx.query('SELECT 1');
      }
      return 'done';
    });
    expect(result).toBe('done');
    expect(runs).toBe(2);
    expect(await count('cut-mid-transaction')).toBe(1);
  });

  it('does not re-run a transaction cut during COMMIT: the outcome is unknown, so it says so', async () => {
    let runs = 0;
    const attempt = db.transaction(async (tx) => {
      runs++;
      await tx.query('INSERT INTO items (label) VALUES ($1)', ['slow-commit']);
      const pid = await backendPid(tx);
      // The deferred trigger holds COMMIT for 0.6 s; cut the connection in the middle of it.
      setTimeout(() => void admin.query('SELECT pg_terminate_backend($1)', [pid]), 250);
    });
    const error = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    expect((error as DatabaseUnavailableError).commitUnknown).toBe(true);
    expect(runs).toBe(1);
    // Terminated before the commit finished: never half-applied.
    expect(await count('slow-commit')).toBe(0);
  });

  it('rolls back and rethrows an ordinary error without re-running', async () => {
    let runs = 0;
    await expect(
      db.transaction(async (tx) => {
        runs++;
        await tx.query('INSERT INTO items (label) VALUES ($1)', ['bad-sql']);
        await tx.query('SELECT * FROM no_such_table');
      }),
    ).rejects.toMatchObject({ code: '42P01' });
    expect(runs).toBe(1);
    expect(await count('bad-sql')).toBe(0);
  });

  it('under concurrent queries and transactions, no client ever emits an error nobody hears, across restarts and kills', async () => {
    // Counts the 'error' events that would have ended the process (no listener on the client).
    let unheard = 0;
    const emit = pg.Client.prototype.emit;
    pg.Client.prototype.emit = function (this: pg.Client, event: string | symbol, ...args: unknown[]) {
      if (event === 'error' && this.listenerCount('error') === 0) {
        unheard++;
        return true;
      }
      return emit.call(this, event, ...args);
    };
    const failures = new Map<string, number>();
    let done = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        try {
          if (Math.random() < 0.5) await db.query('SELECT pg_sleep(0.01)');
          else
            await db.transaction(async (tx) => {
              await tx.query('INSERT INTO items (label) VALUES ($1)', ['load']);
              await tx.query('SELECT pg_sleep(0.01)');
            });
          done++;
        } catch (error) {
          const name = (error as Error).name;
          failures.set(name, (failures.get(name) ?? 0) + 1);
        }
      }
    };
    try {
      // More workers than pool clients, so clients are handed from one waiter to the next.
      const workers = Array.from({ length: 12 }, worker);
      for (let cycle = 0; cycle < 4; cycle++) {
        await sleep(500);
        if (cycle % 2 === 0) await server.restartFast();
        else {
          await server.killPostmaster();
          await sleep(300);
          await server.start();
        }
      }
      await sleep(500);
      stop = true;
      await Promise.all(workers);
    } finally {
      stop = true;
      pg.Client.prototype.emit = emit;
    }
    expect(unheard).toBe(0);
    expect([...failures.keys()].filter((name) => name !== 'DatabaseUnavailableError')).toEqual([]);
    expect(done).toBeGreaterThan(100);
  }, 40_000);

  it('answers DatabaseUnavailableError while the server is down, keeps LISTEN alive, and works again after', async () => {
    const heard: string[] = [];
    const unlisten = await db.listen('devart_fault_test', (payload) => heard.push(payload));
    await admin.query('SELECT 1'); // an idle pooled client, to be broken by the kill
    await server.killPostmaster();
    const started = Date.now();
    await expect(db.query('SELECT 1')).rejects.toBeInstanceOf(DatabaseUnavailableError);
    await expect(db.transaction((tx) => tx.query('SELECT 1'))).rejects.toBeInstanceOf(
      DatabaseUnavailableError,
    );
    // Bounded: a few short retries, not a hang.
    expect(Date.now() - started).toBeLessThan(8_000);
    // A LISTEN asked for during the outage does not fail: it connects when the server returns.
    const lateHeard: string[] = [];
    const lateUnlisten = await db.listen('devart_fault_late', (payload) => lateHeard.push(payload));
    await sleep(600);
    await server.start();
    await eventually('a query to succeed', async () => (await db.query('SELECT 1')).rowCount || undefined);
    await eventually('LISTEN to hear a NOTIFY again', async () => {
      await admin.query("SELECT pg_notify('devart_fault_test', 'after')");
      await sleep(100);
      return heard.includes('after') || undefined;
    });
    await eventually('the LISTEN made during the outage to hear a NOTIFY', async () => {
      await admin.query("SELECT pg_notify('devart_fault_late', 'late')");
      await sleep(100);
      return lateHeard.includes('late') || undefined;
    });
    await unlisten();
    await lateUnlisten();
  }, 40_000);
});

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

describe('devart start on PostgreSQL that restarts and dies', () => {
  let devart: DevartProcess;
  let child: ChildProcess;
  let apiUrl: string;
  let dataDir: string;
  let token: string;
  const secret = 'database-faults-test-secret-0123456789abcdef';

  beforeAll(async () => {
    const databaseUrl = await server.createDatabase('devart_api');
    dataDir = mkdtempSync(join(tmpdir(), 'devart-dbfaults-'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      DEVART_DATA_DIR: dataDir,
      JWT_SECRET: secret,
      LOG_LEVEL: 'info',
      SANDBOX_PROVIDER: 'none',
      REAPER_INTERVAL_SECONDS: '1',
      SANDBOX_SWEEP_SECONDS: '1',
    };
    // The in-process broker and its demo agents: this file is about the database.
    delete env.AMQP_URL;
    devart = spawnDevart(['start', '--port', '0', '--agents', '2'], env);
    child = devart.child;
    apiUrl = await devart.url;
    token = await signUserToken(secret, { role: 'admin', ttlSeconds: 600 });
  }, 90_000);

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${apiUrl}${path}`, {
      ...init,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...init.headers },
    });
  const createTask = (title: string, extra: Record<string, unknown> = {}) =>
    api('/api/tasks', { method: 'POST', body: JSON.stringify({ title, capability: 'echo', ...extra }) });
  const logLines = (): LogLine[] =>
    devart.stdout.split('\n').flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        return [JSON.parse(line) as LogLine];
      } catch {
        return [];
      }
    });

  /** A task created now reaches DONE: the API writes, the relay publishes, an agent completes. */
  const dispatchWorks = async () => {
    const res = await eventually('POST /api/tasks to answer 201', async () => {
      const r = await createTask('after the outage');
      return r.status === 201 ? r : undefined;
    });
    const { id } = (await res.json()) as { id: string };
    await eventually(`task ${id} to be DONE`, async () => {
      const r = await api(`/api/tasks/${id}`);
      return r.status === 200 && ((await r.json()) as { status: string }).status === 'DONE'
        ? true
        : undefined;
    });
  };

  it('stays up through a fast restart and a kill -9 of the postmaster, answering 503 meanwhile and resuming after', async () => {
    // The API's own log is the evidence when this fails.
    onTestFailed(() => console.error(`devart start stdout:\n${devart.stdout}\nstderr:\n${devart.stderr}`));
    // Steady load for the whole test: writes and readiness probes; every answer is recorded.
    const answers: { path: string; status: number }[] = [];
    let loading = true;
    const load = (async () => {
      for (let i = 0; loading; i++) {
        const [write, ready] = await Promise.all([
          createTask(`load ${i}`).catch(() => undefined),
          fetch(`${apiUrl}/ready`).catch(() => undefined),
        ]);
        if (write) answers.push({ path: 'POST /api/tasks', status: write.status });
        if (ready) answers.push({ path: 'GET /ready', status: ready.status });
        await Promise.all([write?.body?.cancel(), ready?.body?.cancel()]);
        await sleep(50);
      }
    })();

    // A NOTIFY-driven path to check after the outages: the event stream, subscribed before them.
    const events = await fetch(`${apiUrl}/api/events`, { headers: { authorization: `Bearer ${token}` } });
    expect(events.status).toBe(200);
    let streamed = '';
    const reader = events.body!.getReader();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        streamed += new TextDecoder().decode(value);
      }
    })();

    await dispatchWorks();

    const recovered = (n: number) =>
      eventually(`recovery ${n} in the log`, async () =>
        logLines().filter((l) => l.msg === 'database reachable again').length >= n ? true : undefined,
      );

    // Outage 1: pg_ctl restart -m fast terminates every connection.
    await server.restartFast();
    await dispatchWorks();
    await recovered(1);
    expect(child.exitCode).toBeNull();

    // Outage 2: the postmaster killed; down until started again.
    await server.killPostmaster();
    const write = await createTask('during the outage');
    expect(write.status).toBe(503);
    expect(write.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(write.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await write.json()).toMatchObject({ status: 503, type: 'urn:devart:problem:unavailable' });
    expect((await fetch(`${apiUrl}/ready`)).status).toBe(503);
    await sleep(2_000); // background loops meet the outage
    expect(child.exitCode).toBeNull();
    await server.start();
    await eventually('/ready to answer 200', async () =>
      (await fetch(`${apiUrl}/ready`)).status === 200 ? true : undefined,
    );
    await dispatchWorks();
    await recovered(2);

    // The event hub's LISTEN came back: a failure NOTIFYed after the outage reaches the stream.
    // Events sent before it reconnected are lost by design (best effort), so keep failing tasks.
    await eventually('a failure event on /api/events', async () => {
      const bad = await createTask('shell without a command', { capability: 'shell', payload: {} });
      expect(bad.status).toBe(201);
      const { id } = (await bad.json()) as { id: string };
      const deadline = Date.now() + 2_000;
      while (Date.now() < deadline) {
        if (streamed.includes(id)) return true;
        await sleep(100);
      }
      return undefined;
    });
    await reader.cancel();

    loading = false;
    await load;
    expect(child.exitCode).toBeNull();

    const statuses = new Set(answers.map((a) => a.status));
    expect([...statuses].filter((s) => ![200, 201, 503].includes(s))).toEqual([]);
    expect(answers.some((a) => a.status === 503)).toBe(true);

    const lines = logLines();
    const apiLines = lines.filter((l) => l.msg !== 'request');
    const outages = apiLines.filter((l) => l.msg.startsWith('database unreachable'));
    const recoveries = apiLines.filter((l) => l.msg === 'database reachable again');
    expect(outages.length).toBe(2);
    expect(recoveries.length).toBe(2);
    // No stack per request: nothing reached the 500 path or the last-resort handler.
    expect(apiLines.filter((l) => /unhandled/.test(l.msg))).toEqual([]);
    expect(devart.stderr).not.toMatch(/Error: /);
  }, 60_000);
});

describe('devart start before PostgreSQL answers', () => {
  it('waits for the database with one warning, then migrates and serves', async () => {
    const databaseUrl = await server.createDatabase('devart_late');
    const dataDir = mkdtempSync(join(tmpdir(), 'devart-dblate-'));
    await server.killPostmaster();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      DEVART_DATA_DIR: dataDir,
      JWT_SECRET: 'database-faults-test-secret-0123456789abcdef',
      LOG_LEVEL: 'info',
      SANDBOX_PROVIDER: 'none',
    };
    delete env.AMQP_URL;
    const late = spawnDevart(['start', '--port', '0', '--agents', '0'], env);
    const { child } = late;
    onTestFailed(() => console.error(`devart start stdout:\n${late.stdout}\nstderr:\n${late.stderr}`));
    try {
      await eventually('the wait to be logged', async () =>
        late.stdout.includes('the database does not answer yet') ? true : undefined,
      );
      await sleep(1500);
      expect(child.exitCode).toBeNull();
      await server.start();
      const url = await late.url;
      expect((await fetch(`${url}/ready`)).status).toBe(200);
      expect(late.stdout.split('the database does not answer yet').length - 1).toBe(1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
