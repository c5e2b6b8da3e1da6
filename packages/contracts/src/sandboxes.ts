import { z } from 'zod';
import { Uuid } from './common';

const cidr = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$|^[0-9a-fA-F:]+\/\d{1,3}$/, {
  error: 'must be a CIDR block, e.g. 203.0.113.0/24',
});

export const SandboxEgress = z
  .union([
    z.literal('none'),
    z.strictObject({
      allow: z
        .array(
          z.strictObject({
            cidr,
            ports: z.array(z.int().min(1).max(65535)).max(20).optional(),
          }),
        )
        .min(1)
        .max(50),
    }),
  ])
  .meta({
    id: 'SandboxEgress',
    description:
      '"none" (the default): no network at all. An allowlist needs the kubernetes provider; the local provider refuses it.',
  });

// The seed spells the request in camelCase (taskId, ttlSeconds); the API is snake_case. Either is
// accepted, not both: which of two different ids was meant cannot be guessed.
// A Map, not an object literal: `aliases['__proto__']` on an object would be Object.prototype,
// and a body key `__proto__` or `constructor` would be renamed to "[object Object]".
const aliases = new Map([
  ['taskId', 'task_id'],
  ['ttlSeconds', 'ttl_seconds'],
]);
const snakeCase = (value: unknown, ctx: z.core.$RefinementCtx) => {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const entries = Object.entries(value).filter(([key]) => {
    const name = aliases.get(key);
    if (name === undefined || !Object.hasOwn(value, name)) return true;
    ctx.addIssue({
      code: 'custom',
      path: [key],
      message: `is another name for ${name}; give only one`,
      input: value,
    });
    return false;
  });
  return Object.fromEntries(entries.map(([key, v]) => [aliases.get(key) ?? key, v]));
};

export const RequestSandboxBody = z
  .preprocess(
    snakeCase,
    z.strictObject({
      task_id: Uuid.meta({ description: 'A task this agent holds IN_PROGRESS (alias: taskId).' }),
      resources: z
        .strictObject({
          cpu: z.int().min(50).max(8000).default(1000).meta({ description: 'millicores (1000 = one core)' }),
          memory: z.int().min(32).max(16384).default(512).meta({ description: 'MiB' }),
        })
        .optional(),
      ttl_seconds: z
        .int()
        .min(10)
        .max(86_400)
        .default(900)
        .meta({ description: 'Hard lifetime (alias: ttlSeconds); terminated when it passes.' }),
      egress: SandboxEgress.default('none'),
      image: z
        .string()
        .regex(/^[a-z0-9][a-z0-9._\-/:@]{0,254}$/, { error: 'must be a container image reference' })
        .optional()
        .meta({ description: 'kubernetes only: overrides AGENT_CONTAINER_IMAGE.' }),
    }),
  )
  .meta({ id: 'RequestSandboxBody' });
export type RequestSandboxBody = z.infer<typeof RequestSandboxBody>;

/** Sandbox states; packages/db types its rows with it, and a db test holds it equal to the CHECK on sandboxes.status. */
export const sandboxStatusValues = ['PROVISIONING', 'RUNNING', 'TERMINATED', 'FAILED'] as const;
export const SandboxStatus = z.enum(sandboxStatusValues);
export type SandboxStatus = z.infer<typeof SandboxStatus>;

export const Sandbox = z
  .object({
    sandbox_id: Uuid,
    status: SandboxStatus,
    agent_id: Uuid,
    task_id: Uuid,
    provider: z.string().meta({ example: 'local' }),
    external_id: z.string().nullable().meta({ description: 'The provider’s id (Pod name, workspace name).' }),
    spec: z.record(z.string(), z.unknown()),
    created_at: z.string(),
    expires_at: z.string(),
    terminated_at: z.string().nullable(),
    termination_reason: z
      .string()
      .nullable()
      .meta({ description: 'terminated, task_finished, ttl, lost, or the provisioning error.' }),
  })
  .meta({ id: 'Sandbox' });

export const SandboxIdParams = z.strictObject({ sandboxId: Uuid });

export const SandboxExecBody = z
  .strictObject({
    command: z
      .array(z.string().max(16_384))
      .min(1)
      .max(512)
      .meta({
        description: 'argv: no shell unless you run one, e.g. ["sh", "-c", "make test"].',
        example: ['uname', '-a'],
      }),
    timeout_ms: z
      .int()
      .min(1)
      .max(3_600_000)
      .default(60_000)
      .meta({ description: 'Wall clock; the whole process tree is killed.' }),
    stdin: z
      .string()
      .max(512 * 1024)
      .optional(),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, { error: 'must be an environment variable name' }),
        z.string().max(16_384),
      )
      .optional(),
  })
  .meta({ id: 'SandboxExecBody' });
export type SandboxExecBody = z.infer<typeof SandboxExecBody>;

export const SandboxExecResult = z
  .object({
    exit_code: z.int().meta({ description: '124 after the timeout, 128+N after signal N.' }),
    stdout: z.string(),
    stderr: z.string(),
    truncated: z.boolean().meta({ description: 'stdout or stderr was cut at the output cap.' }),
    timed_out: z.boolean(),
    duration_ms: z.number(),
    error: z.object({ type: z.string(), detail: z.string() }).optional().meta({
      description: 'Only on a command answered after 20 s whose sandbox then failed (exit_code -1).',
    }),
  })
  .meta({ id: 'SandboxExecResult' });
