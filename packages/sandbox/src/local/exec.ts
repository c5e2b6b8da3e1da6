/**
 * Runs one local exec as a host process: the launcher argv (see ./argv) with bwrap's options on
 * fd 3, stdin fed, stdout and stderr capped, the wall-clock timeout enforced by killing the
 * whole process tree.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { type ExecResult, SandboxUnavailableError } from '../provider';
import { CappedOutput } from '../shared/capped-output';
import { killProcessGroup } from '../shared/process';
import { CGROUP_JOIN_FAILED, LAUNCHER_FAILED, SECCOMP_FD } from './argv';

/** How long to wait for stdout/stderr to close after the process exits or is killed. */
const CLOSE_GRACE_MS = 2000;

export interface HostExec {
  /** Arguments of `/bin/sh`, from launcherArgv. */
  launcherArgv: string[];
  /** bwrap's options, written NUL-separated to fd 3. */
  bwrapArgs: string[];
  /** The encoded seccomp program, written to SECCOMP_FD when bwrapArgs name it. */
  seccomp?: Buffer;
  stdin: string | undefined;
  timeoutMs: number;
  outputLimit: number;
  /** Called with the child as soon as it is spawned, so terminate can find and kill it. */
  onSpawn: (child: ChildProcess) => void;
}

/**
 * Spawns the launcher and collects its result. A launcher that cannot join the sandbox's
 * cgroups is the host's fault, not the command's: SandboxUnavailableError.
 */
export async function runOnHost(exec: HostExec): Promise<ExecResult> {
  const child = spawn('/bin/sh', exec.launcherArgv, {
    stdio: exec.seccomp ? ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe', 'pipe'],
    // Its own process group, so a timeout can kill bwrap and its init in one call.
    detached: true,
    // Only what the launcher needs: the caller's env goes into the sandbox, never here.
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  exec.onSpawn(child);
  (child.stdio[3] as Writable).on('error', () => {});
  (child.stdio[3] as Writable).end(`${exec.bwrapArgs.join('\0')}\0`);
  if (exec.seccomp) {
    (child.stdio[SECCOMP_FD] as Writable).on('error', () => {});
    (child.stdio[SECCOMP_FD] as Writable).end(exec.seccomp);
  }
  const result = await collect(child, exec);
  if (result.exitCode === LAUNCHER_FAILED && result.stderr.startsWith(CGROUP_JOIN_FAILED))
    throw new SandboxUnavailableError(result.stderr.trim());
  return result;
}

/** Feeds stdin, collects capped output and enforces the wall-clock timeout. */
async function collect(
  child: ChildProcess,
  options: { timeoutMs: number; stdin: string | undefined; outputLimit: number },
): Promise<ExecResult> {
  const started = performance.now();
  const stdout = new CappedOutput(options.outputLimit);
  const stderr = new CappedOutput(options.outputLimit);
  (child.stdout as Readable).on('data', (chunk: Buffer) => stdout.append(chunk));
  (child.stderr as Readable).on('data', (chunk: Buffer) => stderr.append(chunk));
  // EPIPE when the command exits without reading its input is not an error of the exec.
  (child.stdin as Writable).on('error', () => {});
  (child.stdin as Writable).end(options.stdin ?? '');

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // The launcher's group holds bwrap and its pid-namespace init; when that init dies the
    // kernel kills every process in the namespace, so nothing of the exec survives.
    killProcessGroup(child);
  }, options.timeoutMs);
  try {
    const { code, signal } = await waitForClose(child);
    return {
      exitCode: timedOut ? 124 : exitCodeOf(code, signal),
      stdout: stdout.text(),
      stderr: stderr.text(),
      truncated: stdout.truncated || stderr.truncated,
      timedOut,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits for exit and for stdout/stderr to close; if something still holds the pipes open
 * after the exit, they are destroyed after a grace period rather than waited on forever.
 */
function waitForClose(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((done, fail) => {
    child.once('error', (error) =>
      fail(new SandboxUnavailableError(`cannot start the sandbox launcher: ${error.message}`)),
    );
    child.once('exit', () => {
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, CLOSE_GRACE_MS).unref();
    });
    child.once('close', (code, signal) => done({ code, signal }));
  });
}

/** A shell's convention: death by signal N is 128+N. */
function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal) return 128 + (osConstants.signals[signal] ?? 0);
  return code ?? 1;
}
