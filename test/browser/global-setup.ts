import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { type DevartProcess, freePort, repoRoot, spawnDevart } from '../devart-process';
import { chromiumPath } from './chromium';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where `devart start` listens, e.g. http://127.0.0.1:41234. */
    baseUrl: string;
    /** The `Admin login: …/#token=<JWT>` link it printed. */
    loginLink: string;
    adminToken: string;
    supervisorToken: string;
    viewerToken: string;
    /** Whether the server runs shell tasks in bubblewrap sandboxes (its banner says so). */
    sandboxes: boolean;
  }
}

const exec = promisify(execFile);

/** Waits for `pattern` in what the process printed, or fails with its output. */
async function printed(devart: DevartProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(devart.stdout);
    if (match) return match;
    if (devart.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(
        `devart start never printed ${pattern}; stdout: ${devart.stdout}\nstderr: ${devart.stderr}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * One real `devart start` for every browser test, as a user runs it: embedded defaults (PGlite,
 * in-process broker, two demo agents, the demo workflow), a fresh data directory, a free port.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const indexHtml = join(repoRoot, 'apps/web/dist/index.html');
  if (!existsSync(indexHtml)) {
    throw new Error(
      'apps/web/dist/index.html is missing: build the console first with `npm run build:web` (npm ci does it)',
    );
  }
  const builtAt = statSync(indexHtml).mtimeMs;
  if (!existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: install Debian's chromium (apt-get install chromium)`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'devart-browser-'));
  // DEVART_PRINT_LOGIN_LINK=1: stdout is a pipe here, and the sign-in tests open the printed link.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DEVART_DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    DEVART_PRINT_LOGIN_LINK: '1',
  };
  // The embedded defaults whatever the caller's environment says, and a secret devart creates itself.
  delete env.DATABASE_URL;
  delete env.AMQP_URL;
  delete env.JWT_SECRET;
  delete env.JWT_JWKS_URL;
  const port = await freePort();
  const devart = spawnDevart(['start', '--port', String(port), '--host', '127.0.0.1'], env, {
    urlTimeoutMs: 120_000,
  });
  const stop = async () => {
    if (devart.child.exitCode === null) {
      const exited = new Promise((resolve) => devart.child.once('exit', resolve));
      devart.child.kill('SIGTERM');
      const timer = setTimeout(() => devart.child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
    // The server reads the files as pages ask for them: a build during the run explains odd failures.
    if (!existsSync(indexHtml) || statSync(indexHtml).mtimeMs !== builtAt) {
      console.warn('apps/web/dist was rebuilt while the browser tests ran: a failure may come from that.');
    }
  };
  try {
    const baseUrl = await devart.url;
    const loginLink = (await printed(devart, /Admin login:\s+(\S+)/, 30_000))[1]!;
    const token = async (role: string) =>
      (
        await exec(process.execPath, [join(repoRoot, 'bin/devart.mjs'), 'token', '--role', role], {
          env,
          cwd: repoRoot,
        })
      ).stdout.trim();
    project.provide('baseUrl', baseUrl);
    project.provide('loginLink', loginLink);
    project.provide('adminToken', new URL(loginLink).hash.replace('#token=', ''));
    project.provide('supervisorToken', await token('supervisor'));
    project.provide('viewerToken', await token('viewer'));
    project.provide('sandboxes', /Sandboxes:\s+local \(bubblewrap/.test(devart.stdout));
  } catch (error) {
    await stop();
    throw error;
  }
  return stop;
}
