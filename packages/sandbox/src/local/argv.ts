/**
 * The argv of one local exec, built as pure data: a host-side launcher that joins the sandbox's
 * cgroups, prlimit for the per-exec rlimits, then bwrap with the options that decide what the
 * command can see. Nothing here runs a process.
 */
import { lstatSync, readlinkSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BubblewrapFeatures } from './detect';
import type { SandboxRecord } from './record';

const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin';
const OPEN_FILES_LIMIT = 1024;

/** The sandbox's /etc/hosts, written into its directory at provision: it names only loopback. */
export const HOSTS_FILE = '127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n';

/** stderr prefix of the launcher when it cannot put itself into the sandbox's cgroups. */
export const CGROUP_JOIN_FAILED = 'devart-sandbox: cannot join cgroup';
/** Exit code of that launcher failure (as `env`/`timeout` use 125 for their own errors). */
export const LAUNCHER_FAILED = 125;

/**
 * Namespace flags. `--unshare-all` only *tries* the user and cgroup namespaces; naming them
 * makes bwrap fail instead of silently running with the host's. The network namespace is new
 * and empty (loopback only) either way.
 */
export const NAMESPACE_ARGS = ['--unshare-all', '--unshare-user', '--unshare-cgroup'];

/**
 * Top-level system directories: symlinks into /usr on merged-/usr systems (Debian 12), real
 * directories on older ones; recreated or bound read-only as they are on the host.
 */
const SYSTEM_DIRS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/**
 * The few /etc entries programs need to start (dynamic linker cache, alternatives symlinks),
 * name users and tell the time; not the rest of /etc, which holds host configuration and secrets.
 */
const ETC_ENTRIES = [
  '/etc/alternatives',
  '/etc/ld.so.cache',
  '/etc/passwd',
  '/etc/group',
  '/etc/nsswitch.conf',
  '/etc/localtime',
];

/**
 * The launcher runs on the host: it moves itself into the sandbox's cgroups (arguments up to
 * `--` are `cgroup.procs` files) and then execs the rest, so bwrap and everything it starts is
 * limited from the first instruction on.
 */
const LAUNCHER_SCRIPT = `while [ "$1" != -- ]; do echo $$ > "$1" || { echo "${CGROUP_JOIN_FAILED} $1" >&2; exit ${LAUNCHER_FAILED}; }; shift; done; shift; exec "$@"`;

/**
 * The descriptor bwrap reads the seccomp program from (`--seccomp`): the exec's fifth stdio pipe.
 * The launcher, prlimit, unshare and setpriv all pass inherited descriptors on.
 */
export const SECCOMP_FD = 4;

/**
 * The arguments of `/bin/sh` for one exec: launcher, prlimit, bwrap. bwrap's own options come
 * through fd 3 (see {@link sandboxArgs}), so env values never show in the host's `ps`.
 */
export function launcherArgv(parts: {
  cgroupProcsFiles: string[];
  rlimits: string[];
  /** What runs bwrap as another user (see ./user); empty to run it as the API's. */
  drop: string[];
  bwrapPath: string;
  command: string[];
}): string[] {
  return [
    '-c',
    LAUNCHER_SCRIPT,
    'devart-sandbox',
    ...parts.cgroupProcsFiles,
    '--',
    'prlimit',
    ...parts.rlimits,
    '--',
    ...parts.drop,
    parts.bwrapPath,
    '--args',
    '3',
    '--',
    ...parts.command,
  ];
}

/** The sandbox's whole environment: PATH and HOME, then the caller's (already checked). */
export function sandboxEnv(callerEnv: Record<string, string> = {}): Record<string, string> {
  return { PATH: SANDBOX_PATH, HOME: '/workspace', ...callerEnv };
}

/** Read-only system directories and the /etc entries in ETC_ENTRIES, as they exist on this host. */
export function systemMountArgs(): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const dir of SYSTEM_DIRS) {
    try {
      const stat = lstatSync(dir);
      if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
      else if (stat.isDirectory()) args.push('--ro-bind', dir, dir);
    } catch {
      // Not on this host (lib32, libx32 are multilib-only).
    }
  }
  for (const entry of ETC_ENTRIES) args.push('--ro-bind-try', entry, entry);
  return args;
}

/**
 * bwrap's options for one exec. The root is a fresh tmpfs made read-only at the end, so the
 * only writable places are /workspace and the private /tmp. Capabilities are dropped: the
 * command (uid 0 of its own user namespace unless `user` or ./user's drop says otherwise) can
 * neither mount nor override file modes.
 * With `--disable-userns` it cannot create further user namespaces either, which closes the
 * usual way to reach kernel code that only a namespace's root may call; with `--seccomp` the
 * syscalls ./seccomp denies answer EPERM.
 */
export function sandboxArgs(
  systemArgs: string[],
  dir: string,
  env: Record<string, string>,
  options: {
    features: BubblewrapFeatures;
    memoryMiB: number;
    /** The uid and gid inside the user namespace; unset = bwrap's default (the caller's). */
    user?: { uid: number; gid: number };
    /** Whether the seccomp program comes on SECCOMP_FD (see ./seccomp). */
    seccomp?: boolean;
  },
): string[] {
  return [
    ...NAMESPACE_ARGS,
    ...(options.user ? ['--uid', String(options.user.uid), '--gid', String(options.user.gid)] : []),
    ...(options.features.disableUserns ? ['--disable-userns'] : []),
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    ...(options.seccomp ? ['--seccomp', String(SECCOMP_FD)] : []),
    '--hostname',
    'sandbox',
    ...systemArgs,
    '--ro-bind',
    join(dir, 'hosts'),
    '/etc/hosts',
    '--bind',
    join(dir, 'workspace'),
    '/workspace',
    ...tmpfsSizeArgs(options.features, options.memoryMiB),
    '--tmpfs',
    '/tmp',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    ...devShmArgs(options.features, options.memoryMiB),
    // /dev holds device nodes only; read-only, nothing can be stored there (writes to the nodes
    // themselves, /dev/null included, are not writes to the filesystem and still work).
    '--remount-ro',
    '/dev',
    '--remount-ro',
    '/',
    '--chdir',
    '/workspace',
    '--clearenv',
    ...Object.entries(env).flatMap(([name, value]) => ['--setenv', name, value]),
  ];
}

/** The size of /dev/shm (POSIX shared memory, semaphores), at most the sandbox's memory. */
export const DEV_SHM_MIB = 64;

/**
 * /dev/shm as its own tmpfs of DEV_SHM_MIB: without `--size` it would be as large as the host's
 * RAM allows, so then it is left out and stays the empty directory of the read-only /dev
 * (shm_open fails with EROFS).
 */
function devShmArgs(features: BubblewrapFeatures, memoryMiB: number): string[] {
  if (!features.tmpfsSize) return [];
  return ['--size', String(Math.min(DEV_SHM_MIB, memoryMiB) * 1024 * 1024), '--tmpfs', '/dev/shm'];
}

/**
 * Caps /tmp at the sandbox's memory: tmpfs pages are memory, and without a memory cgroup
 * nothing else would count them.
 */
function tmpfsSizeArgs(features: BubblewrapFeatures, memoryMiB: number): string[] {
  return features.tmpfsSize ? ['--size', String(memoryMiB * 1024 * 1024)] : [];
}

/**
 * prlimit options for one exec. CPU seconds follow the timeout (a single thread cannot use
 * more; this stops multi-threaded burners early). Memory only when the sandbox has no memory
 * cgroup; `nproc` is given when the process count falls back to RLIMIT_NPROC.
 */
export function rlimitArgs(
  record: Pick<SandboxRecord, 'spec' | 'cgroups'>,
  limits: { timeoutMs: number; fileSizeLimit: number; nproc: number | undefined },
): string[] {
  const args = [
    `--cpu=${Math.ceil(limits.timeoutMs / 1000) + 1}`,
    `--fsize=${limits.fileSizeLimit}`,
    `--nofile=${OPEN_FILES_LIMIT}`,
    '--core=0',
  ];
  if (!record.cgroups.memory) args.push(`--as=${record.spec.memory * 1024 * 1024}`);
  if (limits.nproc !== undefined) args.push(`--nproc=${limits.nproc}`);
  return args;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The tasks (threads included) the kernel counts against this user's RLIMIT_NPROC now: the
 * limit is per host user, not per process tree, so a sandbox's share is added on top of it.
 * Only this pid namespace's tasks are visible; elsewhere the count is a lower bound.
 */
export async function userTaskCount(): Promise<number> {
  const uid = process.getuid?.();
  const entries = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
  const counts = await Promise.all(
    entries.map(async (entry) => {
      const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
      if (Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) !== uid) return 0;
      return Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 1);
    }),
  );
  return counts.reduce((sum, n) => sum + n, 0);
}
