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
const qualified = (alias: string) => agentColumns.replaceAll(/(\w+)/g, `${alias}.$1`);

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

/**
 * Revokes an agent; revoking twice keeps the first time, and `revoked_now` says whether this call
 * revoked it (the row lock makes concurrent revokes agree on one). Undefined when no such agent exists.
 */
export async function revokeAgent(
  db: Queryable,
  id: string,
): Promise<{ agent: AgentRow; revoked_now: boolean } | undefined> {
  const { rows } = await db.query<AgentRow & { revoked_now: boolean }>(
    `WITH previous AS (SELECT id, revoked_at FROM agents WHERE id = $1 FOR UPDATE)
     UPDATE agents a SET revoked_at = coalesce(a.revoked_at, now()), status = 'OFFLINE'
     FROM previous WHERE a.id = previous.id
     RETURNING ${qualified('a')}, previous.revoked_at IS NULL AS revoked_now`,
    [id],
  );
  const row = rows[0];
  if (!row) return undefined;
  const { revoked_now, ...agent } = row;
  return { agent, revoked_now };
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
 * `namePrefix`: their keys died with the process that ran them. Returns them.
 */
export async function revokeSelfRegisteredAgents(db: Queryable, namePrefix: string): Promise<AgentRow[]> {
  const { rows } = await db.query<AgentRow>(
    `UPDATE agents SET revoked_at = now(), status = 'OFFLINE'
     WHERE name LIKE $1 AND revoked_at IS NULL AND created_by IS NULL
     RETURNING ${agentColumns}`,
    [`${namePrefix}%`],
  );
  return rows;
}

/**
 * An agent's sign of life (a start or a complete): an OFFLINE agent becomes IDLE and is returned,
 * so the caller records it online; any other live agent only has its last_heartbeat_at moved on
 * (at most once a second, as heartbeats do, so most calls lock nothing). The row is locked before
 * its status is read: a concurrent markSilentAgentsOffline is either seen (and undone, reported
 * here) or sees the fresh last_heartbeat_at, so no comeback goes unreported.
 */
export async function markAgentSeen(db: Queryable, agentId: string): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow & { woke: boolean }>(
    `WITH previous AS (
       SELECT id, status FROM agents
       WHERE id = $1 AND revoked_at IS NULL
         AND (status = 'OFFLINE' OR last_heartbeat_at IS NULL OR last_heartbeat_at < now() - interval '1 second')
       FOR UPDATE
     )
     UPDATE agents a SET last_heartbeat_at = now(),
       status = CASE WHEN previous.status = 'OFFLINE' THEN 'IDLE' ELSE a.status END
     FROM previous WHERE a.id = previous.id
     RETURNING ${qualified('a')}, previous.status = 'OFFLINE' AS woke`,
    [agentId],
  );
  const row = rows[0];
  if (!row?.woke) return undefined;
  const { woke: _woke, ...agent } = row;
  return agent;
}

/**
 * Live agents silent for `afterSeconds` (no heartbeat, start or complete since, nor registration)
 * and holding no IN_PROGRESS task become OFFLINE; returns those this call changed. Guarded on
 * the status, so among replicas running it at once each agent goes OFFLINE exactly once; an
 * agent holding a task is the lease reaper's business, not this one's.
 */
export async function markSilentAgentsOffline(db: Queryable, afterSeconds: number): Promise<AgentRow[]> {
  const { rows } = await db.query<AgentRow>(
    `UPDATE agents a SET status = 'OFFLINE'
     WHERE a.revoked_at IS NULL AND a.status <> 'OFFLINE'
       AND coalesce(a.last_heartbeat_at, a.created_at) < now() - make_interval(secs => $1::float8)
       AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.agent_id = a.id AND t.status = 'IN_PROGRESS')
     RETURNING ${qualified('a')}`,
    [afterSeconds],
  );
  return rows;
}

/** Agents that are not revoked, counted by status (the metrics read it at scrape time). */
export async function countAgentsByStatus(db: Queryable): Promise<{ status: string; n: number }[]> {
  const { rows } = await db.query<{ status: string; n: number }>(
    'SELECT status, count(*)::int AS n FROM agents WHERE revoked_at IS NULL GROUP BY status',
  );
  return rows;
}
