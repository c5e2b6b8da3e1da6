import type { ChildProcess } from 'node:child_process';

/**
 * SIGKILLs a pid, or a process group when `pid` is negative. A process that already exited
 * (ESRCH) is what the caller wanted, so no error is raised.
 */
export function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * SIGKILLs the process group of a child spawned with `detached: true`, i.e. it and everything
 * it started that stayed in its group.
 */
export function killProcessGroup(child: ChildProcess): void {
  // Once the child is reaped its group id may be reused by an unrelated process group.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  killQuietly(-child.pid);
}

/** The `code` of a Node system error (`ENOENT`, `EBUSY`), if it is one. */
export function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
