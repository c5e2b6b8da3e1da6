import type {
  PublishMarketplaceItemBody,
  WorkflowDefinitionBody,
  WorkflowExportQuery,
} from '@devart/contracts';
import { validateWorkflow } from '@devart/core';
import {
  type Db,
  getWorkflow,
  insertWorkflow,
  listWorkflows,
  type Queryable,
  unservedCapabilities,
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

/**
 * A marketplace name from a workflow's name: lowercase, runs of other characters as one "-",
 * starting with a letter or digit, at most 64 characters.
 *
 * @example marketplaceSlug('Release Check (v2)') // 'release-check-v2'
 */
export function marketplaceSlug(name: string): string {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64)
    .replace(/[^a-z0-9]+$/, '');
  return slug || 'workflow';
}

/**
 * The body of POST /api/marketplace that publishes this workflow: its definition as the
 * manifest, named after it (or `name`), version 1.0.0 (or `version`).
 */
export async function exportWorkflow(
  db: Db,
  workflowId: string,
  query: WorkflowExportQuery,
): Promise<PublishMarketplaceItemBody> {
  const workflow = await findWorkflow(db, workflowId);
  const description = workflow.description ?? undefined;
  return {
    item_type: 'workflow',
    name: query.name ?? marketplaceSlug(workflow.name),
    version: query.version ?? '1.0.0',
    ...(description !== undefined ? { description } : {}),
    manifest: {
      name: workflow.name,
      ...(description !== undefined ? { description } : {}),
      ...(workflow.definition as Record<string, unknown>),
    },
  };
}

/**
 * One warning per step whose capability no registered (non-revoked) agent serves: such a step's
 * task waits in TODO until an agent with it is registered. The definition is not refused for it —
 * agents come and go — but its author should hear it.
 */
export async function capabilityWarnings(
  db: Queryable,
  steps: readonly { key: string; capability?: string | null }[],
): Promise<string[]> {
  const wanted = [...new Set(steps.flatMap((s) => (s.capability ? [s.capability] : [])))];
  const unserved = new Set(await unservedCapabilities(db, wanted));
  return steps
    .filter((s) => s.capability && unserved.has(s.capability))
    .map(
      (s) =>
        `Step "${s.key}" needs capability "${s.capability}", which no registered agent serves: its task will ` +
        `wait in TODO until an agent with it is registered (POST /api/agents).`,
    );
}
