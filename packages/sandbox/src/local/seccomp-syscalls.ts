/**
 * x86_64 syscall numbers the seccomp filter names, copied from the kernel's
 * `asm/unistd_64.h` (seccomp.test.ts compares them with the header when it is installed).
 * Numbers are per architecture: this table is only valid for AUDIT_ARCH_X86_64.
 */
export const X86_64_SYSCALLS = {
  clone: 56,
  ptrace: 101,
  personality: 135,
  pivot_root: 155,
  adjtimex: 159,
  acct: 163,
  settimeofday: 164,
  mount: 165,
  umount2: 166,
  swapon: 167,
  swapoff: 168,
  reboot: 169,
  iopl: 172,
  ioperm: 173,
  init_module: 175,
  delete_module: 176,
  lookup_dcookie: 212,
  clock_settime: 227,
  kexec_load: 246,
  add_key: 248,
  request_key: 249,
  keyctl: 250,
  unshare: 272,
  perf_event_open: 298,
  name_to_handle_at: 303,
  open_by_handle_at: 304,
  setns: 308,
  process_vm_readv: 310,
  process_vm_writev: 311,
  finit_module: 313,
  kexec_file_load: 320,
  bpf: 321,
  userfaultfd: 323,
  clone3: 435,
} as const;

export type SyscallName = keyof typeof X86_64_SYSCALLS;
