import { z } from 'zod';
import { Capability, Uuid } from './common';

export const CreateAgentBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    capabilities: z.array(Capability).max(64).default([]),
  })
  .meta({ id: 'CreateAgentBody' });
export type CreateAgentBody = z.infer<typeof CreateAgentBody>;

/** Agent states; packages/db types its rows with it, and a db test holds it equal to the CHECK on agents.status. */
export const agentStatusValues = ['IDLE', 'BUSY', 'OFFLINE'] as const;
export const AgentStatus = z.enum(agentStatusValues);
export type AgentStatus = z.infer<typeof AgentStatus>;

export const Agent = z
  .object({
    id: Uuid,
    name: z.string(),
    capabilities: z.array(z.string()),
    status: AgentStatus,
    last_heartbeat_at: z.string().nullable(),
    created_at: z.string(),
    revoked_at: z.string().nullable(),
  })
  .meta({ id: 'Agent' });
export type Agent = z.infer<typeof Agent>;

export const AgentBrokerCredentials = z
  .object({
    url: z
      .string()
      .meta({ description: 'amqp(s) URL with this agent’s own user; it may only read its task queues.' }),
    username: z.string(),
    password: z.string(),
    amqp_prefix: z.string().meta({
      description:
        'The prefix of every exchange and queue name on this devart (its AMQP_PREFIX; "" for none). ' +
        'Pass it to the SDK as `prefix` (`devart agent --prefix`): without it the agent looks for ' +
        'queues its user may not read.',
      example: 'prod.',
    }),
    queues: z.array(z.string()).meta({
      description:
        'The full names of the queues this agent consumes, its prefix included: `tasks.todo` and ' +
        '`tasks.todo.<capability>` for each of its capabilities. Its broker user may read these and no others.',
      example: ['prod.tasks.todo', 'prod.tasks.todo.shell'],
    }),
  })
  .meta({ id: 'AgentBrokerCredentials' });
export type AgentBrokerCredentials = z.infer<typeof AgentBrokerCredentials>;

export const CreatedAgent = Agent.extend({
  api_key: z.string().meta({ description: 'Shown once: only its hash is stored.', example: 'dva_…' }),
  broker: AgentBrokerCredentials.nullable().meta({
    description: 'Shown once. null on the in-process broker (embedded mode), which has no users.',
  }),
}).meta({ id: 'CreatedAgent' });
export type CreatedAgent = z.infer<typeof CreatedAgent>;

export const AgentList = z.object({ items: z.array(Agent) }).meta({ id: 'AgentList' });

export const AgentListQuery = z.strictObject({
  include_revoked: z.enum(['true', 'false']).optional(),
});

export const AgentIdParams = z.strictObject({ agentId: Uuid });
