import type { SandboxStatus } from '@devart/contracts';
import type { Queryable } from './client';

export interface SandboxRow {
  id: string;
  agent_id: string;
  task_id: string;
  provider: string;
  external_id: string | null;
  status: SandboxStatus;
  spec: Record<string, unknown>;
  created_at: Date;
  expires_at: Date;
  terminated_at: Date | null;
  termination_reason: string | null;
}

const columns =
  'id, agent_id, task_id, provider, external_id, status, spec, created_at, expires_at, terminated_at, termination_reason';
const live = `status IN ('PROVISIONING', 'RUNNING')`;

/**
 * Records a sandbox for a task the agent holds IN_PROGRESS, under the task's row lock: a
 * completion or failure of the task waits for it (and the sweep then terminates the sandbox),
 * and concurrent requests for one task count each other. Run it in a transaction: the count is
 * a second statement so that, under READ COMMITTED, it sees the sandboxes of the requests the
 * lock made it wait for. Returns why not when it refuses.
 */
export async function insertSandboxForTask(
  tx: Queryable,
  input: {
    agentId: string;
    taskId: string;
    provider: string;
    spec: Record<string, unknown>;
    ttlSeconds: number;
    maxLivePerTask: number;
  },
): Promise<
  | { outcome: 'created'; sandbox: SandboxRow }
  | { outcome: 'no_task' | 'not_held' | 'not_in_progress' | 'too_many' }
> {
  const { rows: tasks } = await tx.query<{ status: string; agent_id: string | null }>(
    'SELECT status, agent_id FROM tasks WHERE id = $1 FOR UPDATE',
    [input.taskId],
  );
  const task = tasks[0];
  if (!task) return { outcome: 'no_task' };
  if (task.status !== 'IN_PROGRESS') return { outcome: 'not_in_progress' };
  if (task.agent_id !== input.agentId) return { outcome: 'not_held' };
  const { rows } = await tx.query<SandboxRow>(
    `INSERT INTO sandboxes (agent_id, task_id, provider, spec, expires_at)
     SELECT $1, $2, $3, $4::jsonb, now() + make_interval(secs => $5)
     WHERE (SELECT count(*) FROM sandboxes s WHERE s.task_id = $2 AND s.${live}) < $6
     RETURNING ${columns}`,
    [
      input.agentId,
      input.taskId,
      input.provider,
      JSON.stringify(input.spec),
      input.ttlSeconds,
      input.maxLivePerTask,
    ],
  );
  return rows[0] ? { outcome: 'created', sandbox: rows[0] } : { outcome: 'too_many' };
}

/** PROVISIONING → RUNNING with the provider's id; undefined when it was terminated meanwhile. */
export async function markSandboxRunning(
  db: Queryable,
  id: string,
  externalId: string,
): Promise<SandboxRow | undefined> {
  const { rows } = await db.query<SandboxRow>(
    `UPDATE sandboxes SET status = 'RUNNING', external_id = $2 WHERE id = $1 AND status = 'PROVISIONING'
     RETURNING ${columns}`,
    [id, externalId],
  );
  return rows[0];
}

/** A live sandbox whose provisioning failed; undefined when it had ended already. */
export async function markSandboxFailed(
  db: Queryable,
  id: string,
  reason: string,
): Promise<SandboxRow | undefined> {
  const { rows } = await db.query<SandboxRow>(
    `UPDATE sandboxes SET status = 'FAILED', terminated_at = now(), termination_reason = $2
     WHERE id = $1 AND ${live} RETURNING ${columns}`,
    [id, reason.slice(0, 2000)],
  );
  return rows[0];
}

export async function getSandbox(db: Queryable, id: string): Promise<SandboxRow | undefined> {
  const { rows } = await db.query<SandboxRow>(`SELECT ${columns} FROM sandboxes WHERE id = $1`, [id]);
  return rows[0];
}

/** A live sandbox and whether its agent still holds its task IN_PROGRESS. */
export async function getSandboxWithTask(
  db: Queryable,
  id: string,
): Promise<(SandboxRow & { task_held: boolean }) | undefined> {
  const { rows } = await db.query<SandboxRow & { task_held: boolean }>(
    `SELECT ${columns.replaceAll(/(\w+)/g, 's.$1')},
            coalesce(t.status = 'IN_PROGRESS' AND t.agent_id = s.agent_id, false) AS task_held
     FROM sandboxes s LEFT JOIN tasks t ON t.id = s.task_id WHERE s.id = $1`,
    [id],
  );
  return rows[0];
}

/**
 * Marks a live sandbox TERMINATED; the one caller that wins this guarded update removes it at
 * the provider. Undefined when it was already terminated (or failed).
 */
export async function claimSandboxTermination(
  db: Queryable,
  id: string,
  reason: string,
): Promise<SandboxRow | undefined> {
  const { rows } = await db.query<SandboxRow>(
    `UPDATE sandboxes SET status = 'TERMINATED', terminated_at = now(), termination_reason = $2
     WHERE id = $1 AND ${live} RETURNING ${columns}`,
    [id, reason],
  );
  return rows[0];
}

/** Live sandboxes of one provider whose TTL passed or whose task left IN_PROGRESS (or its agent), with the reason. */
export async function sandboxesToReap(
  db: Queryable,
  provider: string,
  // Not measured; bounds one sweep (each sandbox is a provider call), the rest go on the next one.
  limit = 100,
): Promise<{ id: string; reason: 'ttl' | 'task_finished' }[]> {
  const { rows } = await db.query<{ id: string; reason: 'ttl' | 'task_finished' }>(
    `SELECT s.id, CASE WHEN s.expires_at <= now() THEN 'ttl' ELSE 'task_finished' END AS reason
     FROM sandboxes s JOIN tasks t ON t.id = s.task_id
     WHERE s.provider = $1 AND s.${live}
       AND (s.expires_at <= now() OR t.status <> 'IN_PROGRESS' OR t.agent_id IS DISTINCT FROM s.agent_id)
     ORDER BY s.created_at LIMIT $2`,
    [provider, limit],
  );
  return rows;
}

/**
 * What start-up reconciliation must keep: the provider ids of live sandboxes, and whether a
 * provision may still be in flight (a PROVISIONING row younger than `graceSeconds`, whose
 * provider id is not known yet).
 */
export async function liveSandboxIds(
  db: Queryable,
  provider: string,
  graceSeconds: number,
): Promise<{ externalIds: Set<string>; provisioning: number }> {
  const { rows } = await db.query<{ external_id: string | null; young: boolean }>(
    `SELECT external_id, created_at > now() - make_interval(secs => $2) AS young
     FROM sandboxes WHERE provider = $1 AND ${live}`,
    [provider, graceSeconds],
  );
  return {
    externalIds: new Set(rows.flatMap((r) => (r.external_id ? [r.external_id] : []))),
    provisioning: rows.filter((r) => r.external_id === null && r.young).length,
  };
}

/** Live rows whose provider sandbox is gone (or never came): recorded as terminated; returns them. */
export async function markSandboxesLost(
  db: Queryable,
  provider: string,
  keep: { externalIds: string[]; graceSeconds: number },
): Promise<SandboxRow[]> {
  const { rows } = await db.query<SandboxRow>(
    `UPDATE sandboxes SET status = 'TERMINATED', terminated_at = now(), termination_reason = 'lost'
     WHERE provider = $1 AND ${live}
       AND (external_id IS NULL AND created_at <= now() - make_interval(secs => $3)
            OR external_id IS NOT NULL AND NOT (external_id = ANY($2::text[])))
     RETURNING ${columns}`,
    [provider, keep.externalIds, keep.graceSeconds],
  );
  return rows;
}

/** Sandboxes by provider and status, for metrics. */
export async function sandboxCounts(
  db: Queryable,
): Promise<{ provider: string; status: SandboxStatus; n: number }[]> {
  const { rows } = await db.query<{ provider: string; status: SandboxStatus; n: number }>(
    'SELECT provider, status, count(*)::int AS n FROM sandboxes GROUP BY provider, status',
  );
  return rows;
}
