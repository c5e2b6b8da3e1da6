import type { CreateAgentBody } from '@devart/contracts';
import { type AgentRow, type Db, insertAgent, listAgents, revokeAgent } from '@devart/db';
import { generateApiKey, hashApiKey } from '../auth/api-keys';
import type { AgentBrokerCredentials, BrokerAccess } from './broker-access';
import { NotFoundError, UnavailableError } from './domain-errors';

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
  const agent = await revokeAgent(db, agentId);
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
