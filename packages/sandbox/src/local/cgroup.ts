/**
 * cgroup v1 helpers for the local sandbox provider. Each sandbox gets its own group in the
 * `memory`, `pids` and `cpu` hierarchies, so its limits hold across all its processes (rlimits are
 * per process) and everything it started can be found and killed by reading `cgroup.procs`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
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

const CFS_PERIOD_US = 100_000;
/** The kernel refuses a CFS quota below 1 ms. */
const MIN_CFS_QUOTA_US = 1000;

/**
 * Parses `/proc/self/cgroup` into controller → path. Only v1 lines name controllers; a line
 * may name several co-mounted ones (`cpu,cpuacct`).
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\d+:([^:]+):(\/.*)$/.exec(line);
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
    if (probe(parent, controller)) parents[controller] = parent;
  }
  return parents;
}

function probe(parent: string, controller: CgroupController): boolean {
  const dir = join(parent, `devart-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(dir);
  } catch {
    return false;
  }
  try {
    return existsSync(join(dir, CONTROL_FILE[controller]));
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
      await mkdir(dir);
      created[controller] = dir;
      await writeLimits(controller, dir, limits);
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
      const quota = Math.max(MIN_CFS_QUOTA_US, Math.round((limits.cpuMillicores * CFS_PERIOD_US) / 1000));
      await writeFile(join(dir, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
      await writeFile(join(dir, 'cpu.cfs_quota_us'), String(quota));
      return;
    }
  }
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
  return CGROUP_CONTROLLERS.flatMap((controller) => {
    const dir = groups[controller];
    return dir ? [join(dir, 'cgroup.procs')] : [];
  });
}
