import { type Workflow, WorkflowDefinitionBody } from '@devart/contracts';
import type { z } from 'zod';

/** What `workflow.definition` holds: the body that created it, less name and description. */
const StoredDefinition = WorkflowDefinitionBody.omit({ name: true, description: true });
export type WorkflowDefinition = z.infer<typeof StoredDefinition>;

/**
 * Reads a workflow's stored definition with the contract's own schema (filling its defaults:
 * `depends_on: []`, `payload: {}`), or says why it cannot be drawn.
 * @example readDefinition(workflow) // { ok: true, definition: { steps: [...], variables: {...} } }
 */
export function readDefinition(
  workflow: Pick<Workflow, 'definition'>,
): { ok: true; definition: WorkflowDefinition } | { ok: false; error: string } {
  const parsed = StoredDefinition.safeParse(workflow.definition);
  if (parsed.success) return { ok: true, definition: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false, error: `${issue?.path.join('.') || 'definition'}: ${issue?.message ?? 'unreadable'}` };
}
