import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './devart-process';

const run = promisify(execFile);

/** A private PostgreSQL server for tests that break things (restart it, kill it). */
export interface ThrowawayPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  dataDir: string;
  /** Creates a database on this server and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** `pg_ctl restart -m fast`; resolves once it accepts connections again. */
  restartFast(): Promise<void>;
  /** `kill -9` of the postmaster; does not start it again. */
  killPostmaster(): Promise<void>;
  /** `pg_ctl start` (after killPostmaster or stop); resolves once it accepts connections. */
  start(): Promise<void>;
  /** `pg_ctl stop -m immediate` and removes the data; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL from `$(pg_config --bindir)` in a fresh temp dir on a free loopback port,
 * trust auth, never the shared server on 5432. The server refuses to run as root, so every
 * binary runs as the `postgres` OS user when we are root.
 *
 * @example
 * const pgsrv = await startThrowawayPostgres();
 * const url = await pgsrv.createDatabase('devart_chaos');
 * await pgsrv.restartFast();
 * await pgsrv.stop();
 */
export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const bindir = (await run('pg_config', ['--bindir'])).stdout.trim();
  const asRoot = process.getuid?.() === 0;
  const root = mkdtempSync(join(tmpdir(), 'devart-pg-'));
  const dataDir = join(root, 'data');
  const logFile = join(root, 'postgres.log');
  if (asRoot) {
    const { uid, gid } = await postgresUser();
    chownSync(root, uid, gid);
  }

  const pgBin = async (tool: string, args: string[]): Promise<string> => {
    const file = join(bindir, tool);
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
    // cwd: the postgres user may not be allowed into the caller's working directory.
    const { stdout } = await run(cmd, argv, { cwd: root, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  };

  let stopped = false;
  const postmasterPid = (): number | null => {
    const pidFile = join(dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return null;
    const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  };
  // If the test process dies without calling stop(), do not leave a server running behind it.
  const onExit = (): void => {
    const pid = postmasterPid();
    if (pid) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {}
    }
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  try {
    await pgBin('initdb', [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ]);
  } catch (error) {
    process.off('exit', onExit);
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  const port = await freePort();
  await appendFile(
    join(dataDir, 'postgresql.conf'),
    [
      '',
      `port = ${port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${root}'`,
      // fsync only matters when the OS crashes, which no test does. synchronous_commit must stay
      // on: a kill -9 of the postmaster would otherwise lose commits the API already confirmed.
      'fsync = off',
      'full_page_writes = off',
      'max_connections = 200',
      '',
    ].join('\n'),
  );
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;

  const startServer = async (): Promise<void> => {
    // After a kill -9 the orphaned backends may still hold the shared memory for a moment;
    // the postmaster refuses to start until they are gone, so try again briefly.
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await pgBin('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '30', 'start']);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(200);
      }
    }
    await waitUntilReady(url);
  };

  await startServer();

  return {
    url,
    port,
    dataDir,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => {});
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end().catch(() => {});
      }
      const dbUrl = new URL(url);
      dbUrl.pathname = `/${name}`;
      return dbUrl.toString();
    },
    async restartFast() {
      await pgBin('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '30', '-m', 'fast', 'restart']);
      await waitUntilReady(url);
    },
    async killPostmaster() {
      const pid = postmasterPid();
      if (!pid) throw new Error('throwaway PostgreSQL: no postmaster.pid, is it running?');
      process.kill(pid, 'SIGKILL');
      const deadline = Date.now() + 10_000;
      while (alive(pid) && Date.now() < deadline) await sleep(20);
    },
    async start() {
      await startServer();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', onExit);
      await pgBin('pg_ctl', ['-D', dataDir, '-w', '-m', 'immediate', 'stop']).catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  return { uid, gid };
}

async function waitUntilReady(url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A killed postmaster stays a zombie until something reaps it; it is dead for our purpose.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
