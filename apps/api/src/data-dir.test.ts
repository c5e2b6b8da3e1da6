import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockDataDir, pgliteDir, privateDir, readOrCreateSecret, secretPath } from './data-dir';

const modeOf = (path: string) => statSync(path).mode & 0o777;

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'devart-data-dir-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe.skipIf(process.platform === 'win32')('the data directory', () => {
  it('is created 0700 with its missing parents, whether the secret or the lock comes first', () => {
    const bySecret = join(root, 'a', 'b', '.devart');
    readOrCreateSecret(bySecret);
    expect(modeOf(bySecret)).toBe(0o700);
    expect(modeOf(join(root, 'a'))).toBe(0o700);
    expect(modeOf(secretPath(bySecret))).toBe(0o600);

    const byLock = join(root, 'locked');
    const unlock = lockDataDir(byLock);
    expect(modeOf(byLock)).toBe(0o700);
    unlock();
  });

  it('keeps the mode of a data directory the operator made, and tightens pgdata, which is devart’s own', () => {
    const chosen = join(root, 'chosen');
    mkdirSync(chosen, { mode: 0o755 });
    mkdirSync(pgliteDir(chosen), { mode: 0o755 });
    lockDataDir(chosen)();
    expect(modeOf(chosen)).toBe(0o755);
    expect(privateDir(pgliteDir(chosen), { tighten: true })).toBe(pgliteDir(chosen));
    expect(modeOf(pgliteDir(chosen))).toBe(0o700);

    const fresh = join(root, 'fresh');
    privateDir(pgliteDir(fresh), { tighten: true });
    expect([modeOf(fresh), modeOf(pgliteDir(fresh))]).toEqual([0o700, 0o700]);
  });
});
