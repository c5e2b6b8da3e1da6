import { appendEvents, type Db, revokeSelfRegisteredAgents } from '@devart/db';
import { agentEvent, registerAgent } from './agents';
import { noBrokerAccess } from './broker-access';

export const DEMO_AGENT_PREFIX = 'demo-agent-';

/**
 * Registers `count` fresh demo agents for the agents a devart process runs itself, revoking those
 * of earlier runs (their keys died with that process). Returns their API keys.
 */
export async function registerDemoAgents(
  db: Db,
  { count, capabilities }: { count: number; capabilities: string[] },
): Promise<{ id: string; apiKey: string }[]> {
  await db.transaction(async (tx) => {
    const revoked = await revokeSelfRegisteredAgents(tx, DEMO_AGENT_PREFIX);
    appendEvents(
      tx,
      revoked.map((agent) => agentEvent('agent.revoked', agent)),
    );
  });
  const agents: { id: string; apiKey: string }[] = [];
  for (let i = 1; i <= count; i++) {
    const { agent, apiKey } = await registerAgent(
      db,
      noBrokerAccess,
      { name: `${DEMO_AGENT_PREFIX}${i}`, capabilities },
      null,
    );
    agents.push({ id: agent.id, apiKey });
  }
  return agents;
}
