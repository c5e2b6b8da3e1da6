import type { WorkflowDefinitionBody } from '@devart/contracts';
import { validateWorkflow } from '@devart/core';
import {
  type Db,
  getWorkflow,
  insertWorkflow,
  listWorkflows,
  type Queryable,
  type WorkflowRow,
  workflowListOrder,
} from '@devart/db';
import { decodeCursor, encodeCursor } from './cursor';
import { type FieldError, NotFoundError, ValidationError } from './domain-errors';
import { githubTriggerProblems, withGithubVariable } from './github-triggers';

/**
 * Stores a workflow definition after checking it as a whole: the DAG (cycles are named), step
 * keys, and every template against the variables and the steps upstream of it.
 */
export async function createWorkflow(
  db: Queryable,
  body: WorkflowDefinitionBody,
  createdBy: string,
  { marketplaceItemId }: { marketplaceItemId?: string } = {},
): Promise<WorkflowRow> {
  const errors = workflowProblems(body);
  if (errors.length > 0) {
    throw new ValidationError(errors);
  }
  const { name, description, ...definition } = body;
  return insertWorkflow(db, {
    name,
    description: description ?? null,
    definition,
    createdBy,
    marketplaceItemId,
  });
}

/** The whole-definition checks as field errors of the body; empty when it is sound. */
export function workflowProblems(body: WorkflowDefinitionBody): FieldError[] {
  const validation = validateWorkflow(withGithubVariable(body));
  const problems = validation.ok
    ? []
    : validation.problems.map((p) => ({ location: 'body', field: p.path, message: p.message }));
  return [...problems, ...githubTriggerProblems(body)];
}

export async function findWorkflow(db: Db, workflowId: string): Promise<WorkflowRow> {
  const workflow = await getWorkflow(db, workflowId);
  if (!workflow) throw new NotFoundError(`No workflow ${workflowId}.`);
  return workflow;
}

export async function listWorkflowPage(db: Db, { cursor, limit }: { cursor?: string; limit: number }) {
  const page = await listWorkflows(db, {
    after: cursor ? decodeCursor(cursor, workflowListOrder) : undefined,
    limit,
  });
  return { items: page.items, next_cursor: page.next ? encodeCursor(page.next) : null };
}
