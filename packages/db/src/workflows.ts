import type { Queryable } from './client';
import { keysetPage, keysetQuery, newestFirst } from './keyset';

export interface WorkflowRow {
  id: string;
  name: string;
  description: string | null;
  definition: unknown;
  created_by: string | null;
  created_at: Date;
  /** The marketplace item it was installed from, if any. */
  marketplace_item_id: string | null;
}

const columns = 'id, name, description, definition, created_by, created_at, marketplace_item_id';

export async function insertWorkflow(
  db: Queryable,
  input: {
    name: string;
    description: string | null;
    definition: unknown;
    createdBy: string | null;
    marketplaceItemId?: string;
  },
): Promise<WorkflowRow> {
  const { rows } = await db.query<WorkflowRow>(
    `INSERT INTO workflows (name, description, definition, created_by, marketplace_item_id)
     VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING ${columns}`,
    [
      input.name,
      input.description,
      JSON.stringify(input.definition),
      input.createdBy,
      input.marketplaceItemId ?? null,
    ],
  );
  return rows[0]!;
}

export async function getWorkflow(db: Queryable, id: string): Promise<WorkflowRow | undefined> {
  const { rows } = await db.query<WorkflowRow>(`SELECT ${columns} FROM workflows WHERE id = $1`, [id]);
  return rows[0];
}

/** The oldest workflow named `name` installed from the marketplace item `itemId`, if any. */
export async function findInstalledWorkflow(
  db: Queryable,
  itemId: string,
  name: string,
): Promise<WorkflowRow | undefined> {
  const { rows } = await db.query<WorkflowRow>(
    `SELECT ${columns} FROM workflows WHERE marketplace_item_id = $1 AND name = $2
     ORDER BY created_at, id LIMIT 1`,
    [itemId, name],
  );
  return rows[0];
}

/**
 * Those of `capabilities` that no registered (non-revoked) agent serves, in the order given.
 *
 * @example await unservedCapabilities(db, ['echo', 'git']) // ['git'] when only echo is served
 */
export async function unservedCapabilities(db: Queryable, capabilities: string[]): Promise<string[]> {
  if (capabilities.length === 0) return [];
  const { rows } = await db.query<{ capability: string }>(
    `SELECT c.capability FROM unnest($1::text[]) WITH ORDINALITY AS c (capability, n)
     WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.revoked_at IS NULL AND c.capability = ANY (a.capabilities))
     ORDER BY c.n`,
    [capabilities],
  );
  return rows.map((r) => r.capability);
}

/** The order of the workflow list; a cursor carries a position in it. */
export const workflowListOrder = newestFirst('created_at');

/** Newest first, keyset-paginated like tasks. */
export async function listWorkflows(
  db: Queryable,
  { after, limit }: { after?: string[]; limit: number },
): Promise<{ items: WorkflowRow[]; next?: string[] }> {
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const page = keysetQuery(workflowListOrder, after, param);
  const { rows } = await db.query<WorkflowRow & { keyset_position: string[] }>(
    `SELECT ${columns}, ${page.position} FROM workflows WHERE ${page.after}
     ORDER BY ${page.orderBy} LIMIT ${param(limit + 1)}`,
    params,
  );
  return keysetPage(rows, limit);
}

/**
 * Replaces the definition of the workflow named `name` with `to`, but only where devart seeded it
 * (no creator, not from the marketplace) and nobody changed it since (its definition is still
 * exactly `from`). Returns the workflow's id when it replaced one.
 */
export async function upgradeSeededWorkflow(
  db: Queryable,
  input: { name: string; from: unknown; to: unknown; description: string | null },
): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE workflows SET definition = $2::jsonb, description = $3
     WHERE name = $1 AND created_by IS NULL AND marketplace_item_id IS NULL AND definition = $4::jsonb
     RETURNING id`,
    [input.name, JSON.stringify(input.to), input.description, JSON.stringify(input.from)],
  );
  return rows[0]?.id;
}

/** Whether any workflow has this name (names are not unique: several may). */
export async function workflowNameTaken(db: Queryable, name: string): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM workflows WHERE name = $1 LIMIT 1', [name]);
  return rowCount > 0;
}
