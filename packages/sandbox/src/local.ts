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
 * `provider.limits` says which applies, so the API can report it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync, readlinkSync } from 'node:fs';
import { access, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import {
  CGROUP_CONTROLLERS,
  cgroupProcsFiles,
  createCgroups,
  detectCgroupParents,
  removeCgroups,
  type SandboxCgroups,
} from './cgroup';
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
} from './provider';

const execFileAsync = promisify(execFile);

/** Whether bubblewrap can run sandboxes here, and if not, what to do about it. */
export type BubblewrapStatus = { available: true; version: string } | { available: false; hint: string };

/** How the local provider enforces each per-sandbox limit on this host. */
export interface LocalLimits {
  memory: 'cgroup' | 'rlimit';
  /** `none`: root without a pids cgroup (RLIMIT_NPROC does not apply to root). */
  pids: 'cgroup' | 'rlimit' | 'none';
  /** CPU share (spec.cpu); without a cgroup only the per-process CPU-seconds limit applies. */
  cpu: 'cgroup' | 'none';
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
}

/** A SandboxProvider that also reports how its limits are enforced. */
export interface LocalSandboxProvider extends SandboxProvider {
  readonly name: 'local';
  readonly limits: LocalLimits;
}

/** What `sandbox.json` holds; written last in provision, so its presence marks a whole sandbox. */
interface SandboxRecord {
  id: string;
  spec: SandboxSpec;
  createdAt: string;
  expiresAt: string;
  cgroups: SandboxCgroups;
}

/** One running exec, so terminate can kill it and wait for it. */
interface RunningExec {
  child: ChildProcess;
  closed: Promise<void>;
}

const ID_PATTERN = /^sbx-[0-9a-f]{16,32}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_PIDS_LIMIT = 256;
const DEFAULT_FILE_SIZE_LIMIT = 1024 ** 3;
const OPEN_FILES_LIMIT = 1024;
const MIN_MEMORY_MIB = 16;
/** The longest delay setTimeout honours; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin';
/** stderr prefix of the launcher when it cannot put itself into the sandbox's cgroups. */
const CGROUP_JOIN_FAILED = 'devart-sandbox: cannot join cgroup';
/** Exit code of that launcher failure (as `env`/`timeout` use 125 for their own errors). */
const LAUNCHER_FAILED = 125;
/** How long to wait for stdout/stderr to close after the process exits or is killed. */
const CLOSE_GRACE_MS = 2000;
const HOSTS_FILE = '127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n';

/**
 * Namespace flags. `--unshare-all` only *tries* the user and cgroup namespaces; naming them
 * makes bwrap fail instead of silently running with the host's. The network namespace is new
 * and empty (loopback only) either way.
 */
const NAMESPACE_ARGS = ['--unshare-all', '--unshare-user', '--unshare-cgroup'];

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
async function detectPrlimit(): Promise<string | undefined> {
  try {
    await execFileAsync('prlimit', ['--version'], { timeout: 10_000 });
    return undefined;
  } catch (error) {
    return `prlimit does not run (${errorText(error)}): run \`apt-get install util-linux\``;
  }
}

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
  const cgroupParents = detectCgroupParents(cgroupRoot);
  const systemArgs = systemMountArgs();
  const running = new Map<string, Set<RunningExec>>();
  const terminating = new Set<string>();
  let bwrapVersion: Promise<string> | undefined;

  /**
   * Resolves to bwrap's version once bwrap and prlimit are known to work; a failure is not
   * cached, so installing them later works without a restart.
   */
  function ensureAvailable(): Promise<string> {
    bwrapVersion ??= Promise.all([detectBubblewrap(bwrapPath), detectPrlimit()]).then(([status, prlimit]) => {
      if (!status.available) throw new SandboxUnavailableError(status.hint);
      if (prlimit) throw new SandboxUnavailableError(prlimit);
      return status.version;
    });
    bwrapVersion.catch(() => {
      bwrapVersion = undefined;
    });
    return bwrapVersion;
  }

  const sandboxDir = (id: string) => join(rootDir, id);

  async function readRecord(id: string): Promise<SandboxRecord | 'missing' | 'broken'> {
    try {
      const record = JSON.parse(await readFile(join(sandboxDir(id), 'sandbox.json'), 'utf8'));
      return isRecord(record, id) ? record : 'broken';
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') return 'broken';
      // A directory without its record is a provision that died half-way.
      return (await exists(sandboxDir(id))) ? 'broken' : 'missing';
    }
  }

  /** The record of a sandbox that may run commands now, or SandboxNotFoundError. */
  async function liveRecord(id: string): Promise<SandboxRecord> {
    const record = ID_PATTERN.test(id) && !terminating.has(id) ? await readRecord(id) : 'missing';
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
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
      return { id, status: 'running' };
    },

    async get(id: string): Promise<SandboxInfo | undefined> {
      if (!ID_PATTERN.test(id)) return undefined;
      const record = await readRecord(id);
      if (record === 'missing') return undefined;
      if (record === 'broken')
        return { id, status: 'failed', reason: 'sandbox.json is missing or unreadable' };
      if (remainingMs(record, now()) <= 0) return { id, status: 'terminated', reason: 'ttl' };
      return { id, status: 'running' };
    },

    async exec(id: string, command: string[], execOptions: ExecOptions = {}): Promise<ExecResult> {
      const record = await liveRecord(id);
      validateCommand(command);
      const env = sandboxEnv(execOptions.env);
      const requested = execOptions.timeoutMs ?? defaultTimeoutMs;
      if (!(requested > 0)) throw new SandboxSpecError('timeoutMs must be positive', 'timeoutMs');
      const version = await ensureAvailable();
      // The TTL is a hard lifetime: no command outlives its sandbox. setTimeout takes 31 bits.
      const timeoutMs = Math.min(requested, remainingMs(record, now()), MAX_TIMER_MS);
      const dir = sandboxDir(id);
      const bwrapArgs = sandboxArgs(systemArgs, dir, env, tmpfsSizeArgs(version, record.spec.memory));
      const nproc = record.cgroups.pids || isRoot() ? undefined : (await userTaskCount()) + pidsLimit;
      const rlimits = rlimitArgs(record, { timeoutMs, fileSizeLimit, nproc });
      // terminate may have started while we awaited; it would not see this exec.
      if (terminating.has(id)) throw new SandboxNotFoundError(`sandbox ${id} is being terminated`);
      const child = spawn(
        '/bin/sh',
        [
          '-c',
          LAUNCHER_SCRIPT,
          'devart-sandbox',
          ...cgroupProcsFiles(record.cgroups),
          '--',
          'prlimit',
          ...rlimits,
          '--',
          bwrapPath,
          // Options come through fd 3, so env values never show in the host's `ps`.
          '--args',
          '3',
          '--',
          ...command,
        ],
        {
          stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
          // Its own process group, so a timeout can kill bwrap and its init in one call.
          detached: true,
          // Only what the launcher needs: the caller's env goes into the sandbox, never here.
          env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
        },
      );
      track(id, child);
      (child.stdio[3] as Writable).on('error', () => {});
      (child.stdio[3] as Writable).end(`${bwrapArgs.join('\0')}\0`);
      const result = await collect(child, { timeoutMs, stdin: execOptions.stdin, outputLimit });
      if (result.exitCode === LAUNCHER_FAILED && result.stderr.startsWith(CGROUP_JOIN_FAILED))
        throw new SandboxUnavailableError(result.stderr.trim());
      return result;
    },

    async terminate(id: string): Promise<void> {
      if (!ID_PATTERN.test(id)) return;
      terminating.add(id);
      try {
        const execs = [...(running.get(id) ?? [])];
        for (const { child } of execs) killTree(child);
        const record = await readRecord(id);
        await removeCgroups(cgroupDirsOf(id, typeof record === 'string' ? undefined : record));
        await Promise.all(execs.map(({ closed }) => closed));
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

function validateCommand(command: string[]): void {
  if (!Array.isArray(command) || command.length === 0)
    throw new SandboxSpecError('command must name a program', 'command');
  for (const arg of command)
    if (typeof arg !== 'string' || arg.includes('\0'))
      throw new SandboxSpecError('command arguments must be strings without NUL', 'command');
}

/**
 * The sandbox's whole environment: PATH and HOME, then the caller's. Names are checked and NUL
 * refused because bwrap reads its options NUL-separated: a NUL would smuggle in an option.
 */
function sandboxEnv(callerEnv: Record<string, string> = {}): Record<string, string> {
  for (const [name, value] of Object.entries(callerEnv)) {
    if (!ENV_NAME.test(name)) throw new SandboxSpecError(`invalid environment variable name: ${name}`, 'env');
    if (typeof value !== 'string' || value.includes('\0'))
      throw new SandboxSpecError(`environment variable ${name} must be a string without NUL`, 'env');
  }
  return { PATH: SANDBOX_PATH, HOME: '/workspace', ...callerEnv };
}

/** Read-only system directories and the /etc entries in ETC_ENTRIES, as they exist on this host. */
function systemMountArgs(): string[] {
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
 * command runs as uid 0 of its own user namespace but can neither mount nor override file modes.
 */
function sandboxArgs(
  systemArgs: string[],
  dir: string,
  env: Record<string, string>,
  tmpfsSize: string[],
): string[] {
  return [
    ...NAMESPACE_ARGS,
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    '--hostname',
    'sandbox',
    ...systemArgs,
    '--ro-bind',
    join(dir, 'hosts'),
    '/etc/hosts',
    '--bind',
    join(dir, 'workspace'),
    '/workspace',
    ...tmpfsSize,
    '--tmpfs',
    '/tmp',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--remount-ro',
    '/',
    '--chdir',
    '/workspace',
    '--clearenv',
    ...Object.entries(env).flatMap(([name, value]) => ['--setenv', name, value]),
  ];
}

/**
 * Caps /tmp at the sandbox's memory: tmpfs pages are memory, and without a memory cgroup
 * nothing else would count them. `--size` exists since bwrap 0.7.
 */
function tmpfsSizeArgs(version: string, memoryMiB: number): string[] {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 0 || minor >= 7 ? ['--size', String(memoryMiB * 1024 * 1024)] : [];
}

/**
 * prlimit options for one exec. CPU seconds follow the timeout (a single thread cannot use
 * more; this stops multi-threaded burners early). Memory only when the sandbox has no memory
 * cgroup; `nproc` is given when the process count falls back to RLIMIT_NPROC.
 */
function rlimitArgs(
  record: SandboxRecord,
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

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The tasks (threads included) the kernel counts against this user's RLIMIT_NPROC now: the
 * limit is per host user, not per process tree, so a sandbox's share is added on top of it.
 * Only this pid namespace's tasks are visible; elsewhere the count is a lower bound.
 */
async function userTaskCount(): Promise<number> {
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

/**
 * Feeds stdin, collects capped output and enforces the wall-clock timeout. Output past the cap
 * is read and dropped, so a chatty process neither blocks on a full pipe nor fills our memory.
 */
async function collect(
  child: ChildProcess,
  options: { timeoutMs: number; stdin: string | undefined; outputLimit: number },
): Promise<ExecResult> {
  const started = performance.now();
  const stdout = new CappedOutput(options.outputLimit);
  const stderr = new CappedOutput(options.outputLimit);
  (child.stdout as Readable).on('data', (chunk: Buffer) => stdout.push(chunk));
  (child.stderr as Readable).on('data', (chunk: Buffer) => stderr.push(chunk));
  // EPIPE when the command exits without reading its input is not an error of the exec.
  (child.stdin as Writable).on('error', () => {});
  (child.stdin as Writable).end(options.stdin ?? '');

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killTree(child);
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

/**
 * SIGKILLs the launcher's process group: bwrap and its pid-namespace init. When that init
 * dies the kernel kills every process in the namespace, so nothing of the exec survives.
 */
function killTree(child: ChildProcess): void {
  // Once bwrap is reaped its group id may be reused by an unrelated process group.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  killQuietly(-child.pid);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal) return 128 + (osConstants.signals[signal] ?? 0);
  return code ?? 1;
}

/** Keeps the first `limit` bytes of a stream and notes whether anything was dropped. */
class CappedOutput {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.size += kept.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function cgroupName(id: string): string {
  return `devart-${id}`;
}

function remainingMs(record: SandboxRecord, nowMs: number): number {
  return Date.parse(record.expiresAt) - nowMs;
}

function isRecord(value: unknown, id: string): value is SandboxRecord {
  const record = value as Partial<SandboxRecord> | null;
  return (
    typeof record === 'object' &&
    record !== null &&
    record.id === id &&
    typeof record.spec === 'object' &&
    typeof record.expiresAt === 'string' &&
    !Number.isNaN(Date.parse(record.expiresAt)) &&
    typeof record.cgroups === 'object' &&
    record.cgroups !== null
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function errorText(error: unknown): string {
  const stderr = (error as { stderr?: unknown }).stderr;
  if (typeof stderr === 'string' && stderr.trim() !== '') return stderr.trim();
  return error instanceof Error ? error.message : String(error);
}
