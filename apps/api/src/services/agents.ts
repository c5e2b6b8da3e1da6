import type { CreateAgentBody } from '@devart/contracts';
import { type AgentRow, type Db, getAgent, insertAgent, listAgents, revokeAgent } from '@devart/db';
import { generateApiKey, hashApiKey } from '../auth/api-keys';
import { ProblemError } from '../problem';

export interface RegisteredAgent {
  agent: AgentRow;
  /** Shown to the caller once; only its hash is kept. */
  apiKey: string;
}

export async function registerAgent(
  db: Db,
  input: CreateAgentBody,
  createdBy: string,
): Promise<RegisteredAgent> {
  const apiKey = generateApiKey();
  const agent = await insertAgent(db, {
    name: input.name,
    capabilities: [...new Set(input.capabilities)],
    apiKeyHash: hashApiKey(apiKey),
    createdBy,
  });
  return { agent, apiKey };
}

export function listAllAgents(db: Db, includeRevoked: boolean): Promise<AgentRow[]> {
  return listAgents(db, { includeRevoked });
}

/** Revokes an agent's key at once; revoking again is harmless. */
export async function revokeAgentKey(db: Db, agentId: string): Promise<AgentRow> {
  const agent = await revokeAgent(db, agentId);
  if (!agent) throw new ProblemError('not_found', `No agent ${agentId}.`);
  return agent;
}

export { getAgent };
