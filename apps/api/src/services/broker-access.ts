import type { AgentBrokerCredentials } from '@devart/contracts';
import type { Broker, ManagementClient } from '@devart/queue';

export type { AgentBrokerCredentials };

/** Per-agent broker users: each agent may read only its own task queues (DESIGN §4, queue security). */
export interface BrokerAccess {
  /**
   * The topology prefix agents must consume with (AMQP_PREFIX; '' for none): the registration
   * answer and the marketplace's install command hand it on.
   */
  readonly prefix: string;
  /**
   * Declares the agent's task queues and creates its broker user; the answer (shown once) holds
   * its URL, password, the prefix and the full names of the queues it may read.
   */
  provision(agent: { id: string; capabilities: string[] }): Promise<AgentBrokerCredentials | null>;
  revoke(agentId: string): Promise<void>;
}

/** The in-process broker has no users: agents in the same process get no credentials. */
export const noBrokerAccess: BrokerAccess = {
  prefix: '',
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
    prefix: options.prefix,
    async provision(agent) {
      const queues: string[] = [];
      for (const capability of [null, ...agent.capabilities])
        queues.push(await options.broker.ensureTaskQueue(capability));
      const { username, password } = await options.management.provisionAgentUser({
        agentId: agent.id,
        capabilities: agent.capabilities,
        vhost,
        prefix: options.prefix,
      });
      const url = new URL(options.agentUrl);
      url.username = encodeURIComponent(username);
      url.password = encodeURIComponent(password);
      return { url: url.toString(), username, password, amqp_prefix: options.prefix, queues };
    },
    revoke: (agentId) => options.management.revokeAgentUser(agentId),
  };
}
