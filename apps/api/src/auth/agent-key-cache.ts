import type { AgentRow } from '@devart/db';

/**
 * Remembers which agent holds an API key for a few seconds, so an agent's start/heartbeat/complete
 * calls do not each pay a lookup. Every call with a key goes through `find`, so a revoke applies to
 * all of them. In this process it takes effect at once (`forget`); other replicas hear of it
 * through `followRevocations` (a NOTIFY at the revoke's commit), and `ttlMs` bounds it only when
 * that notification is lost.
 */
export function createAgentKeyCache({
  lookup,
  // 5 s, not compared with other values: long enough that an agent's start/complete traffic pays one
  // lookup (docs/performance.md), short enough to bound how long a revoke takes on other replicas.
  ttlMs = 5000,
  // Not measured; bounds memory far above the number of agents an installation registers.
  maxEntries = 10_000,
  now = Date.now,
}: {
  lookup: (hash: string) => Promise<AgentRow | undefined>;
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}) {
  const entries = new Map<string, { agent: AgentRow; expires: number }>();
  return {
    async find(hash: string): Promise<AgentRow | undefined> {
      const hit = entries.get(hash);
      if (hit && hit.expires > now()) return hit.agent;
      const agent = await lookup(hash);
      if (!agent) {
        entries.delete(hash);
        return undefined;
      }
      if (entries.size >= maxEntries) entries.clear();
      entries.set(hash, { agent, expires: now() + ttlMs });
      return agent;
    },
    /** Drops every cached key of this agent (called when it is revoked). */
    forget(agentId: string): void {
      for (const [hash, entry] of entries) if (entry.agent.id === agentId) entries.delete(hash);
    },
    /** Drops every key, when revokes may have been missed (LISTEN reconnected). */
    clear(): void {
      entries.clear();
    },
  };
}

export type AgentKeyCache = ReturnType<typeof createAgentKeyCache>;
