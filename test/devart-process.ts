import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** The repository root, where `bin/devart.mjs` lives. */
export const repoRoot = join(import.meta.dirname, '..');

/** A loopback port that was free a moment ago; the caller binds it right after. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface DevartProcess {
  child: ChildProcess;
  /** What the process printed so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** The URL `devart start` printed ("running at …"); rejects if it exits or prints none in time. */
  url: Promise<string>;
}

/**
 * Runs `devart <args>` as a user would, in its own process, collecting what it prints.
 * @example
 * const api = spawnDevart(['start', '--port', '0'], { ...process.env, DATABASE_URL: url });
 * const base = await api.url;
 */
export function spawnDevart(
  args: string[],
  env: NodeJS.ProcessEnv,
  { urlTimeoutMs = 60_000 } = {},
): DevartProcess {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/devart.mjs'), ...args], { env, cwd: repoRoot });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed; stdout: ${stdout}`)), urlTimeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /running at (http:\/\/\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`devart ${args[0]} exited with ${code}: ${stderr}`));
    });
  });
  // A test that never awaits the URL (it expects an early exit) must not see an unhandled rejection.
  url.catch(() => {});
  return {
    child,
    url,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}
