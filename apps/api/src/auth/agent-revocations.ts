import type { Db, Queryable } from '@devart/db';
import type { Logger } from 'pino';
import type { AgentKeyCache } from './agent-key-cache';

/** The channel a revoke announces the agent's id on, so every replica drops its cached key at once. */
export const AGENT_REVOKED_CHANNEL = 'devart_agent_revoked';

/**
 * Announces a revoke inside the transaction that makes it: PostgreSQL delivers the NOTIFY at
 * commit (never for a rollback), so no replica drops a key that is still valid and then caches
 * it again before the revoke is visible.
 * @example
 * await db.transaction(async (tx) => { await revokeAgent(tx, id); await announceRevocation(tx, id); });
 */
export async function announceRevocation(tx: Queryable, agentId: string): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [AGENT_REVOKED_CHANNEL, agentId]);
}

/**
 * Makes `agentKeys` forget an agent as soon as any replica announces its revoke. After LISTEN
 * reconnects (`db.listen` calls back with '') announcements may have been missed, so the whole
 * cache is dropped: one lookup per key again, never a revoked key accepted until its TTL.
 * Resolves to the function that stops listening.
 */
export async function followRevocations({
  db,
  agentKeys,
  logger,
}: {
  db: Pick<Db, 'listen'>;
  agentKeys: AgentKeyCache;
  logger: Logger;
}): Promise<() => Promise<void>> {
  try {
    return await db.listen(AGENT_REVOKED_CHANNEL, (agentId) => {
      if (agentId) agentKeys.forget(agentId);
      else agentKeys.clear();
    });
  } catch (error) {
    // Revokes still take effect here at once and elsewhere within the cache's TTL (5 s).
    logger.warn({ err: error }, 'agent keys: LISTEN failed; revokes on other replicas apply within 5 s');
    return async () => {};
  }
}
