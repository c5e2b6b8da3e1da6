import type { AgentStatus } from '@devart/contracts';
import type { Queryable } from './client';

export interface AgentRow {
  id: string;
  name: string;
  capabilities: string[];
  status: AgentStatus;
  last_heartbeat_at: Date | null;
  created_by: string | null;
  created_at: Date;
  revoked_at: Date | null;
}

const agentColumns = 'id, name, capabilities, status, last_heartbeat_at, created_by, created_at, revoked_at';

export async function insertAgent(
  db: Queryable,
  input: { name: string; capabilities: string[]; apiKeyHash: string; createdBy: string | null },
): Promise<AgentRow> {
  const { rows } = await db.query<AgentRow>(
    `INSERT INTO agents (name, capabilities, api_key_hash, created_by) VALUES ($1, $2, $3, $4) RETURNING ${agentColumns}`,
    [input.name, input.capabilities, input.apiKeyHash, input.createdBy],
  );
  return rows[0]!;
}

export async function listAgents(db: Queryable, { includeRevoked = false } = {}): Promise<AgentRow[]> {
  const { rows } = await db.query<AgentRow>(
    `SELECT ${agentColumns} FROM agents ${includeRevoked ? '' : 'WHERE revoked_at IS NULL'} ORDER BY created_at, id`,
  );
  return rows;
}

/** The live (not revoked) agent holding this API key hash. */
export async function findAgentByKeyHash(db: Queryable, apiKeyHash: string): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow>(
    `SELECT ${agentColumns} FROM agents WHERE api_key_hash = $1 AND revoked_at IS NULL`,
    [apiKeyHash],
  );
  return rows[0];
}

/** Revokes an agent; revoking twice keeps the first time. Undefined when no such agent exists. */
export async function revokeAgent(db: Queryable, id: string): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow>(
    `UPDATE agents SET revoked_at = coalesce(revoked_at, now()), status = 'OFFLINE'
     WHERE id = $1 RETURNING ${agentColumns}`,
    [id],
  );
  return rows[0];
}

/**
 * Sets BUSY or IDLE from the tasks each live agent holds now, where its status says otherwise;
 * returns how many agents it corrected. The transitions set the status as they go, but an agent
 * working several tasks races with itself: two completes that run at once each still see the
 * other task IN_PROGRESS in their snapshot and both leave the agent BUSY (and a complete racing a
 * start can leave it IDLE). Run on the lease reaper's timer, this bounds how long such a status
 * can stay wrong, without a lock on the agent's row in every start and complete.
 */
export async function reconcileAgentStatus(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(
    `WITH busy AS (
       SELECT DISTINCT agent_id AS id FROM tasks WHERE status = 'IN_PROGRESS' AND agent_id IS NOT NULL
     ), wanted AS (
       SELECT a.id, CASE WHEN busy.id IS NULL THEN 'IDLE' ELSE 'BUSY' END AS status
       FROM agents a LEFT JOIN busy ON busy.id = a.id
       WHERE a.revoked_at IS NULL AND a.status IN ('IDLE', 'BUSY')
     )
     UPDATE agents SET status = wanted.status
     FROM wanted WHERE agents.id = wanted.id AND agents.status <> wanted.status`,
  );
  return rowCount;
}

/**
 * Revokes the agents devart registered for itself (created_by NULL) whose name starts with
 * `namePrefix`: their keys died with the process that ran them. Returns how many.
 */
export async function revokeSelfRegisteredAgents(db: Queryable, namePrefix: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE agents SET revoked_at = now(), status = 'OFFLINE'
     WHERE name LIKE $1 AND revoked_at IS NULL AND created_by IS NULL`,
    [`${namePrefix}%`],
  );
  return rowCount;
}

/** Agents that are not revoked, counted by status (the metrics read it at scrape time). */
export async function countAgentsByStatus(db: Queryable): Promise<{ status: string; n: number }[]> {
  const { rows } = await db.query<{ status: string; n: number }>(
    'SELECT status, count(*)::int AS n FROM agents WHERE revoked_at IS NULL GROUP BY status',
  );
  return rows;
}
