import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const secretPath = (dataDir: string) => join(dataDir, 'jwt-secret');
export const pgliteDir = (dataDir: string) => join(dataDir, 'pgdata');
const lockPath = (dataDir: string) => join(dataDir, 'devart.pid');

/**
 * Creates a directory (and its missing parents) that only this user may enter (0700), and returns
 * its path: the data directory holds the JWT secret and the embedded database, whose files would
 * otherwise be readable by every local user under the usual umask. An existing directory keeps its
 * mode, since DEVART_DATA_DIR may name one the operator chose (even a home directory), unless
 * `tighten` says it is devart's own (pgdata), which is then set to 0700.
 * @example await openPglite({ dataDir: privateDir(pgliteDir(dataDir), { tighten: true }) })
 */
export function privateDir(path: string, { tighten = false }: { tighten?: boolean } = {}): string {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  if (tighten && (statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o700);
  return path;
}

/** The secret `devart start` signs and verifies with when JWT_SECRET is unset; created on first use. */
export function readOrCreateSecret(dataDir: string): string {
  const path = secretPath(dataDir);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  privateDir(dataDir);
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

export function readSecret(dataDir: string): string | undefined {
  const path = secretPath(dataDir);
  return existsSync(path) ? readFileSync(path, 'utf8').trim() : undefined;
}

/** Raised when another live process holds the embedded database. */
export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
}

/**
 * PGlite is single-process: a second process opening the same data directory would corrupt it.
 * A pid file keeps a second devart out and is reclaimed when its owner has died.
 */
export function lockDataDir(dataDir: string): () => void {
  privateDir(dataDir);
  const path = lockPath(dataDir);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number(readFileSync(path, 'utf8'));
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new DataDirInUseError(
          `The embedded database in ${dataDir} is in use by devart process ${pid}. ` +
            'Stop that process first, or use another DEVART_DATA_DIR, or set DATABASE_URL.',
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new DataDirInUseError(`Could not lock ${dataDir}.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
