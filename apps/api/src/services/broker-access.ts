import type { Broker, ManagementClient } from '@devart/queue';

/** What an agent needs to reach the broker; the password is shown once and stored nowhere. */
export interface AgentBrokerCredentials {
  url: string;
  username: string;
  password: string;
}

/** Per-agent broker users: each agent may read only its own task queues (DESIGN §4, queue security). */
export interface BrokerAccess {
  provision(agent: { id: string; capabilities: string[] }): Promise<AgentBrokerCredentials | null>;
  revoke(agentId: string): Promise<void>;
}

/** The in-process broker has no users: agents in the same process get no credentials. */
export const noBrokerAccess: BrokerAccess = {
  provision: async () => null,
  revoke: async () => {},
};

export function rabbitBrokerAccess(options: {
  management: ManagementClient;
  /** Declares the agent's task queues, so it can consume before the first task of a capability exists. */
  broker: Broker;
  /** amqp(s) URL agents connect to; its credentials, if any, are replaced by the agent's. */
  agentUrl: string;
  prefix: string;
}): BrokerAccess {
  const vhost = decodeURIComponent(new URL(options.agentUrl).pathname.slice(1)) || '/';
  return {
    async provision(agent) {
      for (const capability of [null, ...agent.capabilities])
        await options.broker.ensureTaskQueue(capability);
      const { username, password } = await options.management.provisionAgentUser({
        agentId: agent.id,
        capabilities: agent.capabilities,
        vhost,
        prefix: options.prefix,
      });
      const url = new URL(options.agentUrl);
      url.username = encodeURIComponent(username);
      url.password = encodeURIComponent(password);
      return { url: url.toString(), username, password };
    },
    revoke: (agentId) => options.management.revokeAgentUser(agentId),
  };
}
