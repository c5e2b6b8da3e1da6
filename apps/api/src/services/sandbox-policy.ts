import { isIP } from 'node:net';
import type { RequestSandboxBody } from '@devart/contracts';
import { z } from 'zod';

/**
 * The operator's sandbox policy: what an agent may ask of a sandbox, per capability of the task it
 * holds, with a default for every other capability. Agents are untrusted code, so the request is
 * checked against this before anything is recorded or provisioned (services/sandboxes.ts).
 */
export interface SandboxPolicy {
  default: CapabilityPolicy;
  /** Per capability; each field left out of the file takes the default's value. */
  capabilities: Record<string, CapabilityPolicy>;
  /**
   * Ranges no egress may reach unless the policy lists a block inside them: the always-denied
   * ones (loopback, link-local, IPv4-mapped) and SANDBOX_DENIED_CIDRS (the cluster's own).
   */
  denied: DeniedRange[];
}

export interface CapabilityPolicy {
  /** Image references allowed in `image`, exactly as written. Empty: `image` may not be given. */
  images: string[];
  /** Blocks egress may go to (a request's block must lie inside one); empty: "none" only. */
  egress: EgressGrant[];
  /** Millicores. */
  maxCpu: number;
  /** MiB. */
  maxMemory: number;
  maxTtlSeconds: number;
  /** Live sandboxes one task may have at once. */
  maxPerTask: number;
}

export interface EgressGrant {
  cidr: string;
  /** Unset: every port; set: a request must list ports, all of them from here. */
  ports?: number[];
}

export interface DeniedRange {
  cidr: string;
  why: string;
}

/**
 * Conservative defaults: the request's own defaults (1000 m, 512 MiB, 900 s) fit, anything much
 * bigger is the operator's decision.
 */
export const DEFAULT_LIMITS = { maxCpu: 1000, maxMemory: 1024, maxTtlSeconds: 3600, maxPerTask: 3 } as const;

/** Never reachable by a sandbox unless the policy lists a block inside them. */
export const ALWAYS_DENIED: readonly DeniedRange[] = [
  { cidr: '127.0.0.0/8', why: 'loopback' },
  { cidr: '::1/128', why: 'loopback' },
  { cidr: '169.254.0.0/16', why: 'link-local, where cloud metadata services answer' },
  { cidr: 'fe80::/10', why: 'link-local' },
  { cidr: '::ffff:0:0/96', why: 'IPv4-mapped IPv6, which would bypass the IPv4 rules' },
  { cidr: '0.0.0.0/8', why: '"this network"' },
  { cidr: '::/128', why: 'the unspecified address' },
];

// ── CIDR arithmetic ───────────────────────────────────────────────────────────────────────────

/** A parsed block: the network as a number of `bits` bits (host bits cleared), and its prefix. */
export interface Cidr {
  family: 4 | 6;
  bits: 32 | 128;
  network: bigint;
  prefix: number;
}

function ipv4ToBigint(address: string): bigint {
  return address.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
}

function ipv6ToBigint(address: string): bigint {
  let text = address;
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToBigint(v4[1]!);
    text = `${text.slice(0, -v4[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((n, group) => (n << 16n) | BigInt(Number.parseInt(group, 16)), 0n);
}

/**
 * Parses `address/prefix` (IPv4 or IPv6; node:net decides what an address is), or undefined.
 * @example parseCidr('10.1.2.3/8') // { family: 4, bits: 32, network: 0x0a000000n, prefix: 8 }
 */
export function parseCidr(text: string): Cidr | undefined {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!match) return undefined;
  // node:net takes a zone (fe80::1%eth0), which names an interface, not addresses.
  if (match[1]!.includes('%')) return undefined;
  const family = isIP(match[1]!);
  if (family !== 4 && family !== 6) return undefined;
  const bits = family === 4 ? 32 : 128;
  const prefix = Number(match[2]);
  if (prefix > bits) return undefined;
  const address = family === 4 ? ipv4ToBigint(match[1]!) : ipv6ToBigint(match[1]!);
  const hostBits = BigInt(bits - prefix);
  return { family, bits, network: (address >> hostBits) << hostBits, prefix };
}

/** Whether every address of `inner` is in `outer` (never across families). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const hostBits = BigInt(outer.bits - outer.prefix);
  return inner.network >> hostBits === outer.network >> hostBits;
}

/** Whether two blocks share an address: of two CIDR blocks that do, one holds the other. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

// ── The policy file ───────────────────────────────────────────────────────────────────────────

const cidrText = z.string().refine((text) => parseCidr(text) !== undefined, {
  error: 'must be a CIDR block (address/prefix-length), IPv4 or IPv6',
});

const Grant = z.strictObject({
  cidr: cidrText,
  ports: z.array(z.int().min(1).max(65535)).min(1).max(20).optional(),
});

/** One capability's section (and the default's), snake_case as the API spells things. */
const Section = z.strictObject({
  images: z.array(z.string().min(1)).max(100).optional(),
  egress: z.array(Grant).max(50).optional(),
  max_cpu: z.int().min(50).max(8000).optional(),
  max_memory: z.int().min(32).max(16384).optional(),
  max_ttl_seconds: z.int().min(10).max(86_400).optional(),
  max_sandboxes_per_task: z.int().min(1).max(100).optional(),
});

/** The policy file (JSON or YAML). */
export const SandboxPolicyFile = z.strictObject({
  default: Section.optional(),
  capabilities: z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/), Section).optional(),
  denied_cidrs: z.array(cidrText).max(100).optional(),
});
export type SandboxPolicyFile = z.infer<typeof SandboxPolicyFile>;

type Section = z.infer<typeof Section>;

function applySection(base: CapabilityPolicy, section: Section | undefined): CapabilityPolicy {
  return {
    images: section?.images ?? base.images,
    egress: section?.egress ?? base.egress,
    maxCpu: section?.max_cpu ?? base.maxCpu,
    maxMemory: section?.max_memory ?? base.maxMemory,
    maxTtlSeconds: section?.max_ttl_seconds ?? base.maxTtlSeconds,
    maxPerTask: section?.max_sandboxes_per_task ?? base.maxPerTask,
  };
}

/**
 * The policy: `base` (from the environment) under the file's `default`, each capability's section
 * over that, and the always-denied ranges plus `deniedCidrs` (SANDBOX_DENIED_CIDRS) or the file's
 * `denied_cidrs`.
 * @example buildSandboxPolicy({ images: ['busybox:1.36'], egress: [], ...DEFAULT_LIMITS }, [], { capabilities: { build: { max_cpu: 4000 } } })
 */
export function buildSandboxPolicy(
  base: CapabilityPolicy,
  deniedCidrs: readonly string[],
  file: SandboxPolicyFile = {},
): SandboxPolicy {
  const fallback = applySection(base, file.default);
  return {
    default: fallback,
    capabilities: Object.fromEntries(
      Object.entries(file.capabilities ?? {}).map(([name, section]) => [
        name,
        applySection(fallback, section),
      ]),
    ),
    denied: [
      ...ALWAYS_DENIED,
      ...(file.denied_cidrs ?? deniedCidrs).map((cidr) => ({
        cidr,
        why: 'the cluster’s own addresses (SANDBOX_DENIED_CIDRS)',
      })),
    ],
  };
}

// ── The check ─────────────────────────────────────────────────────────────────────────────────

/** What the policy says of a request: allowed, with the live-sandbox cap to apply; or which field it refuses and why. */
export type PolicyDecision =
  | { outcome: 'allowed'; maxPerTask: number }
  | { outcome: 'refused'; field: string; detail: string }
  | { outcome: 'invalid'; field: string; detail: string };

/** The section of the policy that governs a task of `capability`, and how to name it. */
export function policyFor(
  policy: SandboxPolicy,
  capability: string | null,
): { rules: CapabilityPolicy; name: string } {
  const own =
    capability !== null && Object.hasOwn(policy.capabilities, capability)
      ? policy.capabilities[capability]
      : undefined;
  return own
    ? { rules: own, name: `the sandbox policy of capability ${capability}` }
    : { rules: policy.default, name: 'the default sandbox policy' };
}

const listOf = (items: string[]) => (items.length === 0 ? 'none' : items.join(', '));
const grantText = (g: EgressGrant) => (g.ports ? `${g.cidr} ports ${g.ports.join(',')}` : g.cidr);

/**
 * Checks a sandbox request against the policy for its task's capability. Pure: the service turns
 * `refused` into a 403 and `invalid` into a 400, both naming `body.<field>`.
 * @example checkSandboxRequest(policy, 'shell', { task_id, ttl_seconds: 900, egress: { allow: [{ cidr: '0.0.0.0/0' }] } })
 * // { outcome: 'refused', field: 'egress.allow[0].cidr', detail: '… allows egress to none' }
 */
export function checkSandboxRequest(
  policy: SandboxPolicy,
  capability: string | null,
  body: Pick<RequestSandboxBody, 'image' | 'resources' | 'ttl_seconds' | 'egress'>,
): PolicyDecision {
  const { rules, name } = policyFor(policy, capability);
  const refused = (field: string, detail: string): PolicyDecision => ({ outcome: 'refused', field, detail });
  if (body.image !== undefined && !rules.images.includes(body.image)) {
    return refused(
      'image',
      `image "${body.image}" is not allowed by ${name} (allowed: ${listOf(rules.images.map((i) => `"${i}"`))})`,
    );
  }
  const cpu = body.resources?.cpu ?? 1000;
  if (cpu > rules.maxCpu)
    return refused('resources.cpu', `${cpu} millicores exceed ${name}'s max_cpu of ${rules.maxCpu}`);
  const memory = body.resources?.memory ?? 512;
  if (memory > rules.maxMemory)
    return refused('resources.memory', `${memory} MiB exceed ${name}'s max_memory of ${rules.maxMemory}`);
  if (body.ttl_seconds > rules.maxTtlSeconds)
    return refused(
      'ttl_seconds',
      `${body.ttl_seconds} s exceed ${name}'s max_ttl_seconds of ${rules.maxTtlSeconds}`,
    );
  if (body.egress !== 'none') {
    const grants = rules.egress.map((grant) => ({ grant, block: parseCidr(grant.cidr)! }));
    const denied = policy.denied.map((range) => ({ range, block: parseCidr(range.cidr)! }));
    for (const [i, rule] of body.egress.allow.entries()) {
      const field = `egress.allow[${i}]`;
      const block = parseCidr(rule.cidr);
      if (!block)
        return {
          outcome: 'invalid',
          field: `${field}.cidr`,
          detail: `"${rule.cidr}" is not a CIDR block (address/prefix-length)`,
        };
      // Ports: a grant with ports covers a rule only if the rule names ports, all of them granted.
      const covering = grants.filter(
        ({ grant, block: g }) =>
          cidrContains(g, block) &&
          (grant.ports === undefined || rule.ports?.every((p) => grant.ports!.includes(p)) === true),
      );
      if (covering.length === 0) {
        const byBlock = grants.some(({ block: g }) => cidrContains(g, block));
        return refused(
          byBlock ? `${field}.ports` : `${field}.cidr`,
          byBlock
            ? `${rule.cidr} ${rule.ports ? `ports ${rule.ports.join(',')}` : 'on every port'} is not allowed by ${name} (allowed egress: ${listOf(rules.egress.map(grantText))})`
            : `${rule.cidr} is not inside the egress ${name} allows (allowed: ${listOf(rules.egress.map(grantText))})`,
        );
      }
      // A denied range is reachable only through a grant the operator wrote inside it.
      for (const { range, block: d } of denied) {
        if (!cidrsOverlap(block, d)) continue;
        if (covering.some(({ block: g }) => cidrContains(d, g))) continue;
        return refused(
          `${field}.cidr`,
          `${rule.cidr} reaches ${range.cidr} (${range.why}), which ${name} does not list`,
        );
      }
    }
  }
  return { outcome: 'allowed', maxPerTask: rules.maxPerTask };
}
