import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxNotFoundError, type SandboxSpec, SandboxSpecError } from '../provider';
import { DEV_SHM_MIB } from './argv';
import { cgroupPids, cgroupProcsFiles, createCgroups, parseProcCgroup } from './cgroup';
import { bubblewrapWarnings, detectBubblewrap, parseBubblewrapFeatures } from './detect';
import { createLocalProvider, type LocalSandboxProvider, limitsWarning } from './provider';

const execFileAsync = promisify(execFile);
const bwrap = await detectBubblewrap();
const spec: SandboxSpec = {
  taskId: 'task-local-test',
  cpu: 1000,
  memory: 256,
  ttlSeconds: 600,
  egress: 'none',
};
const OUTPUT_LIMIT = 64 * 1024;
const PIDS_LIMIT = 64;
/** How this host enforces limits; tests of cgroup-only behaviour skip without cgroups. */
const hostLimits = createLocalProvider({ rootDir: tmpdir() }).limits;

/** Host pids whose command line contains `marker`: what a sandbox left running. */
async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push(Number(entry));
  }
  return found;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

/** A fractional sleep length no other process on the host has in its argv. */
function uniqueSleep(): string {
  return `${900 + Math.floor(Math.random() * 99)}.${randomBytes(4).readUInt32BE()}`;
}

async function sandboxRecord(rootDir: string, id: string) {
  return JSON.parse(await readFile(join(rootDir, id, 'sandbox.json'), 'utf8'));
}

describe('detectBubblewrap', () => {
  it('reports the version when bwrap runs, and how to install it when it is missing', async () => {
    if (bwrap.available) expect(bwrap.version).toMatch(/^\d+\.\d+/);
    const missing = await detectBubblewrap('/nonexistent/bwrap');
    expect(missing.available).toBe(false);
    if (!missing.available) expect(missing.hint).toContain('apt-get install bubblewrap');
  });
});

describe('bubblewrap features', () => {
  it('are read from --help, and each missing one is a start-up warning naming it', () => {
    expect(
      parseBubblewrapFeatures(
        '    --disable-userns   Disable …\n    --size BYTES   Set size …\n    --seccomp FD   Load …\n',
      ),
    ).toEqual({
      disableUserns: true,
      tmpfsSize: true,
      seccomp: true,
    });
    const old = { available: true as const, version: '0.4.1', features: parseBubblewrapFeatures('') };
    const warnings = bubblewrapWarnings(old);
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatch(/^bubblewrap 0\.4\.1 has no --disable-userns: .*user namespaces/);
    expect(warnings[1]).toMatch(/^bubblewrap 0\.4\.1 has no --size: /);
    expect(warnings[2]).toMatch(/^bubblewrap 0\.4\.1 has no --seccomp: .*without a syscall filter/);
    // A bwrap with --seccomp on an architecture the filter is not written for.
    const arm = {
      available: true as const,
      version: '0.8.0',
      features: parseBubblewrapFeatures('  --seccomp FD\n'),
    };
    expect(bubblewrapWarnings(arm, 'arm64').at(-1)).toMatch(
      /^no seccomp filter is built for this architecture \(arm64/,
    );
    if (bwrap.available) expect(bubblewrapWarnings(bwrap)).toEqual([]);
  });
});

/**
 * A bwrap that claims to be 0.6 and hides --disable-userns and --size from its help: what an
 * older distribution ships. It hides --seccomp too, so the filter's fallback (none) runs here.
 * Everything else goes to the real one.
 */
async function olderBwrap(dir: string): Promise<string> {
  const path = join(dir, 'bwrap-0.6');
  await writeFile(
    path,
    `#!/bin/sh
case "$1" in
  --version) echo "bubblewrap 0.6.0"; exit 0 ;;
  --help) bwrap --help | grep -v -e --disable-userns -e --size -e --seccomp; exit 0 ;;
esac
exec bwrap "$@"
`,
  );
  await chmod(path, 0o755);
  return path;
}

describe('cgroup v2', () => {
  it('reads the unified line of /proc/self/cgroup beside the v1 ones', () => {
    const paths = parseProcCgroup('4:memory:/a\n2:cpu,cpuacct:/b\n0::/system.slice/devart.service\n');
    expect(Object.fromEntries(paths)).toEqual({
      memory: '/a',
      cpu: '/b',
      cpuacct: '/b',
      '': '/system.slice/devart.service',
    });
  });

  it('writes memory.max, pids.max and cpu.max into one group, joined through one cgroup.procs', async () => {
    // A stand-in for a delegated v2 group (a real one is not writable on this host): the kernel's
    // files are plain files here, and only the v2 marker cgroup.controllers matters.
    const parent = await mkdtemp(join(tmpdir(), 'devart-cgroup2-'));
    try {
      await writeFile(join(parent, 'cgroup.controllers'), 'memory pids cpu\n');
      const groups = await createCgroups({ memory: parent, pids: parent, cpu: parent }, 'devart-sbx-1', {
        memoryBytes: 64 * 1024 * 1024,
        pids: 32,
        cpuMillicores: 250,
      });
      const dir = join(parent, 'devart-sbx-1');
      expect(groups).toEqual({ memory: dir, pids: dir, cpu: dir });
      expect(await readFile(join(dir, 'memory.max'), 'utf8')).toBe(String(64 * 1024 * 1024));
      expect(await readFile(join(dir, 'pids.max'), 'utf8')).toBe('32');
      expect(await readFile(join(dir, 'cpu.max'), 'utf8')).toBe('25000 100000');
      expect(cgroupProcsFiles(groups)).toEqual([join(dir, 'cgroup.procs')]);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});

describe('the start-up warning about cgroups', () => {
  it('names each limit no cgroup enforces and what stands in for it', async () => {
    // A cgroup root with no hierarchies in it: what a host without writable cgroups looks like.
    const empty = await mkdtemp(join(tmpdir(), 'devart-no-cgroups-'));
    try {
      const limits = createLocalProvider({ rootDir: empty, cgroupRoot: empty }).limits;
      expect([limits.memory, limits.cpu]).toEqual(['rlimit', 'none']);
      const warning = limitsWarning(limits);
      expect(warning).toMatch(/^no writable cgroup for memory, pids, cpu: /);
      expect(warning).toContain('RLIMIT_AS');
      expect(warning).toContain('CPU share is NOT limited');
      expect(warning).toContain(
        process.getuid?.() === 0 ? 'process count is NOT limited' : 'falls back to RLIMIT_NPROC',
      );
      expect(limitsWarning({ ...limits, memory: 'cgroup', pids: 'cgroup' })).toMatch(
        /^no writable cgroup for cpu: CPU share is NOT limited/,
      );
      expect(limitsWarning({ ...limits, memory: 'cgroup', pids: 'cgroup', cpu: 'cgroup' })).toBeUndefined();
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!bwrap.available)('local (bubblewrap) provider', () => {
  let rootDir: string;
  let dataDir: string;
  let provider: LocalSandboxProvider;
  let id: string;

  beforeAll(async () => {
    rootDir = await mkdtemp(join(tmpdir(), 'devart-local-sandboxes-'));
    // Stands in for DEVART_DATA_DIR: a host directory next to, not under, the sandboxes.
    dataDir = await mkdtemp(join(tmpdir(), 'devart-local-data-'));
    await writeFile(join(dataDir, 'secret'), 'api-secret-value');
    provider = createLocalProvider({
      rootDir,
      outputLimitBytes: OUTPUT_LIMIT,
      pidsLimit: PIDS_LIMIT,
      fileSizeLimitBytes: 1024 * 1024,
    });
    ({ id } = await provider.provision(spec));
  });

  afterAll(async () => {
    for (const sandbox of await provider.list()) await provider.terminate(sandbox);
    await rm(rootDir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  });

  describe('lifecycle', () => {
    it('provisions a running sandbox with a workspace and a record of its spec and lifetime', async () => {
      const createdAt = Date.parse('2030-01-01T00:00:00Z');
      const clocked = createLocalProvider({ rootDir, now: () => createdAt });
      const { id: fresh, status } = await clocked.provision(spec);
      expect(fresh).toMatch(/^sbx-[0-9a-f]{16}$/);
      expect(status).toBe('running');
      expect(existsSync(join(rootDir, fresh, 'workspace'))).toBe(true);
      expect(await sandboxRecord(rootDir, fresh)).toMatchObject({
        spec,
        createdAt: '2030-01-01T00:00:00.000Z',
        expiresAt: '2030-01-01T00:10:00.000Z',
      });
      expect(await clocked.get(fresh)).toEqual({ id: fresh, status: 'running' });
      expect(await provider.list()).toEqual(expect.arrayContaining([id, fresh]));
      await clocked.terminate(fresh);
    });

    it('sets the cgroup limits from the spec when cgroups are usable', async () => {
      const groups = (await sandboxRecord(rootDir, id)).cgroups;
      if (provider.limits.memory === 'cgroup')
        expect(await readFile(join(groups.memory, 'memory.limit_in_bytes'), 'utf8')).toBe(
          `${256 * 1024 * 1024}\n`,
        );
      if (provider.limits.pids === 'cgroup')
        expect(await readFile(join(groups.pids, 'pids.max'), 'utf8')).toBe(`${PIDS_LIMIT}\n`);
      if (provider.limits.cpu === 'cgroup') {
        expect(await readFile(join(groups.cpu, 'cpu.cfs_period_us'), 'utf8')).toBe('100000\n');
        expect(await readFile(join(groups.cpu, 'cpu.cfs_quota_us'), 'utf8')).toBe('100000\n');
      }
    });

    it('refuses an egress allowlist, which it cannot enforce, and creates nothing', async () => {
      const before = await provider.list();
      const error = await provider
        .provision({ ...spec, egress: { allow: [{ cidr: '10.0.0.0/8', ports: [443] }] } })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SandboxSpecError);
      expect((error as SandboxSpecError).field).toBe('egress');
      expect(await provider.list()).toEqual(before);
    });

    it('knows nothing of unknown or malformed ids', async () => {
      for (const bad of ['sbx-0000000000000000', '../etc', `${id}/..`, 'sbx-../../tmp', ''])
        expect(await provider.get(bad)).toBeUndefined();
      await expect(provider.exec('sbx-0000000000000000', ['true'])).rejects.toThrow(SandboxNotFoundError);
      await expect(provider.exec('../../tmp', ['true'])).rejects.toThrow(SandboxNotFoundError);
      await expect(provider.terminate('sbx-0000000000000000')).resolves.toBeUndefined();
    });

    it('reports a sandbox past its TTL as terminated and runs nothing in it', async () => {
      let clock = Date.now();
      const clocked = createLocalProvider({ rootDir, now: () => clock });
      const { id: shortLived } = await clocked.provision({ ...spec, ttlSeconds: 60 });
      clock += 61_000;
      expect(await clocked.get(shortLived)).toEqual({ id: shortLived, status: 'terminated', reason: 'ttl' });
      await expect(clocked.exec(shortLived, ['true'])).rejects.toThrow(SandboxNotFoundError);
      expect(await clocked.list()).toContain(shortLived);
      await clocked.terminate(shortLived);
    });

    it('stops a command when its sandbox reaches the end of its TTL', async () => {
      const { id: brief } = await provider.provision({ ...spec, ttlSeconds: 1 });
      const result = await provider.exec(brief, ['sleep', '10'], { timeoutMs: 10_000 });
      expect(result).toMatchObject({ exitCode: 124, timedOut: true });
      expect(result.durationMs).toBeLessThan(2000);
      await provider.terminate(brief);
    });

    it('terminate kills everything the sandbox runs, removes it, and is idempotent', async () => {
      const { id: doomed } = await provider.provision(spec);
      const groups = Object.values((await sandboxRecord(rootDir, doomed)).cgroups) as string[];
      const marker = uniqueSleep();
      const pending = provider.exec(doomed, ['sh', '-c', `sleep ${marker} & sleep ${marker}; echo never`]);
      await waitFor(async () => (await processesWith(marker)).length >= 3); // bwrap's argv, sh, sleeps
      await provider.terminate(doomed);
      const result = await pending;
      expect(result.exitCode).toBe(137);
      expect(result.stdout).toBe('');
      expect(await processesWith(marker)).toEqual([]);
      expect(existsSync(join(rootDir, doomed))).toBe(false);
      for (const group of groups) expect(existsSync(group)).toBe(false);
      expect(await provider.get(doomed)).toBeUndefined();
      expect(await provider.list()).not.toContain(doomed);
      await expect(provider.terminate(doomed)).resolves.toBeUndefined();
      await expect(provider.exec(doomed, ['true'])).rejects.toThrow(SandboxNotFoundError);
    });
  });

  describe('exec', () => {
    it('passes env and stdin through and nothing of the host environment', async () => {
      process.env.DEVART_LOCAL_TEST_SECRET = 'host-only-value';
      try {
        const greeting = await provider.exec(id, ['sh', '-c', 'printf "%s|%s|" "$GREETING" "$HOME"; cat'], {
          env: { GREETING: 'hello world' },
          stdin: 'from stdin',
        });
        expect(greeting).toMatchObject({ exitCode: 0, stdout: 'hello world|/workspace|from stdin' });
        const env = await provider.exec(id, ['env']);
        // PWD comes from bwrap's --chdir.
        expect(env.stdout.trim().split('\n').sort()).toEqual([
          'HOME=/workspace',
          'PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
          'PWD=/workspace',
        ]);
      } finally {
        delete process.env.DEVART_LOCAL_TEST_SECRET;
      }
    });

    it('refuses malformed env names and NUL bytes', async () => {
      const badName = await provider.exec(id, ['true'], { env: { 'A-B': 'x' } }).catch((e: unknown) => e);
      expect(badName).toBeInstanceOf(SandboxSpecError);
      expect((badName as SandboxSpecError).field).toBe('env');
      await expect(provider.exec(id, ['true'], { env: { A: 'x\0--bind' } })).rejects.toThrow(
        SandboxSpecError,
      );
      await expect(provider.exec(id, [])).rejects.toThrow(SandboxSpecError);
    });

    it('propagates exit codes, and 128+N for a death by signal N', async () => {
      const exited = await provider.exec(id, ['sh', '-c', 'echo out; echo err >&2; exit 7']);
      expect(exited).toMatchObject({ exitCode: 7, stdout: 'out\n', stderr: 'err\n', timedOut: false });
      expect(exited.durationMs).toBeGreaterThanOrEqual(0);
      expect((await provider.exec(id, ['sh', '-c', 'kill -TERM $$'])).exitCode).toBe(143);
      expect((await provider.exec(id, ['no-such-program'])).exitCode).not.toBe(0);
    });

    it('treats a command that looks like a bwrap option as a program name', async () => {
      const result = await provider.exec(id, ['--bind', '/', '/host', 'ls', '/host']);
      expect(result.exitCode).not.toBe(0);
      expect(result.stdout).toBe('');
    });

    it('caps stdout and stderr at the output limit and says so', async () => {
      const result = await provider.exec(id, [
        'sh',
        '-c',
        'yes | head -c 5000000; yes | head -c 5000000 >&2; echo done >&2',
      ]);
      expect(result.exitCode).toBe(0);
      expect(result.truncated).toBe(true);
      expect(result.stdout.length).toBe(OUTPUT_LIMIT);
      expect(result.stderr.length).toBe(OUTPUT_LIMIT);
      expect((await provider.exec(id, ['echo', 'short'])).truncated).toBe(false);
    });

    it('leaves no process behind when the command exits', async () => {
      const marker = uniqueSleep();
      const result = await provider.exec(id, ['sh', '-c', `sleep ${marker} & echo started`]);
      expect(result).toMatchObject({ exitCode: 0, stdout: 'started\n' });
      expect(result.durationMs).toBeLessThan(3000);
      expect(await processesWith(marker)).toEqual([]);
    });
  });

  describe('isolation', () => {
    let server: Server;
    let url: string;

    beforeAll(async () => {
      server = createServer((_, res) => res.end('reachable'));
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    });

    afterAll(() => new Promise<void>((done) => server.close(() => done())));

    it('cannot reach a server on the host loopback that the same command reaches outside', async () => {
      const curl = ['/usr/bin/curl', '-sS', '--max-time', '2', url];
      const outside = await execFileAsync(curl[0]!, curl.slice(1));
      expect(outside.stdout).toBe('reachable');
      const inside = await provider.exec(id, curl);
      expect(inside.exitCode).not.toBe(0);
      expect(inside.stdout).not.toContain('reachable');
    });

    it('writes to its workspace, which the host sees, and nowhere else', async () => {
      const written = await provider.exec(id, ['sh', '-c', 'echo from-sandbox > /workspace/out.txt']);
      expect(written.exitCode).toBe(0);
      expect(await readFile(join(rootDir, id, 'workspace', 'out.txt'), 'utf8')).toBe('from-sandbox\n');
      const hostTmpFile = join(tmpdir(), `devart-escape-${randomBytes(4).toString('hex')}`);
      // The host's /tmp paths do not exist inside (its /tmp is its own), so these writes fail too.
      for (const target of ['/usr/x', '/etc/x', '/x', join(dataDir, 'x'), join(rootDir, 'x')]) {
        const result = await provider.exec(id, ['sh', '-c', `echo escaped > ${target}`]);
        expect(result.exitCode, target).not.toBe(0);
      }
      for (const target of ['/usr/x', '/etc/x', join(dataDir, 'x'), join(rootDir, 'x'), hostTmpFile])
        expect(existsSync(target), target).toBe(false);
      // Its /tmp is private: writable, but nothing lands in the host's.
      expect((await provider.exec(id, ['sh', '-c', `echo x > ${hostTmpFile}`])).exitCode).toBe(0);
      expect(existsSync(hostTmpFile)).toBe(false);
    });

    it('sees neither the data directory nor its own record, only system files and its workspace', async () => {
      const secret = await provider.exec(id, ['cat', join(dataDir, 'secret')]);
      expect(secret.exitCode).not.toBe(0);
      expect(secret.stdout).not.toContain('api-secret-value');
      expect((await provider.exec(id, ['cat', '../sandbox.json'])).exitCode).not.toBe(0);
      const root = (await provider.exec(id, ['ls', '-A', '/'])).stdout.trim().split('\n');
      const system = ['bin', 'dev', 'etc', 'lib', 'lib32', 'lib64', 'libx32', 'proc', 'sbin', 'tmp', 'usr'];
      expect(root).toEqual(expect.arrayContaining(['usr', 'etc', 'workspace']));
      expect(root.filter((entry) => ![...system, 'workspace'].includes(entry))).toEqual([]);
      const etc = (await provider.exec(id, ['ls', '-A', '/etc'])).stdout.trim().split('\n');
      const etcAllowed = [
        'alternatives',
        'group',
        'hosts',
        'ld.so.cache',
        'localtime',
        'nsswitch.conf',
        'passwd',
      ];
      expect(etc.filter((entry) => !etcAllowed.includes(entry))).toEqual([]);
    });

    it('cannot create a user namespace; with an older bwrap it still runs (and could)', async () => {
      const unshare = await provider.exec(id, ['unshare', '-U', 'true']);
      expect(unshare.exitCode).not.toBe(0);
      expect(unshare.stderr).toMatch(/unshare failed/);
      // The same command through a bwrap without --disable-userns (nor --seccomp, which denies
      // unshare too): those checks are what stop it.
      const older = createLocalProvider({ rootDir, bwrapPath: await olderBwrap(dataDir) });
      const { id: oldId } = await older.provision(spec);
      expect(await older.exec(oldId, ['unshare', '-U', 'true'])).toMatchObject({ exitCode: 0 });
      // Without --size, /dev/shm is not mounted at all: it stays a directory of the read-only /dev.
      expect((await older.exec(oldId, ['sh', '-c', 'echo x > /dev/shm/x'])).stderr).toMatch(/Read-only/);
      await older.terminate(oldId);
    });

    it('has a read-only /dev of device nodes and a /dev/shm that stops at its size', async () => {
      const dev = await provider.exec(id, [
        'sh',
        '-c',
        'echo x > /dev/null && head -c 4 /dev/zero | wc -c && ! touch /dev/file && ! mkdir /dev/dir',
      ]);
      expect(dev).toMatchObject({ exitCode: 0, stdout: '4\n' });
      // Files of 1 MB each, under the 1 MiB file size limit: only /dev/shm's own size stops them.
      const files = DEV_SHM_MIB + 16;
      const shm = await provider.exec(id, [
        'sh',
        '-c',
        `i=0; while [ $i -lt ${files} ] && head -c 1000000 /dev/zero > /dev/shm/f$i; do i=$((i+1)); done; echo $i; rm -f /dev/shm/f*`,
      ]);
      expect(shm.stderr).toMatch(/No space left on device/);
      const written = Number(shm.stdout.trim());
      expect(written).toBeGreaterThan(DEV_SHM_MIB / 2);
      expect(written).toBeLessThan(files);
    });

    it.skipIf(process.getuid?.() !== 0)(
      'runs as uid 65534, not root, when the API is root: on the host too when it can',
      async () => {
        const inside = await provider.exec(id, ['sh', '-c', 'id -u; id -g; touch /workspace/owned']);
        expect(inside).toMatchObject({ exitCode: 0, stdout: '65534\n65534\n' });
        const owner = await stat(join(rootDir, id, 'workspace', 'owned'));
        if (provider.limits.user === 'host') expect([owner.uid, owner.gid]).toEqual([65534, 65534]);
        // The sandbox's directory is reachable through the private bind only: its parent stays closed.
        expect((await stat(rootDir)).mode & 0o777).toBe(0o700);
        // A bwrap nobody cannot run (in a 0700 directory) falls back to uid 65534 inside only.
        const fallback = createLocalProvider({ rootDir, bwrapPath: await olderBwrap(dataDir) });
        expect(fallback.limits.user).toBe('namespace');
        const { id: fid } = await fallback.provision(spec);
        expect((await fallback.exec(fid, ['id', '-u'])).stdout).toBe('65534\n');
        await fallback.terminate(fid);
      },
    );

    it('sees only its own processes', async () => {
      const result = await provider.exec(id, ['sh', '-c', 'ls /proc | grep -c "^[0-9]"']);
      expect(Number(result.stdout.trim())).toBeLessThanOrEqual(4); // bwrap's init, sh, ls, grep
    });
  });

  describe('limits', () => {
    it('stops an endless loop at the timeout and kills it', async () => {
      const marker = `loop-${randomBytes(4).toString('hex')}`;
      const result = await provider.exec(id, ['sh', '-c', 'while :; do :; done', marker], {
        timeoutMs: 1000,
      });
      expect(result).toMatchObject({ exitCode: 124, timedOut: true });
      expect(result.durationMs).toBeLessThan(3000);
      expect(await processesWith(marker)).toEqual([]);
    });

    it.skipIf(hostLimits.pids === 'none')(
      'stops a command that starts more processes than the pids limit allows',
      async () => {
        const result = await provider.exec(
          id,
          ['sh', '-c', 'for i in $(seq 200); do sleep 20 & done; wait'],
          {
            timeoutMs: 10_000,
          },
        );
        expect(result.timedOut).toBe(false);
        expect(result.exitCode).not.toBe(0);
        expect(result.stderr).toMatch(/fork/i);
        expect(result.durationMs).toBeLessThan(5000);
      },
    );

    it.skipIf(hostLimits.pids !== 'cgroup')(
      'contains a real fork bomb within the pids limit; the host and the sandbox stay usable',
      async () => {
        const { id: bombed } = await provider.provision(spec);
        const { pids } = (await sandboxRecord(rootDir, bombed)).cgroups;
        const result = await provider.exec(bombed, ['sh', '-c', 'b() { b | b & }; b; sleep 1'], {
          timeoutMs: 3000,
        });
        expect(result.durationMs).toBeLessThan(4000);
        const events = await readFile(join(pids, 'pids.events'), 'utf8');
        expect(Number(/max (\d+)/.exec(events)?.[1])).toBeGreaterThan(0);
        await waitFor(async () => (await cgroupPids(pids)).length === 0);
        expect(await provider.exec(bombed, ['echo', 'still here'])).toMatchObject({ exitCode: 0 });
        await provider.terminate(bombed);
      },
    );

    it('kills a memory hog at the memory limit', async () => {
      const { id: small } = await provider.provision({ ...spec, memory: 64 });
      const result = await provider.exec(small, [
        'perl',
        '-e',
        '$x = "a" x (1024 * 1024 * 1024); print "allocated"',
      ]);
      expect(result.exitCode).not.toBe(0);
      if (provider.limits.memory === 'cgroup') expect(result.exitCode).toBe(137);
      expect(result.stdout).not.toContain('allocated');
      expect(result.durationMs).toBeLessThan(5000);
      await provider.terminate(small);
    });

    it.skipIf(hostLimits.workspace !== 'tmpfs')(
      'stops writes past the workspace size, which lives in its own tmpfs and not on the host disk',
      async () => {
        const limited = createLocalProvider({
          rootDir,
          fileSizeLimitBytes: 1024 * 1024,
          workspaceLimitBytes: 8 * 1024 * 1024,
        });
        const { id: small } = await limited.provision(spec);
        const workspace = join(rootDir, small, 'workspace');
        const TMPFS_MAGIC = 0x01021994;
        expect((await statfs(workspace)).type).toBe(TMPFS_MAGIC);
        expect((await stat(workspace)).dev).not.toBe((await stat(rootDir)).dev);
        // Files of 1 MB, under the 1 MiB file size limit: only the workspace's size stops them.
        const result = await limited.exec(small, [
          'sh',
          '-c',
          'i=0; while [ $i -lt 16 ] && head -c 1000000 /dev/zero > f$i; do i=$((i+1)); done; echo $i',
        ]);
        expect(result.stderr).toMatch(/No space left on device/);
        expect(Number(result.stdout.trim())).toBeLessThan(9);
        // What was written is the host's to see (in the tmpfs), and gone with the sandbox.
        expect(existsSync(join(workspace, 'f0'))).toBe(true);
        await limited.terminate(small);
        expect(existsSync(join(rootDir, small))).toBe(false);
        const mounts = await readFile('/proc/self/mountinfo', 'utf8');
        expect(mounts).not.toContain(small);
      },
    );

    it('stops a process writing a file larger than the file size limit', async () => {
      const result = await provider.exec(id, ['sh', '-c', 'head -c 2000000 /dev/zero > /workspace/big']);
      expect(result.exitCode).not.toBe(0);
    });

    it.skipIf(hostLimits.cpu !== 'cgroup')(
      'throttles CPU to the spec (100 millicores: about a tenth of a second of CPU per second)',
      async () => {
        const { id: slow } = await provider.provision({ ...spec, cpu: 100 });
        const busy = 'my $t = time + 1; 1 while time < $t; print +(times)[0]';
        const result = await provider.exec(slow, ['perl', '-MTime::HiRes=time', '-e', busy]);
        expect(result.exitCode).toBe(0);
        expect(Number(result.stdout)).toBeLessThan(0.5);
        await provider.terminate(slow);
      },
    );
  });
});
