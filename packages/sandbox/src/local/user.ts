/**
 * Who a sandbox's processes are when the API runs as root. Best: the unprivileged host user 65534
 * (nobody), so a process that escapes bwrap is nobody on the host too. bwrap then runs without
 * privileges and cannot open paths under the data directory (mode 0700), so the launcher first
 * enters a private mount namespace and binds the sandbox's directory onto a traversable empty
 * directory (recursively: the workspace is a mount of its own); only that namespace sees it.
 * Where that cannot work (no unprivileged user namespaces, say), bwrap runs as root with
 * `--uid 65534 --gid 65534`: not root inside, but the API's uid on the host.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NAMESPACE_ARGS } from './argv';

/** The uid and gid sandboxes run as when the API is root: nobody/nogroup on Debian. */
export const SANDBOX_UID = 65534;
export const SANDBOX_GID = 65534;

/**
 * `host`: processes are SANDBOX_UID on the host; `namespace`: SANDBOX_UID inside their user
 * namespace only (the API's uid outside); `api`: the API is not root, sandboxes are its uid.
 */
export type SandboxUser = 'host' | 'namespace' | 'api';

/** Binds $1 (the sandbox directory) on $2, then becomes SANDBOX_UID and execs the rest. */
const DROP_SCRIPT = `mount --rbind "$1" "$2" && shift 2 && exec setpriv --reuid=${SANDBOX_UID} --regid=${SANDBOX_GID} --clear-groups -- "$@"`;

/** The argv that runs the rest of the command line as SANDBOX_UID, seeing `sandboxDir` at `mountPoint`. */
export function dropArgs(sandboxDir: string, mountPoint: string): string[] {
  return [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    DROP_SCRIPT,
    'devart-drop',
    sandboxDir,
    mountPoint,
  ];
}

let sharedMountPoint: string | undefined;

/**
 * An empty directory anyone may traverse, used only as a mount point inside the launcher's
 * private mount namespace; one per process, its name unguessable, removed when the process exits.
 */
export function privateMountPoint(): string {
  if (!sharedMountPoint) {
    const dir = mkdtempSync(join(tmpdir(), 'devart-sandbox-mnt-'));
    chmodSync(dir, 0o755);
    process.once('exit', () => {
      try {
        rmdirSync(dir);
      } catch {
        // Already gone, or a mount still on it: an empty directory left in the temp dir.
      }
    });
    sharedMountPoint = dir;
  }
  return sharedMountPoint;
}

/**
 * Prepares a sandbox directory for SANDBOX_UID: the directory traversable (its parents stay as
 * they are: only the private bind reaches it), the workspace its own.
 */
export function handOver(sandboxDir: string): void {
  chmodSync(sandboxDir, 0o711);
  chownSync(join(sandboxDir, 'workspace'), SANDBOX_UID, SANDBOX_GID);
}

/**
 * Which SandboxUser this host allows, found by running the whole chain once on a scratch
 * sandbox directory. Synchronous: it runs once when a provider is created.
 */
export function detectSandboxUser(bwrapPath: string): SandboxUser {
  if (process.getuid?.() !== 0) return 'api';
  let scratch: string | undefined;
  try {
    scratch = mkdtempSync(join(tmpdir(), 'devart-user-probe-'));
    const dir = join(scratch, 'sbx');
    mkdirSync(join(dir, 'workspace'), { recursive: true });
    writeFileSync(join(dir, 'hosts'), '');
    handOver(dir);
    const mountPoint = privateMountPoint();
    execFileSync(
      dropArgs(dir, mountPoint)[0]!,
      [
        ...dropArgs(dir, mountPoint).slice(1),
        bwrapPath,
        ...NAMESPACE_ARGS,
        '--ro-bind',
        '/',
        '/',
        '--bind',
        join(mountPoint, 'workspace'),
        // A directory the host's root already has: bwrap cannot create one in a read-only root.
        '/tmp',
        '--',
        'touch',
        '/tmp/probe',
      ],
      { stdio: 'ignore', timeout: 10_000 },
    );
    return 'host';
  } catch {
    return 'namespace';
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}
