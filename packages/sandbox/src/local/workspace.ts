/**
 * A local sandbox's workspace as its own tmpfs, mounted on the host at `<dir>/workspace`: it keeps
 * its files across execs (each exec is a new bwrap), the host sees them, and its size is the
 * mount's, so a sandbox cannot fill the disk that holds the data directory and pgdata. Only root
 * may mount; the provider probes once and reports `workspace: 'none'` otherwise.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Files per MiB of workspace: inodes cost kernel memory that `size` does not count. */
const INODES_PER_MIB = 256;

/** The mount options of a workspace of `bytes`: no devices, no set-uid programs. */
export function workspaceMountOptions(bytes: number): string {
  const mib = Math.max(1, Math.ceil(bytes / (1024 * 1024)));
  return `size=${bytes},nr_inodes=${Math.max(1024, mib * INODES_PER_MIB)},mode=0700,nodev,nosuid`;
}

/**
 * Whether this process can mount a tmpfs, found by mounting and unmounting one. Synchronous: it
 * runs once when a provider is created, like the cgroup probe.
 */
export function canMountWorkspaces(): boolean {
  if (process.getuid?.() !== 0) return false;
  let probe: string;
  try {
    probe = mkdtempSync(join(tmpdir(), 'devart-workspace-probe-'));
  } catch {
    return false;
  }
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'devart-probe', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    try {
      rmdirSync(probe);
    } catch {
      // Still mounted (umount failed): an empty 1 MiB tmpfs left in /tmp is harmless.
    }
  }
}

/** Mounts a tmpfs of `bytes` on `path` (an existing, empty directory). */
export async function mountWorkspace(path: string, bytes: number): Promise<void> {
  await execFileAsync(
    'mount',
    ['-t', 'tmpfs', '-o', workspaceMountOptions(bytes), 'devart-workspace', path],
    {
      timeout: 10_000,
    },
  );
}

/**
 * Unmounts the workspace if it is mounted, so removing the sandbox directory afterwards removes
 * the mount point and never recurses into a live mount. Idempotent.
 */
export async function unmountWorkspace(path: string): Promise<void> {
  while (await isMountPoint(path)) await execFileAsync('umount', [path], { timeout: 10_000 });
}

/** Whether `path` is a mount point of this mount namespace (per /proc/self/mountinfo). */
async function isMountPoint(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  // Field 5 is the mount point, with space, tab, newline and backslash written as octal escapes.
  return info
    .split('\n')
    .some(
      (line) =>
        line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(Number.parseInt(o, 8))) ===
        path,
    );
}
