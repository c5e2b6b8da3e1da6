import type { Sandbox as SandboxSchema, TaskAttempt as TaskAttemptSchema } from '@devart/contracts';
import type { z } from 'zod';

/**
 * Types of contracts that export only their schema: inferred here from the schema, never written
 * by hand. Prefer the contract's own type where it has one.
 */
export type TaskAttempt = z.infer<typeof TaskAttemptSchema>;
export type Sandbox = z.infer<typeof SandboxSchema>;
