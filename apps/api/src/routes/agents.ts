import {
  Agent,
  AgentIdParams,
  AgentList,
  AgentListQuery,
  CreateAgentBody,
  CreatedAgent,
} from '@devart/contracts';
import type { Db } from '@devart/db';
import type { AgentKeyCache } from '../auth/agent-key-cache';
import { currentAgent, currentUser } from '../middleware/auth';
import { listAllAgents, recordAgentAlive, registerAgent, revokeAgentKey } from '../services/agents';
import type { BrokerAccess } from '../services/broker-access';
import { createRouter, protectedRoute } from './route-kit';

export function agentRoutes({
  db,
  brokerAccess,
  agentKeys,
}: {
  db: Db;
  brokerAccess: BrokerAccess;
  agentKeys: AgentKeyCache;
}) {
  const router = createRouter();

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/agents',
      tags: ['agents'],
      summary: 'Register an agent; its API key (and, on RabbitMQ, its broker credentials) are returned once',
      action: 'agents.create',
      request: { body: { required: true, content: { 'application/json': { schema: CreateAgentBody } } } },
      responses: {
        201: { description: 'Registered', content: { 'application/json': { schema: CreatedAgent } } },
      },
    }),
    async (c) => {
      const { agent, apiKey, broker } = await registerAgent(
        db,
        brokerAccess,
        c.req.valid('json'),
        currentUser(c.get('auth')).sub,
      );
      return c.json({ ...agent, api_key: apiKey, broker }, 201);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/agents',
      tags: ['agents'],
      summary: 'List agents (revoked ones with include_revoked=true)',
      action: 'agents.list',
      request: { query: AgentListQuery },
      responses: {
        200: { description: 'Agents', content: { 'application/json': { schema: AgentList } } },
      },
    }),
    async (c) => {
      const items = await listAllAgents(db, c.req.valid('query').include_revoked === 'true');
      return c.json({ items }, 200);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/agents/me',
      tags: ['agent work'],
      summary:
        'The calling agent itself (the SDK learns its id here, and calls it while idle as a sign of life)',
      action: 'agents.self',
      responses: {
        200: { description: 'The agent', content: { 'application/json': { schema: Agent } } },
      },
    }),
    async (c) => {
      const agent = currentAgent(c.get('auth'));
      // The SDK calls this while idle too: it keeps the agent from being marked OFFLINE.
      await recordAgentAlive(db, agent.id);
      return c.json(agent, 200);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'delete',
      path: '/api/agents/{agentId}',
      tags: ['agents'],
      summary: 'Revoke an agent: its key stops working at once (idempotent)',
      action: 'agents.revoke',
      request: { params: AgentIdParams },
      responses: {
        204: { description: 'Revoked' },
        503: { description: 'The key is revoked but the broker user could not be removed yet; retry' },
      },
      problems: [404],
    }),
    async (c) => {
      const { agentId } = c.req.valid('param');
      agentKeys.forget(agentId);
      await revokeAgentKey(db, brokerAccess, agentId);
      agentKeys.forget(agentId);
      return c.body(null, 204);
    },
  );

  return router;
}
