import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxSpec } from '../provider';
import { detectBubblewrap } from './detect';
import { createLocalProvider, type LocalSandboxProvider } from './provider';
import {
  AUDIT_ARCH_X86_64,
  BPF,
  buildSeccompProgram,
  DENIED_SYSCALLS,
  encodeSeccompProgram,
  SECCOMP_DATA,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  type SockFilter,
  seccompFilter,
} from './seccomp';
import { X86_64_SYSCALLS } from './seccomp-syscalls';

const UNISTD_64 = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
const AUDIT_ARCH_I386 = 0x40000003;
const EPERM = SECCOMP_RET_ERRNO | 1;
const ENOSYS = SECCOMP_RET_ERRNO | 38;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNET = 0x40000000;
/** What glibc's fork() passes: CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD. */
const FORK_FLAGS = 0x01200011;

/**
 * Runs a classic BPF seccomp program the way the kernel does, on one seccomp_data (nr, arch and
 * the low half of args[0]); only the instructions the program may contain are known.
 */
function run(program: SockFilter[], data: { nr: number; arch?: number; arg0?: number }): number {
  const word = (offset: number) => {
    if (offset === SECCOMP_DATA.nr) return data.nr >>> 0;
    if (offset === SECCOMP_DATA.arch) return (data.arch ?? AUDIT_ARCH_X86_64) >>> 0;
    if (offset === SECCOMP_DATA.arg0Low) return (data.arg0 ?? 0) >>> 0;
    throw new Error(`load of seccomp_data offset ${offset}`);
  };
  let acc = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const { code, jt, jf, k } = program[pc]!;
    if (code === BPF.LD_W_ABS) acc = word(k);
    else if (code === BPF.RET_K) return k >>> 0;
    else if (code === BPF.JEQ_K) pc += acc === k >>> 0 ? jt : jf;
    else if (code === BPF.JGE_K) pc += acc >= k >>> 0 ? jt : jf;
    else if (code === BPF.JSET_K) pc += (acc & k) !== 0 ? jt : jf;
    else throw new Error(`unknown opcode ${code} at ${pc}`);
  }
  throw new Error('the program ran off its end');
}

describe('the seccomp program', () => {
  const program = buildSeccompProgram();

  it('checks the architecture first, then loads nr, and ends with ALLOW', () => {
    // The kernel accepts at most 4096 instructions; bwrap passes them as they are.
    expect(program.length).toBeLessThan(4096);
    expect(program[0]).toEqual({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: SECCOMP_DATA.arch });
    expect(program[1]).toMatchObject({ code: BPF.JEQ_K, k: AUDIT_ARCH_X86_64 });
    expect(program[3]).toEqual({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: SECCOMP_DATA.nr });
    expect(program.at(-1)).toEqual({ code: BPF.RET_K, jt: 0, jf: 0, k: SECCOMP_RET_ALLOW });
    for (const [pc, insn] of program.entries()) {
      // Every jump lands inside the program (classic BPF jumps forward only).
      if (insn.code !== BPF.RET_K && insn.code !== BPF.LD_W_ABS)
        expect(pc + 1 + Math.max(insn.jt, insn.jf)).toBeLessThan(program.length);
      expect(insn.jt).toBeLessThan(256);
      expect(insn.jf).toBeLessThan(256);
    }
  });

  it('is encoded as struct sock_filter: u16 code, u8 jt, u8 jf, u32 k, little-endian', () => {
    const bytes = encodeSeccompProgram(program);
    expect(bytes.length).toBe(program.length * 8);
    expect([...bytes.subarray(0, 16)]).toEqual([0x20, 0, 0, 0, 4, 0, 0, 0, 0x15, 0, 1, 0, 0x3e, 0, 0, 0xc0]);
    expect(seccompFilter('x64')).toEqual(bytes);
    expect(seccompFilter('arm64')).toBeUndefined();
  });

  it('denies the listed syscalls with EPERM and allows ordinary ones', () => {
    for (const name of DENIED_SYSCALLS) expect(run(program, { nr: X86_64_SYSCALLS[name] })).toBe(EPERM);
    // read, write, openat, execve, exit_group, wait4.
    for (const nr of [0, 1, 257, 59, 231, 61]) expect(run(program, { nr })).toBe(SECCOMP_RET_ALLOW);
  });

  it('kills on another architecture and refuses x32 numbers', () => {
    expect(run(program, { nr: 0, arch: AUDIT_ARCH_I386 })).toBe(SECCOMP_RET_KILL_PROCESS);
    expect(run(program, { nr: 0x40000000 })).toBe(EPERM);
    expect(run(program, { nr: 0x40000000 + 250 })).toBe(EPERM);
  });

  it('sends clone3 to clone, and refuses clone with a namespace flag', () => {
    expect(run(program, { nr: X86_64_SYSCALLS.clone3 })).toBe(ENOSYS);
    expect(run(program, { nr: X86_64_SYSCALLS.clone, arg0: FORK_FLAGS })).toBe(SECCOMP_RET_ALLOW);
    expect(run(program, { nr: X86_64_SYSCALLS.clone, arg0: FORK_FLAGS | CLONE_NEWUSER })).toBe(EPERM);
    expect(run(program, { nr: X86_64_SYSCALLS.clone, arg0: CLONE_NEWNET })).toBe(EPERM);
  });

  it('allows personality only as PER_LINUX or a query', () => {
    const nr = X86_64_SYSCALLS.personality;
    expect(run(program, { nr, arg0: 0 })).toBe(SECCOMP_RET_ALLOW);
    expect(run(program, { nr, arg0: 0xffffffff })).toBe(SECCOMP_RET_ALLOW);
    // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, PER_LINUX32.
    for (const arg0 of [0x0040000, 0x0400000, 0x0008]) expect(run(program, { nr, arg0 })).toBe(EPERM);
  });

  it.skipIf(!existsSync(UNISTD_64))('uses the syscall numbers of the installed kernel headers', () => {
    const header = readFileSync(UNISTD_64, 'utf8');
    for (const [name, nr] of Object.entries(X86_64_SYSCALLS)) {
      const defined = new RegExp(`^#define __NR_${name}\\s+(\\d+)\\s*$`, 'm').exec(header)?.[1];
      expect({ name, nr: Number(defined) }).toEqual({ name, nr });
    }
  });
});

const bwrap = await detectBubblewrap();
const seccompHere = bwrap.available && bwrap.features.seccomp && process.arch === 'x64';
const spec: SandboxSpec = {
  taskId: 'task-seccomp-test',
  cpu: 1000,
  memory: 256,
  ttlSeconds: 600,
  egress: 'none',
};

/** Python calling syscall(nr, args…) through libc, printing the result and errno. */
function syscall(nr: number, ...args: number[]): string[] {
  const list = [...args, 0, 0, 0, 0, 0].slice(0, 5).join(',');
  return [
    'python3',
    '-c',
    `import ctypes; libc=ctypes.CDLL(None,use_errno=True); r=libc.syscall(${nr},${list}); print(r, ctypes.get_errno())`,
  ];
}

describe.skipIf(!seccompHere)('a local sandbox under the seccomp filter', () => {
  let rootDir: string;
  let provider: LocalSandboxProvider;
  let id: string;

  beforeAll(async () => {
    rootDir = await mkdtemp(join(tmpdir(), 'devart-seccomp-'));
    provider = createLocalProvider({ rootDir });
    ({ id } = await provider.provision(spec));
  });

  afterAll(async () => {
    for (const sandbox of await provider.list()) await provider.terminate(sandbox);
    await rm(rootDir, { recursive: true, force: true });
  });

  it('answers EPERM to keyctl, ptrace, bpf and perf_event_open', async () => {
    for (const nr of [250, 101, 321, 298]) {
      const result = await provider.exec(id, syscall(nr));
      expect({ nr, stdout: result.stdout, exitCode: result.exitCode }).toEqual({
        nr,
        stdout: '-1 1\n',
        exitCode: 0,
      });
    }
  });

  it('answers ENOSYS to clone3, EPERM to x32 numbers and to unshare', async () => {
    expect((await provider.exec(id, syscall(435))).stdout).toBe('-1 38\n');
    expect((await provider.exec(id, syscall(0x40000000 + 39))).stdout).toBe('-1 1\n');
    const unshare = await provider.exec(id, ['unshare', '-U', 'true']);
    expect(unshare.stderr).toMatch(/unshare failed: Operation not permitted/);
  });

  it('still runs ordinary commands: a shell pipeline, python with subprocesses and threads, gcc, make', async () => {
    expect(
      await provider.exec(id, ['sh', '-c', 'echo hello | tr a-z A-Z; cat /etc/hosts | wc -l']),
    ).toMatchObject({
      exitCode: 0,
      stdout: 'HELLO\n2\n',
    });
    const python = await provider.exec(id, [
      'python3',
      '-c',
      'import subprocess, threading; t = threading.Thread(target=print, args=("thread",)); t.start(); t.join(); ' +
        'print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())',
    ]);
    expect(python).toMatchObject({ exitCode: 0, stdout: 'thread\nchild\n' });
    const gcc = await provider.exec(id, [
      'sh',
      '-c',
      'command -v gcc >/dev/null || exit 77; printf "int main(void){return 3;}" > t.c && gcc -o t t.c && ./t',
    ]);
    expect([3, 77]).toContain(gcc.exitCode);
    const make = await provider.exec(id, [
      'sh',
      '-c',
      'command -v make >/dev/null || exit 77; printf "all:\\n\\t@echo made\\n" > Makefile && make',
    ]);
    if (make.exitCode !== 77) expect(make).toMatchObject({ exitCode: 0, stdout: 'made\n' });
  });
});
