import type { CreateAgentBody } from '@devart/contracts';
import {
  type AgentRow,
  appendEvents,
  type Db,
  insertAgent,
  listAgents,
  markAgentSeen,
  markSilentAgentsOffline,
  type NewEvent,
  type PlatformEventType,
  type Queryable,
  revokeAgent,
} from '@devart/db';
import { announceRevocation } from '../auth/agent-revocations';
import { generateApiKey, hashApiKey } from '../auth/api-keys';
import type { AgentBrokerCredentials, BrokerAccess } from './broker-access';
import { NotFoundError, UnavailableError } from './domain-errors';

type AgentEventType = Extract<PlatformEventType, `agent.${string}`>;

/**
 * An agent event: the agent with its name, capabilities and status (never its key).
 * @example appendEvents(tx, [agentEvent('agent.registered', agent)]);
 */
export function agentEvent(type: AgentEventType, agent: AgentRow): NewEvent {
  return {
    type,
    agent_id: agent.id,
    data: {
      name: agent.name,
      capabilities: agent.capabilities,
      status: agent.status,
      ...(agent.last_heartbeat_at ? { last_seen_at: agent.last_heartbeat_at.toISOString() } : {}),
    },
  };
}

export interface RegisteredAgent {
  agent: AgentRow;
  /** Shown to the caller once; only its hash is kept. */
  apiKey: string;
  broker: AgentBrokerCredentials | null;
}

/**
 * Registers an agent with a fresh API key and, on RabbitMQ, its own broker user. Both happen or
 * neither: a broker that refuses rolls the agent back.
 */
export async function registerAgent(
  db: Db,
  brokerAccess: BrokerAccess,
  input: CreateAgentBody,
  /** The registering user; null for agents devart registers itself (demo agents). */
  createdBy: string | null,
): Promise<RegisteredAgent> {
  const apiKey = generateApiKey();
  return db.transaction(async (tx) => {
    const agent = await insertAgent(tx, {
      name: input.name,
      capabilities: [...new Set(input.capabilities)],
      apiKeyHash: hashApiKey(apiKey),
      createdBy,
    });
    appendEvents(tx, [agentEvent('agent.registered', agent)]);
    let broker: AgentBrokerCredentials | null;
    try {
      broker = await brokerAccess.provision(agent);
    } catch (error) {
      throw new UnavailableError(
        `The broker did not create the agent's user (${(error as Error).message}); nothing was registered. Try again.`,
      );
    }
    return { agent, apiKey, broker };
  });
}

export function listAllAgents(db: Db, includeRevoked: boolean): Promise<AgentRow[]> {
  return listAgents(db, { includeRevoked });
}

/** Revokes an agent's key at once, then its broker user; revoking again is harmless and retries the broker. */
export async function revokeAgentKey(db: Db, brokerAccess: BrokerAccess, agentId: string): Promise<AgentRow> {
  const agent = await db.transaction(async (tx) => {
    const revoked = await revokeAgent(tx, agentId);
    if (revoked?.revoked_now) appendEvents(tx, [agentEvent('agent.revoked', revoked.agent)]);
    // Every time, not only the first: a repeated DELETE also reaches replicas that missed the first.
    if (revoked) await announceRevocation(tx, agentId);
    return revoked?.agent;
  });
  if (!agent) throw new NotFoundError(`No agent ${agentId}.`);
  try {
    await brokerAccess.revoke(agentId);
  } catch (error) {
    throw new UnavailableError(
      `The agent's API key is revoked, but removing its broker user failed (${(error as Error).message}). ` +
        'Send the DELETE again.',
    );
  }
  return agent;
}

/**
 * Records an agent's sign of life inside the caller's transaction (a start or a complete): an
 * agent that was OFFLINE is IDLE again and agent.online is appended.
 */
export async function agentSeen(tx: Queryable, agentId: string): Promise<void> {
  if (recentSigns.due(agentId)) await recordSign(tx, agentId);
}

async function recordSign(tx: Queryable, agentId: string): Promise<void> {
  const back = await markAgentSeen(tx, agentId);
  if (back) appendEvents(tx, [agentEvent('agent.online', back)]);
}

/**
 * The agents this process recorded a sign of life for in the last second. markAgentSeen ignores
 * signs less than a second apart anyway, so a busy agent's next calls skip the statement rather
 * than send one that changes nothing: one round trip a second per agent instead of one a request.
 * An agent cannot go OFFLINE meanwhile, since that takes at least a second of silence
 * (AGENT_OFFLINE_SECONDS ≥ 1).
 */
const recentSigns = {
  seenAt: new Map<string, number>(),
  due(agentId: string): boolean {
    const now = Date.now();
    const last = this.seenAt.get(agentId);
    if (last !== undefined && now - last < 1_000) return false;
    if (this.seenAt.size >= 10_000) {
      for (const [id, at] of this.seenAt) if (now - at >= 1_000) this.seenAt.delete(id);
    }
    this.seenAt.set(agentId, now);
    return true;
  },
};

/** An agent's call with no task in it (the SDK's presence ping): a sign of life of its own. */
export async function recordAgentAlive(db: Db, agentId: string): Promise<void> {
  // Rare (every 30 s), so always sent: it is how an agent marked OFFLINE while idle comes back.
  recentSigns.due(agentId);
  await db.transaction((tx) => recordSign(tx, agentId));
}

/**
 * Marks OFFLINE the agents silent for `afterSeconds` (see markSilentAgentsOffline) and appends
 * agent.offline for each, in one transaction; returns them. Safe in every replica at once.
 */
export async function markAgentsOffline(db: Db, afterSeconds: number): Promise<AgentRow[]> {
  return db.transaction(async (tx) => {
    const gone = await markSilentAgentsOffline(tx, afterSeconds);
    appendEvents(
      tx,
      gone.map((agent) => agentEvent('agent.offline', agent)),
    );
    return gone;
  });
}
