/**
 * What the local provider needs from the host, checked by running it: bubblewrap able to create
 * the namespaces, and prlimit for the per-exec rlimits. Each check answers what to do when it
 * fails, since that text reaches the operator (start-up log, 503 detail).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { errnoCode } from '../shared/process';
import { NAMESPACE_ARGS } from './argv';

const execFileAsync = promisify(execFile);

/** Whether bubblewrap can run sandboxes here, and if not, what to do about it. */
export type BubblewrapStatus = { available: true; version: string } | { available: false; hint: string };

/**
 * Checks that bubblewrap is installed and can create the namespaces the provider uses.
 * @example await detectBubblewrap() // { available: true, version: '0.8.0' }
 */
export async function detectBubblewrap(bwrapPath = 'bwrap'): Promise<BubblewrapStatus> {
  let version: string;
  try {
    const { stdout } = await execFileAsync(bwrapPath, ['--version'], { timeout: 10_000 });
    version = stdout.trim().replace(/^bubblewrap\s+/, '');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT')
      return {
        available: false,
        hint: `bubblewrap (${bwrapPath}) is not installed: run \`apt-get install bubblewrap\``,
      };
    return { available: false, hint: `bubblewrap (${bwrapPath}) does not run: ${errorText(error)}` };
  }
  try {
    await execFileAsync(bwrapPath, [...NAMESPACE_ARGS, '--ro-bind', '/', '/', '--', 'true'], {
      timeout: 10_000,
    });
  } catch (error) {
    return {
      available: false,
      hint:
        `bubblewrap ${version} cannot create namespaces here (${errorText(error)}): allow user namespaces, ` +
        'e.g. `sysctl kernel.unprivileged_userns_clone=1`, or on Ubuntu 24.04 ' +
        '`sysctl kernel.apparmor_restrict_unprivileged_userns=0`',
    };
  }
  return { available: true, version };
}

/** prlimit applies the per-exec rlimits; undefined when it runs, else what to do about it. */
export async function detectPrlimit(): Promise<string | undefined> {
  try {
    await execFileAsync('prlimit', ['--version'], { timeout: 10_000 });
    return undefined;
  } catch (error) {
    return `prlimit does not run (${errorText(error)}): run \`apt-get install util-linux\``;
  }
}

/** A failed tool's own complaint (its stderr) says more than Node's "Command failed". */
function errorText(error: unknown): string {
  const stderr = (error as { stderr?: unknown }).stderr;
  if (typeof stderr === 'string' && stderr.trim() !== '') return stderr.trim();
  return error instanceof Error ? error.message : String(error);
}
