/**
 * A local sandbox on disk: `<rootDir>/<id>/` holding `workspace/`, `hosts` and `sandbox.json`,
 * the record written last in provision, so its presence marks a whole sandbox.
 */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SandboxSpec } from '../provider';
import { errnoCode } from '../shared/process';
import type { SandboxCgroups } from './cgroup';

/** What `sandbox.json` holds. */
export interface SandboxRecord {
  id: string;
  spec: SandboxSpec;
  createdAt: string;
  expiresAt: string;
  cgroups: SandboxCgroups;
}

/** Local sandbox ids; anything else is never ours, which also keeps `..` out of paths. */
export const ID_PATTERN = /^sbx-[0-9a-f]{16,32}$/;

/** The name of a sandbox's group in every cgroup hierarchy. */
export function cgroupName(id: string): string {
  return `devart-${id}`;
}

export function remainingMs(record: SandboxRecord, nowMs: number): number {
  return Date.parse(record.expiresAt) - nowMs;
}

/** The record, `missing` when there is no such sandbox, `broken` when it is there but unreadable. */
export async function readRecord(dir: string, id: string): Promise<SandboxRecord | 'missing' | 'broken'> {
  try {
    const record = JSON.parse(await readFile(join(dir, 'sandbox.json'), 'utf8'));
    return isRecord(record, id) ? record : 'broken';
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') return 'broken';
    // A directory without its record is a provision that died half-way.
    return (await exists(dir)) ? 'broken' : 'missing';
  }
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
