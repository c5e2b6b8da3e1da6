/**
 * cgroup helpers for the local sandbox provider. Each sandbox gets its own group in the v1
 * `memory`, `pids` and `cpu` hierarchies, or one group in a delegated cgroup v2 subtree, so its
 * limits hold across all its processes (rlimits are per process) and everything it started can be
 * found and killed by reading `cgroup.procs`. With v2 every controller maps to the same group.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, killQuietly } from '../shared/process';

/** The cgroup v1 controllers a sandbox is limited by. */
export type CgroupController = 'memory' | 'pids' | 'cpu';

export const CGROUP_CONTROLLERS: readonly CgroupController[] = ['memory', 'pids', 'cpu'];

/** For each usable controller, the directory new sandbox groups are created in. */
export type CgroupParents = Partial<Record<CgroupController, string>>;

/** For each controller that limits one sandbox, that sandbox's group directory. */
export type SandboxCgroups = Partial<Record<CgroupController, string>>;

/** What one sandbox's groups enforce. */
export interface CgroupLimits {
  memoryBytes: number;
  pids: number;
  /** CPU in millicores: 1000 = one core's worth of CFS quota per period. */
  cpuMillicores: number;
}

/** A file that only exists in a child group when the controller really works there. */
const CONTROL_FILE: Record<CgroupController, string> = {
  memory: 'memory.limit_in_bytes',
  pids: 'pids.max',
  cpu: 'cpu.cfs_quota_us',
};

/** The same, in a cgroup v2 group. */
const V2_CONTROL_FILE: Record<CgroupController, string> = {
  memory: 'memory.max',
  pids: 'pids.max',
  cpu: 'cpu.max',
};

const CFS_PERIOD_US = 100_000;
/** The kernel refuses a CFS quota below 1 ms. */
const MIN_CFS_QUOTA_US = 1000;

/**
 * Parses `/proc/self/cgroup` into controller → path. v1 lines name controllers, a line possibly
 * several co-mounted ones (`cpu,cpuacct`); the v2 line (`0::/path`) is kept under `''`.
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\d+:([^:]*):(\/.*)$/.exec(line);
    if (!match) continue;
    for (const controller of match[1]!.split(',')) paths.set(controller, match[2]!);
  }
  return paths;
}

/**
 * Finds, per controller, a parent directory where this process may create groups, by really
 * creating and removing a probe group (a writable-looking mount can still refuse mkdir).
 * Groups nest under this process's own group so limits set on it (a container's, a service's)
 * still apply to the sandboxes. Synchronous: it runs once when a provider is created.
 */
export function detectCgroupParents(
  cgroupRoot = '/sys/fs/cgroup',
  procCgroupFile = '/proc/self/cgroup',
): CgroupParents {
  let own: Map<string, string>;
  try {
    own = parseProcCgroup(readFileSync(procCgroupFile, 'utf8'));
  } catch {
    return {};
  }
  const parents: CgroupParents = {};
  for (const controller of CGROUP_CONTROLLERS) {
    const ownPath = own.get(controller);
    if (ownPath === undefined) continue;
    const parent = join(cgroupRoot, controller, ownPath);
    if (probe(parent, CONTROL_FILE[controller])) parents[controller] = parent;
  }
  if (Object.keys(parents).length > 0) return parents;
  const unified = own.get('');
  return unified === undefined ? {} : detectV2Parent(cgroupRoot, unified);
}

/** Whether a group is cgroup v2: only v2 groups have `cgroup.controllers`. */
function isV2(dir: string): boolean {
  return existsSync(join(dir, 'cgroup.controllers'));
}

/**
 * cgroup v2: this process's own group, when it is delegated to us (writable) on a pure v2 mount.
 * Controllers a child cannot have yet are enabled in its `cgroup.subtree_control`; the kernel
 * refuses that while the group holds processes itself ("no internal processes"), so this process
 * first moves into a leaf `devart-api` beside the sandboxes, as a systemd service with
 * `Delegate=yes` is expected to. Anything else in the group (another process) keeps it as it is.
 */
function detectV2Parent(cgroupRoot: string, ownPath: string): CgroupParents {
  const parent = join(cgroupRoot, ownPath);
  if (!isV2(cgroupRoot) || !isV2(parent)) return {};
  const missing = () => CGROUP_CONTROLLERS.filter((c) => !probe(parent, V2_CONTROL_FILE[c]));
  if (missing().length > 0) {
    try {
      const procs = readFileSync(join(parent, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
      if (procs.length === 1 && Number(procs[0]) === process.pid) {
        const leaf = join(parent, 'devart-api');
        if (!existsSync(leaf)) mkdirSync(leaf);
        writeFileSync(join(leaf, 'cgroup.procs'), String(process.pid));
      }
      for (const controller of missing())
        writeFileSync(join(parent, 'cgroup.subtree_control'), `+${controller}`);
    } catch {
      // Not ours to change: whatever probes below still works is used.
    }
  }
  const parents: CgroupParents = {};
  for (const controller of CGROUP_CONTROLLERS)
    if (probe(parent, V2_CONTROL_FILE[controller])) parents[controller] = parent;
  return parents;
}

function probe(parent: string, controlFile: string): boolean {
  const dir = join(parent, `devart-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(dir);
  } catch {
    return false;
  }
  try {
    return existsSync(join(dir, controlFile));
  } finally {
    try {
      rmdirSync(dir);
    } catch {
      // A probe group left behind is empty and harmless.
    }
  }
}

/** Creates the named group under every parent and sets its limits; all or nothing. */
export async function createCgroups(
  parents: CgroupParents,
  name: string,
  limits: CgroupLimits,
): Promise<SandboxCgroups> {
  const created: SandboxCgroups = {};
  try {
    for (const controller of CGROUP_CONTROLLERS) {
      const parent = parents[controller];
      if (!parent) continue;
      const dir = join(parent, name);
      // cgroup v2: one group for every controller, made once.
      if (!Object.values(created).includes(dir)) await mkdir(dir);
      created[controller] = dir;
      if (isV2(parent)) await writeV2Limits(controller, dir, limits);
      else await writeLimits(controller, dir, limits);
    }
  } catch (error) {
    await removeCgroups(Object.values(created));
    throw error;
  }
  return created;
}

async function writeLimits(controller: CgroupController, dir: string, limits: CgroupLimits): Promise<void> {
  switch (controller) {
    case 'memory': {
      await writeFile(join(dir, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // With swap accounting, the memsw limit stops a hog from swapping out instead of dying.
      const memsw = join(dir, 'memory.memsw.limit_in_bytes');
      if (existsSync(memsw)) await writeFile(memsw, String(limits.memoryBytes));
      return;
    }
    case 'pids':
      await writeFile(join(dir, 'pids.max'), String(limits.pids));
      return;
    case 'cpu': {
      const quota = cfsQuota(limits.cpuMillicores);
      await writeFile(join(dir, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
      await writeFile(join(dir, 'cpu.cfs_quota_us'), String(quota));
      return;
    }
  }
}

async function writeV2Limits(controller: CgroupController, dir: string, limits: CgroupLimits): Promise<void> {
  switch (controller) {
    case 'memory': {
      await writeFile(join(dir, 'memory.max'), String(limits.memoryBytes));
      // As memsw in v1: a hog dies at the limit instead of swapping.
      const swap = join(dir, 'memory.swap.max');
      if (existsSync(swap)) await writeFile(swap, '0');
      return;
    }
    case 'pids':
      await writeFile(join(dir, 'pids.max'), String(limits.pids));
      return;
    case 'cpu':
      await writeFile(join(dir, 'cpu.max'), `${cfsQuota(limits.cpuMillicores)} ${CFS_PERIOD_US}`);
      return;
  }
}

function cfsQuota(cpuMillicores: number): number {
  return Math.max(MIN_CFS_QUOTA_US, Math.round((cpuMillicores * CFS_PERIOD_US) / 1000));
}

/** The pids currently in a group; empty when the group is gone. */
export async function cgroupPids(dir: string): Promise<number[]> {
  try {
    const text = await readFile(join(dir, 'cgroup.procs'), 'utf8');
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map(Number);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
}

/**
 * SIGKILLs every process in a group until it stays empty. Repeats because a process may fork
 * between reading the list and the kill; the pids limit bounds how long that can go on.
 */
export async function killCgroup(dir: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await cgroupPids(dir);
    if (pids.length === 0) return;
    for (const pid of pids) killQuietly(pid);
    if (Date.now() > deadline) return;
    await sleep(10);
  }
}

/**
 * Kills what is left in each group and removes it. Idempotent: a group already gone is fine.
 * rmdir fails with EBUSY until the killed tasks have really exited, hence the retries.
 */
export async function removeCgroups(dirs: string[], timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await Promise.all(dirs.map((dir) => killCgroup(dir, timeoutMs)));
  for (const dir of dirs) {
    for (;;) {
      try {
        await rmdir(dir);
        break;
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') break;
        if (errnoCode(error) !== 'EBUSY' || Date.now() > deadline) throw error;
        await killCgroup(dir, 100);
        await sleep(10);
      }
    }
  }
}

/** The `cgroup.procs` files a process writes its pid to in order to join the groups. */
export function cgroupProcsFiles(groups: SandboxCgroups): string[] {
  const dirs = CGROUP_CONTROLLERS.flatMap((controller) => groups[controller] ?? []);
  return [...new Set(dirs)].map((dir) => join(dir, 'cgroup.procs'));
}
