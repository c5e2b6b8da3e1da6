import { randomBytes } from 'node:crypto';
import { BrokerError } from '../errors';
import { taskQueueName } from '../topology';

/** Options of {@link createManagementClient}. */
export interface ManagementClientOptions {
  /** Base URL of the management API with credentials, e.g. `http://guest:guest@127.0.0.1:15672`. */
  url: string;
  /** Per-request timeout (ms, default 10 000). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** What {@link ManagementClient.provisionAgentUser} sets up. */
export interface ProvisionAgentInput {
  agentId: string;
  /** Capability slugs; the agent may also always read the capability-less `tasks.todo`. */
  capabilities: readonly string[];
  vhost?: string;
  /** Topology prefix (default ''), as given to the broker. */
  prefix?: string;
}

/** Credentials of an agent's RabbitMQ user. The password is returned once and stored nowhere. */
export interface AgentCredentials {
  username: string;
  password: string;
}

/** An open AMQP connection as the management API lists it. */
export interface ConnectionInfo {
  /** The management API's id of the connection, e.g. `127.0.0.1:41204 -> 127.0.0.1:5672`. */
  name: string;
  user: string;
  vhost: string;
  /** The `connection_name` client property (`connectionName` of the broker), if any. */
  connectionName: string | undefined;
}

/** A queue or exchange as the management API lists it. */
export interface ResourceInfo {
  name: string;
  vhost: string;
}

/** The RabbitMQ management HTTP API calls devart needs. */
export interface ManagementClient {
  /**
   * Creates (or re-keys) `agent-<agentId>` with a fresh random password. Permissions: configure
   * nothing, write nothing, read only `tasks.todo` and `tasks.todo.<capability>` of its capabilities.
   */
  provisionAgentUser(input: ProvisionAgentInput): Promise<AgentCredentials>;
  /** Deletes the agent's user (absent is fine) and closes its open connections. */
  revokeAgentUser(agentId: string): Promise<void>;
  /** Lists open connections. Newly opened ones can take a second or so to show up. */
  listConnections(): Promise<ConnectionInfo[]>;
  /** Closes every listed connection `match` accepts; returns how many. */
  closeConnections(match: (connection: ConnectionInfo) => boolean, reason?: string): Promise<number>;
  listQueues(vhost?: string): Promise<ResourceInfo[]>;
  /** Deletes a queue (absent is fine). */
  deleteQueue(name: string, vhost?: string): Promise<void>;
  listExchanges(vhost?: string): Promise<ResourceInfo[]>;
  /** Deletes an exchange (absent is fine). */
  deleteExchange(name: string, vhost?: string): Promise<void>;
}

/** A management API call failed; carries the HTTP status and RabbitMQ's reason. */
export class ManagementApiError extends BrokerError {
  override name = 'ManagementApiError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly reason: string,
  ) {
    super(`RabbitMQ management API ${method} ${path} answered ${status}: ${reason}`);
  }
}

const agentIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** The RabbitMQ user name of an agent. */
export function agentUsername(agentId: string): string {
  if (!agentIdPattern.test(agentId)) {
    throw new RangeError(
      `Invalid agent id ${JSON.stringify(agentId)}: use 1-128 characters of A-Z, a-z, 0-9, '_', '.', '-'`,
    );
  }
  return `agent-${agentId}`;
}

/**
 * The `read` permission regex of an agent: exactly its task queues, escaped and anchored.
 * @example agentReadPattern(['shell']) // '^(tasks\\.todo|tasks\\.todo\\.shell)$'
 */
export function agentReadPattern(capabilities: readonly string[], prefix = ''): string {
  const queues = [taskQueueName(null, prefix), ...capabilities.map((c) => taskQueueName(c, prefix))];
  return `^(${[...new Set(queues)].map(escapeRegExp).join('|')})$`;
}

/**
 * A client of the RabbitMQ management API (plain `fetch`, Basic auth from the URL).
 * @example
 * const mgmt = createManagementClient({ url: 'http://guest:guest@127.0.0.1:15672' });
 * const { username, password } = await mgmt.provisionAgentUser({ agentId, capabilities: ['shell'] });
 */
export function createManagementClient(options: ManagementClientOptions): ManagementClient {
  const parsed = new URL(options.url);
  const authorization = `Basic ${Buffer.from(
    `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`,
  ).toString('base64')}`;
  parsed.username = '';
  parsed.password = '';
  const base = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}/api`;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const doFetch = options.fetch ?? fetch;

  async function call(
    method: string,
    path: string,
    {
      body,
      headers = {},
      allow404 = false,
    }: { body?: unknown; headers?: Record<string, string>; allow404?: boolean } = {},
  ): Promise<unknown> {
    const response = await doFetch(`${base}${path}`, {
      method,
      headers: {
        authorization,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.status === 404 && allow404) return undefined;
    const text = await response.text();
    if (!response.ok)
      throw new ManagementApiError(method, path, response.status, reasonOf(text, response.statusText));
    return text === '' ? undefined : JSON.parse(text);
  }

  const vhostPath = (vhost = '/') => encodeURIComponent(vhost);

  const listConnections = async (): Promise<ConnectionInfo[]> => {
    const rows = (await call('GET', '/connections')) as RawConnection[];
    return rows.map((row) => ({
      name: row.name,
      user: row.user,
      vhost: row.vhost,
      connectionName: row.client_properties?.connection_name ?? row.user_provided_name ?? undefined,
    }));
  };

  return {
    async provisionAgentUser({ agentId, capabilities, vhost = '/', prefix = '' }) {
      const username = agentUsername(agentId);
      const read = agentReadPattern(capabilities, prefix);
      const password = randomBytes(24).toString('base64url');
      const user = `/users/${encodeURIComponent(username)}`;
      await call('PUT', user, { body: { password, tags: '' } });
      await call('PUT', `/permissions/${vhostPath(vhost)}/${encodeURIComponent(username)}`, {
        body: { configure: '^$', write: '^$', read },
      });
      return { username, password };
    },

    async revokeAgentUser(agentId) {
      const user = agentUsername(agentId);
      const username = encodeURIComponent(user);
      // Deleting the user first means nothing can log in again while we close what is open.
      await call('DELETE', `/users/${username}`, { allow404: true });
      // RabbitMQ also closes a deleted user's connections by itself, and when a connection we are
      // closing dies under us that way, 3.10 answers 500 (noproc): what matters is only whether
      // any connection of the user is still open, so look, and close again if one is.
      for (let attempt = 1; ; attempt++) {
        try {
          await call('DELETE', `/connections/username/${username}`, {
            allow404: true,
            headers: { 'x-reason': 'devart agent revoked' },
          });
          return;
        } catch (err) {
          if (!(err instanceof ManagementApiError) || err.status < 500 || attempt === 3) throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
        if (!(await listConnections()).some((connection) => connection.user === user)) return;
      }
    },

    listConnections,

    async closeConnections(match, reason = 'closed by devart') {
      const targets = (await listConnections()).filter(match);
      for (const connection of targets) {
        await call('DELETE', `/connections/${encodeURIComponent(connection.name)}`, {
          allow404: true,
          headers: { 'x-reason': reason },
        });
      }
      return targets.length;
    },

    async listQueues(vhost) {
      return ((await call('GET', `/queues/${vhostPath(vhost)}?columns=name,vhost`)) as ResourceInfo[]).map(
        pick,
      );
    },

    async deleteQueue(name, vhost) {
      await call('DELETE', `/queues/${vhostPath(vhost)}/${encodeURIComponent(name)}`, { allow404: true });
    },

    async listExchanges(vhost) {
      return ((await call('GET', `/exchanges/${vhostPath(vhost)}?columns=name,vhost`)) as ResourceInfo[]).map(
        pick,
      );
    },

    async deleteExchange(name, vhost) {
      await call('DELETE', `/exchanges/${vhostPath(vhost)}/${encodeURIComponent(name)}`, { allow404: true });
    },
  };
}

interface RawConnection {
  name: string;
  user: string;
  vhost: string;
  user_provided_name?: string;
  client_properties?: { connection_name?: string };
}

function pick({ name, vhost }: ResourceInfo): ResourceInfo {
  return { name, vhost };
}

function reasonOf(text: string, fallback: string): string {
  try {
    const parsed = JSON.parse(text) as { reason?: unknown; error?: unknown };
    const reason = parsed.reason ?? parsed.error;
    if (typeof reason === 'string' && reason !== '') return reason;
  } catch {
    // Not JSON (a proxy's HTML page, say): use the status text.
  }
  return text.trim().slice(0, 200) || fallback;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
