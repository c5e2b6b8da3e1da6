// The chaos test's own RabbitMQ vhost and user, and the broker faults it injects, through the
// management API (as an administrator).

/** A vhost with a user of its own; `remove()` takes both away, and the agents' users too. */
export interface ChaosVhost {
  name: string;
  /** amqp URL with the user's credentials, on the vhost. */
  amqpUrl: string;
  create(): Promise<void>;
  /** Closes every client connection of the vhost; answers how many there were. */
  closeConnections(): Promise<number>;
  /** Deletes a queue whatever it holds; answers how many messages that was. */
  deleteQueue(queue: string): Promise<number | undefined>;
  /** Deletes the vhost, its user and `users` (absent ones are fine). */
  remove(users: readonly string[]): Promise<void>;
}

/**
 * @example
 * const vhost = chaosVhost(new URL('http://guest:guest@127.0.0.1:15672'), 'devart-chaos-1a2b');
 * await vhost.create();
 * await vhost.closeConnections();
 * await vhost.remove([]);
 */
export function chaosVhost(managementUrl: URL, name: string, amqpHost = '127.0.0.1:5672'): ChaosVhost {
  const password = crypto.randomUUID();
  const vhost = encodeURIComponent(name);
  const user = encodeURIComponent(name);
  const authorization = `Basic ${Buffer.from(
    `${decodeURIComponent(managementUrl.username)}:${decodeURIComponent(managementUrl.password)}`,
  ).toString('base64')}`;

  async function call(method: string, path: string, body?: unknown, allow404 = false): Promise<unknown> {
    const res = await fetch(`${managementUrl.origin}/api${path}`, {
      method,
      headers: { authorization, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (res.status === 404 && allow404) return undefined;
    if (!res.ok) throw new Error(`management ${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
    return text ? JSON.parse(text) : undefined;
  }

  return {
    name,
    amqpUrl: `amqp://${user}:${encodeURIComponent(password)}@${amqpHost}/${vhost}`,
    async create() {
      await call('PUT', `/vhosts/${vhost}`, {});
      await call('PUT', `/users/${user}`, { password, tags: '' });
      await call('PUT', `/permissions/${vhost}/${user}`, { configure: '.*', write: '.*', read: '.*' });
    },
    async closeConnections() {
      const connections = (await call('GET', `/vhosts/${vhost}/connections`)) as { name: string }[];
      for (const c of connections) {
        await call('DELETE', `/connections/${encodeURIComponent(c.name)}`, undefined, true);
      }
      return connections.length;
    },
    async deleteQueue(queue) {
      const path = `/queues/${vhost}/${encodeURIComponent(queue)}`;
      const info = (await call('GET', path, undefined, true)) as { messages?: number } | undefined;
      await call('DELETE', path);
      return info?.messages;
    },
    async remove(users) {
      const errors: unknown[] = [];
      for (const path of [
        `/vhosts/${vhost}`,
        `/users/${user}`,
        ...users.map((u) => `/users/${encodeURIComponent(u)}`),
      ]) {
        await call('DELETE', path, undefined, true).catch((error) => errors.push(error));
      }
      if (errors.length > 0) throw new AggregateError(errors, `could not remove everything of vhost ${name}`);
    },
  };
}
