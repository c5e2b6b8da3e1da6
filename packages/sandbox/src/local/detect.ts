/**
 * What the local provider needs from the host, checked by running it: bubblewrap able to create
 * the namespaces, and prlimit for the per-exec rlimits. Each check answers what to do when it
 * fails, since that text reaches the operator (start-up log, 503 detail).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { errnoCode } from '../shared/process';
import { NAMESPACE_ARGS } from './argv';
import { seccompSupported } from './seccomp';

const execFileAsync = promisify(execFile);

/**
 * Options the provider uses only when this bwrap has them, found in its `--help` rather than
 * guessed from the version (distributions backport).
 */
export interface BubblewrapFeatures {
  /** `--disable-userns` (bubblewrap 0.8): sandboxed code cannot create user namespaces. */
  disableUserns: boolean;
  /** `--size` for `--tmpfs`: /tmp and /dev/shm get a size limit. */
  tmpfsSize: boolean;
  /** `--seccomp FD`: the command runs under the syscall filter of ./seccomp. */
  seccomp: boolean;
}

/** Whether bubblewrap can run sandboxes here, and if not, what to do about it. */
export type BubblewrapStatus =
  | { available: true; version: string; features: BubblewrapFeatures }
  | { available: false; hint: string };

/** Reads the features from the text of `bwrap --help`. */
export function parseBubblewrapFeatures(help: string): BubblewrapFeatures {
  return {
    disableUserns: /^\s*--disable-userns\b/m.test(help),
    tmpfsSize: /^\s*--size\b/m.test(help),
    seccomp: /^\s*--seccomp\b/m.test(help),
  };
}

/**
 * One start-up warning per protection this bwrap cannot give; empty when it has them all.
 * @example bubblewrapWarnings({ available: true, version: '0.6.2', features }) // ['bubblewrap 0.6.2 has no --disable-userns: …']
 */
export function bubblewrapWarnings(status: BubblewrapStatus, arch: string = process.arch): string[] {
  if (!status.available) return [];
  const warnings: string[] = [];
  if (!status.features.disableUserns)
    warnings.push(
      `bubblewrap ${status.version} has no --disable-userns: sandboxed code may create user namespaces ` +
        '(the usual way into namespace kernel bugs); install bubblewrap 0.8 or later',
    );
  if (!status.features.tmpfsSize)
    warnings.push(
      `bubblewrap ${status.version} has no --size: /tmp is a tmpfs without a size limit and /dev/shm is read-only; ` +
        'install bubblewrap 0.8 or later',
    );
  if (!status.features.seccomp)
    warnings.push(
      `bubblewrap ${status.version} has no --seccomp: sandboxed code runs without a syscall filter ` +
        '(keyctl, ptrace, bpf, perf_event_open … stay reachable); install bubblewrap 0.8 or later',
    );
  else if (!seccompSupported(arch))
    warnings.push(
      `no seccomp filter is built for this architecture (${arch}, only x86_64): sandboxed code runs ` +
        'without a syscall filter (keyctl, ptrace, bpf, perf_event_open … stay reachable)',
    );
  return warnings;
}

/**
 * Checks that bubblewrap is installed and can create the namespaces the provider uses, and
 * which optional protections it offers.
 * @example await detectBubblewrap() // { available: true, version: '0.8.0', features: { disableUserns: true, tmpfsSize: true, seccomp: true } }
 */
export async function detectBubblewrap(bwrapPath = 'bwrap'): Promise<BubblewrapStatus> {
  let version: string;
  let features: BubblewrapFeatures;
  try {
    const { stdout } = await execFileAsync(bwrapPath, ['--version'], { timeout: 10_000 });
    version = stdout.trim().replace(/^bubblewrap\s+/, '');
    const help = await execFileAsync(bwrapPath, ['--help'], { timeout: 10_000 });
    features = parseBubblewrapFeatures(help.stdout);
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
  return { available: true, version, features };
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
