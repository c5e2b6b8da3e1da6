/**
 * The local sandbox provider: a sandbox is a directory on this host, and every exec runs one
 * command in a fresh bubblewrap container that sees only the host's system files (read-only),
 * the sandbox's workspace (read-write, at /workspace) and empty /tmp, /proc, /dev. It has no
 * network at all: an egress allowlist cannot be enforced here, so it is refused, never widened.
 *
 * Limits per exec: wall-clock timeout (kills the whole tree), RLIMIT_CPU, RLIMIT_FSIZE,
 * RLIMIT_NOFILE, no core dumps. Per sandbox, across all its execs: memory, process count and CPU
 * share through cgroup v1 groups when this process may create them. Without those groups:
 * - memory falls back to RLIMIT_AS, per process; it also counts address space that is never
 *   touched, so runtimes like Node or the JVM may refuse to start under a small limit;
 * - process count falls back to RLIMIT_NPROC, which the kernel counts per host user (all of that
 *   user's tasks, so it is set to the user's current count plus the limit) and never applies to
 *   root: as root without a pids cgroup the process count is not limited;
 * - CPU share is not limited.
 * The workspace is a tmpfs of its own (workspaceLimitBytes) when this process may mount, i.e.
 * runs as root; otherwise it lies on the host's disk and only the per-file size limit applies.
 * `provider.limits` says which applies, so the API can report it.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import {
  type ExecOptions,
  type ExecResult,
  OUTPUT_LIMIT_BYTES,
  type SandboxInfo,
  SandboxNotFoundError,
  type SandboxProvider,
  type SandboxSpec,
  SandboxSpecError,
  SandboxUnavailableError,
} from '../provider';
import { checkExecRequest } from '../shared/exec-request';
import { errnoCode, killProcessGroup } from '../shared/process';
import {
  HOSTS_FILE,
  isRoot,
  launcherArgv,
  rlimitArgs,
  sandboxArgs,
  sandboxEnv,
  systemMountArgs,
  userTaskCount,
} from './argv';
import {
  CGROUP_CONTROLLERS,
  cgroupProcsFiles,
  createCgroups,
  detectCgroupParents,
  removeCgroups,
} from './cgroup';
import { type BubblewrapFeatures, detectBubblewrap, detectPrlimit } from './detect';
import { runOnHost } from './exec';
import { cgroupName, ID_PATTERN, readRecord, remainingMs, type SandboxRecord } from './record';
import { seccompFilter } from './seccomp';
import {
  detectSandboxUser,
  dropArgs,
  handOver,
  privateMountPoint,
  SANDBOX_GID,
  SANDBOX_UID,
  type SandboxUser,
} from './user';
import { canMountWorkspaces, mountWorkspace, unmountWorkspace } from './workspace';

/** How the local provider enforces each per-sandbox limit on this host. */
export interface LocalLimits {
  memory: 'cgroup' | 'rlimit';
  /** `none`: root without a pids cgroup (RLIMIT_NPROC does not apply to root). */
  pids: 'cgroup' | 'rlimit' | 'none';
  /** CPU share (spec.cpu); without a cgroup only the per-process CPU-seconds limit applies. */
  cpu: 'cgroup' | 'none';
  /**
   * Workspace size: `tmpfs` when the workspace is its own tmpfs of workspaceLimitBytes (root can
   * mount), `none` when it shares the host's disk and only the per-file size limit applies.
   */
  workspace: 'tmpfs' | 'none';
  /**
   * Who sandboxed processes are when the API is root: `host` uid 65534 on the host, `namespace`
   * uid 65534 inside their user namespace only; `api` when the API is not root.
   */
  user: SandboxUser;
}

/**
 * The start-up warning for limits no cgroup enforces here, naming each and what stands in for
 * it; undefined when memory, process count and CPU all have their cgroup.
 * @example limitsWarning({ memory: 'rlimit', pids: 'none', cpu: 'none', … }) // 'no writable cgroup for memory, pids, cpu: …'
 */
export function limitsWarning(limits: LocalLimits): string | undefined {
  const missing = (['memory', 'pids', 'cpu'] as const).filter((limit) => limits[limit] !== 'cgroup');
  if (missing.length === 0) return undefined;
  const fallbacks = {
    memory: 'memory is capped per process only (RLIMIT_AS), not per sandbox',
    pids:
      limits.pids === 'none'
        ? 'the process count is NOT limited (RLIMIT_NPROC does not apply to root)'
        : 'the process count falls back to RLIMIT_NPROC, counted per host user',
    cpu: 'CPU share is NOT limited (only CPU seconds per process)',
  };
  return (
    `no writable cgroup for ${missing.join(', ')}: ${missing.map((limit) => fallbacks[limit]).join('; ')}. ` +
    'Give the API writable cgroup v1 hierarchies or a delegated cgroup v2 group (systemd Delegate=yes) for them'
  );
}

/** Options of createLocalProvider; only rootDir is required. */
export interface LocalProviderOptions {
  /** Where sandbox directories live. Only each sandbox's own `workspace` is visible inside it. */
  rootDir: string;
  /** The bwrap binary; default `bwrap` from PATH. */
  bwrapPath?: string;
  /** Cap on each of stdout and stderr per exec; default OUTPUT_LIMIT_BYTES. */
  outputLimitBytes?: number;
  /** Where the cgroup v1 hierarchies are mounted; default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Milliseconds since the epoch; TTLs are measured with it (tests move it). */
  now?: () => number;
  /** Processes and threads per sandbox across all its execs; default 256. */
  pidsLimit?: number;
  /** Wall-clock limit of an exec that names none; default 30 s. */
  defaultTimeoutMs?: number;
  /** Largest file a sandboxed process may write (RLIMIT_FSIZE); default 1 GiB. */
  fileSizeLimitBytes?: number;
  /** Size of each sandbox's workspace when it can be a tmpfs of its own; default 1 GiB. */
  workspaceLimitBytes?: number;
}

/** A SandboxProvider that also reports how its limits are enforced. */
export interface LocalSandboxProvider extends SandboxProvider {
  readonly name: 'local';
  readonly limits: LocalLimits;
}

/** One running exec, so terminate can kill it and wait for it. */
interface RunningExec {
  child: ChildProcess;
  closed: Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_PIDS_LIMIT = 256;
const DEFAULT_FILE_SIZE_LIMIT = 1024 ** 3;
const DEFAULT_WORKSPACE_LIMIT = 1024 ** 3;
const MIN_MEMORY_MIB = 16;
/** The longest delay setTimeout honours; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Creates the bubblewrap provider. Probes the cgroup hierarchies and the host's system layout
 * once, here; bwrap itself is checked on first use, so creating a provider never fails.
 */
export function createLocalProvider(options: LocalProviderOptions): LocalSandboxProvider {
  const rootDir = resolve(options.rootDir);
  const bwrapPath = options.bwrapPath ?? 'bwrap';
  const outputLimit = options.outputLimitBytes ?? OUTPUT_LIMIT_BYTES;
  const cgroupRoot = resolve(options.cgroupRoot ?? '/sys/fs/cgroup');
  const now = options.now ?? Date.now;
  const pidsLimit = options.pidsLimit ?? DEFAULT_PIDS_LIMIT;
  const defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const fileSizeLimit = options.fileSizeLimitBytes ?? DEFAULT_FILE_SIZE_LIMIT;
  const workspaceLimit = options.workspaceLimitBytes ?? DEFAULT_WORKSPACE_LIMIT;
  const cgroupParents = detectCgroupParents(cgroupRoot);
  const workspaceMounts = canMountWorkspaces();
  const sandboxUser = detectSandboxUser(bwrapPath);
  const systemArgs = systemMountArgs();
  // Built once; undefined on architectures it is not written for (start-up warns).
  const seccompProgram = seccompFilter();
  const running = new Map<string, Set<RunningExec>>();
  const terminating = new Set<string>();
  let bwrapFeatures: Promise<BubblewrapFeatures> | undefined;

  /**
   * Resolves to bwrap's optional features once bwrap and prlimit are known to work; a failure
   * is not cached, so installing them later works without a restart.
   */
  function ensureAvailable(): Promise<BubblewrapFeatures> {
    bwrapFeatures ??= Promise.all([detectBubblewrap(bwrapPath), detectPrlimit()]).then(
      ([status, prlimit]) => {
        if (!status.available) throw new SandboxUnavailableError(status.hint);
        if (prlimit) throw new SandboxUnavailableError(prlimit);
        return status.features;
      },
    );
    bwrapFeatures.catch(() => {
      bwrapFeatures = undefined;
    });
    return bwrapFeatures;
  }

  const sandboxDir = (id: string) => join(rootDir, id);

  /** The record of a sandbox that may run commands now, or SandboxNotFoundError. */
  async function liveRecord(id: string): Promise<SandboxRecord> {
    const record =
      ID_PATTERN.test(id) && !terminating.has(id) ? await readRecord(sandboxDir(id), id) : 'missing';
    if (typeof record === 'string') throw new SandboxNotFoundError(`sandbox ${id} does not exist`);
    if (remainingMs(record, now()) <= 0) throw new SandboxNotFoundError(`sandbox ${id} has expired`);
    return record;
  }

  /** The cgroups terminate may remove: recorded ones that really belong to this id, plus today's. */
  function cgroupDirsOf(id: string, record: SandboxRecord | undefined): string[] {
    const name = cgroupName(id);
    const recorded = Object.values(record?.cgroups ?? {}).filter(
      (dir): dir is string =>
        typeof dir === 'string' &&
        resolve(dir) === dir &&
        dir.startsWith(`${cgroupRoot}/`) &&
        basename(dir) === name,
    );
    // A provision that crashed before writing its record left groups only findable by name.
    const current = CGROUP_CONTROLLERS.flatMap((c) =>
      cgroupParents[c] ? [join(cgroupParents[c], name)] : [],
    );
    return [...new Set([...recorded, ...current])];
  }

  function track(id: string, child: ChildProcess): RunningExec {
    const entry: RunningExec = {
      child,
      closed: new Promise((done) => child.once('close', () => done())),
    };
    const set = running.get(id) ?? new Set();
    set.add(entry);
    running.set(id, set);
    entry.closed.then(() => {
      set.delete(entry);
      if (set.size === 0 && running.get(id) === set) running.delete(id);
    });
    return entry;
  }

  return {
    name: 'local',
    limits: {
      memory: cgroupParents.memory ? 'cgroup' : 'rlimit',
      pids: cgroupParents.pids ? 'cgroup' : isRoot() ? 'none' : 'rlimit',
      cpu: cgroupParents.cpu ? 'cgroup' : 'none',
      workspace: workspaceMounts ? 'tmpfs' : 'none',
      user: sandboxUser,
    },

    async provision(spec: SandboxSpec): Promise<SandboxInfo> {
      validateSpec(spec);
      await ensureAvailable();
      const id = `sbx-${randomBytes(8).toString('hex')}`;
      const dir = sandboxDir(id);
      await mkdir(rootDir, { recursive: true, mode: 0o700 });
      await mkdir(dir, { mode: 0o700 });
      try {
        await mkdir(join(dir, 'workspace'));
        if (workspaceMounts) await mountWorkspace(join(dir, 'workspace'), workspaceLimit);
        if (sandboxUser === 'host') handOver(dir);
        await writeFile(join(dir, 'hosts'), HOSTS_FILE);
        const cgroups = await createCgroups(cgroupParents, cgroupName(id), {
          memoryBytes: spec.memory * 1024 * 1024,
          pids: pidsLimit,
          cpuMillicores: spec.cpu,
        });
        const createdAt = now();
        const record: SandboxRecord = {
          id,
          spec,
          createdAt: new Date(createdAt).toISOString(),
          expiresAt: new Date(createdAt + spec.ttlSeconds * 1000).toISOString(),
          cgroups,
        };
        await writeFile(join(dir, 'sandbox.json'), `${JSON.stringify(record, null, 2)}\n`);
      } catch (error) {
        await removeCgroups(cgroupDirsOf(id, undefined)).catch(() => {});
        await unmountWorkspace(join(dir, 'workspace'));
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
      return { id, status: 'running' };
    },

    async get(id: string): Promise<SandboxInfo | undefined> {
      if (!ID_PATTERN.test(id)) return undefined;
      const record = await readRecord(sandboxDir(id), id);
      if (record === 'missing') return undefined;
      if (record === 'broken')
        return { id, status: 'failed', reason: 'sandbox.json is missing or unreadable' };
      if (remainingMs(record, now()) <= 0) return { id, status: 'terminated', reason: 'ttl' };
      return { id, status: 'running' };
    },

    async exec(id: string, command: string[], execOptions: ExecOptions = {}): Promise<ExecResult> {
      const record = await liveRecord(id);
      const timeoutOption = execOptions.timeoutMs ?? defaultTimeoutMs;
      checkExecRequest(command, { ...execOptions, timeoutMs: timeoutOption });
      const env = sandboxEnv(execOptions.env);
      const features = await ensureAvailable();
      const seccomp = features.seccomp ? seccompProgram : undefined;
      // The TTL is a hard lifetime: no command outlives its sandbox. setTimeout takes 31 bits.
      const timeoutMs = Math.min(timeoutOption, remainingMs(record, now()), MAX_TIMER_MS);
      // Run as nobody on the host, bwrap reaches the sandbox's directory only through the bind
      // its launcher makes in a private mount namespace.
      const seenAt = sandboxUser === 'host' ? privateMountPoint() : sandboxDir(id);
      const bwrapArgs = sandboxArgs(systemArgs, seenAt, env, {
        features,
        memoryMiB: record.spec.memory,
        user: sandboxUser === 'namespace' ? { uid: SANDBOX_UID, gid: SANDBOX_GID } : undefined,
        seccomp: seccomp !== undefined,
      });
      const nproc = record.cgroups.pids || isRoot() ? undefined : (await userTaskCount()) + pidsLimit;
      const rlimits = rlimitArgs(record, { timeoutMs, fileSizeLimit, nproc });
      // terminate may have started while we awaited; it would not see this exec.
      if (terminating.has(id)) throw new SandboxNotFoundError(`sandbox ${id} is being terminated`);
      return runOnHost({
        launcherArgv: launcherArgv({
          cgroupProcsFiles: cgroupProcsFiles(record.cgroups),
          rlimits,
          drop: sandboxUser === 'host' ? dropArgs(sandboxDir(id), seenAt) : [],
          bwrapPath,
          command,
        }),
        bwrapArgs,
        seccomp,
        stdin: execOptions.stdin,
        timeoutMs,
        outputLimit,
        onSpawn: (child) => track(id, child),
      });
    },

    async terminate(id: string): Promise<void> {
      if (!ID_PATTERN.test(id)) return;
      terminating.add(id);
      try {
        const execs = [...(running.get(id) ?? [])];
        // Each exec's group holds bwrap and its pid-namespace init, whose death ends the rest.
        for (const { child } of execs) killProcessGroup(child);
        const record = await readRecord(sandboxDir(id), id);
        await removeCgroups(cgroupDirsOf(id, typeof record === 'string' ? undefined : record));
        await Promise.all(execs.map(({ closed }) => closed));
        // Never recurse into a live mount: unmounting first also frees its memory at once.
        await unmountWorkspace(join(sandboxDir(id), 'workspace'));
        await rm(sandboxDir(id), { recursive: true, force: true });
      } finally {
        terminating.delete(id);
      }
    },

    async list(): Promise<string[]> {
      try {
        const entries = await readdir(rootDir, { withFileTypes: true });
        return entries.filter((e) => e.isDirectory() && ID_PATTERN.test(e.name)).map((e) => e.name);
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') return [];
        throw error;
      }
    },
  };
}

function validateSpec(spec: SandboxSpec): void {
  if (spec.egress !== 'none')
    throw new SandboxSpecError(
      'the local provider cannot enforce an egress allowlist; use egress "none" or the kubernetes provider',
      'egress',
    );
  if (!(Number.isFinite(spec.cpu) && spec.cpu > 0))
    throw new SandboxSpecError('cpu must be a positive number of millicores', 'cpu');
  if (!(Number.isInteger(spec.memory) && spec.memory >= MIN_MEMORY_MIB))
    throw new SandboxSpecError(`memory must be a whole number of MiB, at least ${MIN_MEMORY_MIB}`, 'memory');
  if (!(Number.isFinite(spec.ttlSeconds) && spec.ttlSeconds > 0))
    throw new SandboxSpecError('ttlSeconds must be positive', 'ttlSeconds');
}
