/**
 * The seccomp filter of local sandboxes, built here as a classic BPF program (no libseccomp, no
 * compiler): bwrap reads it from a file descriptor (`--seccomp FD`) and installs it just before it
 * starts the command. It is a denylist: syscalls a build or test never needs and that are common
 * first steps of kernel exploits answer EPERM; everything else is allowed.
 */
import { type SyscallName, X86_64_SYSCALLS } from './seccomp-syscalls';

/** `seccomp_data.arch` for x86_64 (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE). */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** Set in `nr` by x32 syscalls, which share AUDIT_ARCH_X86_64 but have numbers of their own. */
export const X32_SYSCALL_BIT = 0x40000000;

export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const ENOSYS = 38;

/** Classic BPF opcodes (linux/filter.h) the program uses. */
export const BPF = {
  LD_W_ABS: 0x20,
  JEQ_K: 0x15,
  JGE_K: 0x35,
  JSET_K: 0x45,
  RET_K: 0x06,
} as const;

/** Offsets in struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]. */
export const SECCOMP_DATA = { nr: 0, arch: 4, arg0Low: 16 } as const;

/** One struct sock_filter. */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** Syscalls answered EPERM whatever their arguments. */
export const DENIED_SYSCALLS: readonly SyscallName[] = [
  // Kernel keyrings: a large attack surface, and no namespace of their own.
  'keyctl',
  'add_key',
  'request_key',
  // Reading and writing other processes' memory.
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  // eBPF and perf: frequent sources of kernel exploits.
  'bpf',
  'perf_event_open',
  // Lets an exploit stall the kernel mid-copy to win a race.
  'userfaultfd',
  // Mounts and namespaces (also refused for lack of capabilities and by --disable-userns).
  'mount',
  'umount2',
  'pivot_root',
  'unshare',
  'setns',
  // Host administration.
  'swapon',
  'swapoff',
  'reboot',
  'kexec_load',
  'kexec_file_load',
  'init_module',
  'finit_module',
  'delete_module',
  'acct',
  'settimeofday',
  'clock_settime',
  'adjtimex',
  'iopl',
  'ioperm',
  // File handles bypass path lookup (the classic container escape); dcookies are obsolete.
  'open_by_handle_at',
  'name_to_handle_at',
  'lookup_dcookie',
];

/**
 * Namespace flags of clone(2): CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
 * Not CLONE_NEWTIME (0x80): in clone(2)'s flags that bit is part of the exit signal.
 */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/** personality(2) values still allowed: PER_LINUX, and 0xffffffff, which only asks. */
const ALLOWED_PERSONALITIES = [0, 0xffffffff];

/** The architectures a filter is built for (Node's `process.arch` names). */
export function seccompSupported(arch: string = process.arch): boolean {
  return arch === 'x64';
}

const errno = (code: number) => SECCOMP_RET_ERRNO | code;
const ret = (k: number): SockFilter => ({ code: BPF.RET_K, jt: 0, jf: 0, k });
const load = (offset: number): SockFilter => ({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: offset });
/** Skips the next instruction unless the accumulator equals k. */
const ifEqual = (k: number): SockFilter => ({ code: BPF.JEQ_K, jt: 0, jf: 1, k });

/**
 * The x86_64 filter. Every test is "compare, then either fall through to a return or skip it",
 * so no jump offset depends on the length of anything else. Checks run in this order:
 * the architecture (any other, e.g. 32-bit `int 0x80`, kills the process, since its numbers mean
 * other syscalls), x32 numbers (EPERM), the denylist (EPERM), clone3 (ENOSYS, so the C library
 * falls back to clone, whose flags a classic filter can read; clone3 passes them in memory), clone
 * with a namespace flag (EPERM), personality other than PER_LINUX or a query (EPERM), then ALLOW.
 */
export function buildSeccompProgram(): SockFilter[] {
  const nr = (name: SyscallName) => X86_64_SYSCALLS[name];
  const program: SockFilter[] = [
    load(SECCOMP_DATA.arch),
    { code: BPF.JEQ_K, jt: 1, jf: 0, k: AUDIT_ARCH_X86_64 },
    ret(SECCOMP_RET_KILL_PROCESS),
    load(SECCOMP_DATA.nr),
    { code: BPF.JGE_K, jt: 0, jf: 1, k: X32_SYSCALL_BIT },
    ret(errno(EPERM)),
  ];
  for (const name of DENIED_SYSCALLS) program.push(ifEqual(nr(name)), ret(errno(EPERM)));
  program.push(ifEqual(nr('clone3')), ret(errno(ENOSYS)));
  // clone: jump over the namespace test unless this is clone; the flags are args[0] (low half).
  program.push(
    { code: BPF.JEQ_K, jt: 0, jf: 3, k: nr('clone') },
    load(SECCOMP_DATA.arg0Low),
    { code: BPF.JSET_K, jt: 0, jf: 1, k: CLONE_NAMESPACE_FLAGS },
    ret(errno(EPERM)),
  );
  // personality(unsigned int): the accumulator may hold clone's flags now, so reload nr.
  program.push(
    load(SECCOMP_DATA.nr),
    { code: BPF.JEQ_K, jt: 0, jf: 1 + 2 * ALLOWED_PERSONALITIES.length + 1, k: nr('personality') },
    load(SECCOMP_DATA.arg0Low),
  );
  for (const value of ALLOWED_PERSONALITIES) program.push(ifEqual(value), ret(SECCOMP_RET_ALLOW));
  program.push(ret(errno(EPERM)));
  program.push(ret(SECCOMP_RET_ALLOW));
  return program;
}

/** The program as bwrap reads it: struct sock_filter[] in the host's (little-endian) byte order. */
export function encodeSeccompProgram(program: SockFilter[]): Buffer {
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach((insn, i) => {
    bytes.writeUInt16LE(insn.code, i * 8);
    bytes.writeUInt8(insn.jt, i * 8 + 2);
    bytes.writeUInt8(insn.jf, i * 8 + 3);
    bytes.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return bytes;
}

/**
 * The encoded filter for this host, or undefined where none is built (not x86_64).
 * @example seccompFilter()?.length // 8 bytes per instruction
 */
export function seccompFilter(arch: string = process.arch): Buffer | undefined {
  return seccompSupported(arch) ? encodeSeccompProgram(buildSeccompProgram()) : undefined;
}
