import type { WorkflowDefinitionBody } from '@devart/contracts';
import { validateWorkflow } from '@devart/core';
import { type Db, getWorkflow, insertWorkflow, listWorkflows, type WorkflowRow } from '@devart/db';
import { ProblemError } from '../problem';
import { decodeCursor, encodeCursor } from './cursor';

/**
 * Stores a workflow definition after checking it as a whole: the DAG (cycles are named), step
 * keys, and every template against the variables and the steps upstream of it.
 */
export async function createWorkflow(
  db: Db,
  body: WorkflowDefinitionBody,
  createdBy: string,
): Promise<WorkflowRow> {
  const validation = validateWorkflow(body);
  if (!validation.ok) {
    const errors = validation.problems.map((p) => ({ location: 'body', field: p.path, message: p.message }));
    throw new ProblemError('validation', errors.map((e) => `body.${e.field}: ${e.message}`).join('; '), {
      errors,
    });
  }
  const { name, description, ...definition } = body;
  return insertWorkflow(db, { name, description: description ?? null, definition, createdBy });
}

export async function findWorkflow(db: Db, workflowId: string): Promise<WorkflowRow> {
  const workflow = await getWorkflow(db, workflowId);
  if (!workflow) throw new ProblemError('not_found', `No workflow ${workflowId}.`);
  return workflow;
}

export async function listWorkflowPage(db: Db, { cursor, limit }: { cursor?: string; limit: number }) {
  const page = await listWorkflows(db, { after: cursor ? decodeCursor(cursor) : undefined, limit });
  return { items: page.items, next_cursor: page.last ? encodeCursor(page.last) : null };
}
