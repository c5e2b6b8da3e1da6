import { randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import type { BrokerLogger, OutgoingMessage } from '../broker';
import type { ManagementClient } from './management';

/** Set in CI (and by hand) to run the RabbitMQ tests; when set, RabbitMQ must be reachable. */
export const amqpUrl = process.env.AMQP_URL;

/** `RABBITMQ_MANAGEMENT_URL`, or the AMQP URL's host and credentials on the management port. */
export function managementUrl(url: string): string {
  if (process.env.RABBITMQ_MANAGEMENT_URL) return process.env.RABBITMQ_MANAGEMENT_URL;
  const amqp = new URL(url);
  const tls = amqp.protocol === 'amqps:';
  const http = new URL(`${tls ? 'https' : 'http'}://${amqp.hostname}:${tls ? 15671 : 15672}`);
  http.username = amqp.username || 'guest';
  http.password = amqp.password || 'guest';
  return http.toString().replace(/\/$/, '');
}

/** A topology prefix no other test uses. */
export function newPrefix(): string {
  return `t${randomBytes(4).toString('hex')}.`;
}

/** `url` with other credentials. */
export function withCredentials(url: string, username: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(username);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

/** Fails (never skips) when AMQP_URL is set but RabbitMQ does not answer. */
export async function assertReachable(url: string): Promise<void> {
  try {
    const connection = await connect(url, { timeout: 5_000 });
    await connection.close();
  } catch (err) {
    throw new Error(
      `AMQP_URL is set but RabbitMQ is unreachable (${(err as Error).message}). Start it (rabbitmq-server -detached) or unset AMQP_URL`,
    );
  }
}

/** Deletes every queue and exchange whose name starts with `prefix`. */
export async function deletePrefixed(management: ManagementClient, prefix: string): Promise<void> {
  for (const queue of await management.listQueues()) {
    if (queue.name.startsWith(prefix)) await management.deleteQueue(queue.name);
  }
  for (const exchange of await management.listExchanges()) {
    if (exchange.name.startsWith(prefix)) await management.deleteExchange(exchange.name);
  }
}

/** A logger that keeps what it is given, for assertions. */
export interface RecordingLogger extends BrokerLogger {
  readonly entries: { level: 'debug' | 'info' | 'warn' | 'error'; msg: string; obj: object }[];
  messages(level: 'debug' | 'info' | 'warn' | 'error'): string[];
}

export function recordingLogger(): RecordingLogger {
  const entries: RecordingLogger['entries'] = [];
  const record =
    (level: RecordingLogger['entries'][number]['level']) =>
    (obj: object, msg = ''): void => {
      entries.push({ level, msg, obj });
    };
  return {
    entries,
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
    messages: (level) => entries.filter((e) => e.level === level).map((e) => e.msg),
  };
}

export function messages(routingKey: string, from: number, to: number): OutgoingMessage[] {
  const out: OutgoingMessage[] = [];
  for (let i = from; i < to; i++) out.push({ routingKey, messageId: `m${i}`, body: { i } });
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` (sync or async) until it holds. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A vhost of a test's own, with a user allowed everything in it (the platform's role). */
export interface TestVhost {
  vhost: string;
  /** `url` logged in as that user, in that vhost. */
  url: string;
  /** Deletes the vhost (and everything in it) and the user. */
  remove(): Promise<void>;
}

/** Creates a {@link TestVhost} through the management API as AMQP_URL's administrator. */
export async function createTestVhost(url: string): Promise<TestVhost> {
  const id = randomBytes(4).toString('hex');
  const vhost = `devart-queue-test-${id}`;
  const user = `devart-queue-test-${id}`;
  const password = randomBytes(12).toString('hex');
  const base = new URL(managementUrl(url));
  const auth = Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`);
  const api = `${base.origin}${base.pathname.replace(/\/$/, '')}/api`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Basic ${auth.toString('base64')}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok && res.status !== 404)
      throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  };
  const v = encodeURIComponent(vhost);
  await call('PUT', `/vhosts/${v}`, {});
  await call('PUT', `/users/${encodeURIComponent(user)}`, { password, tags: '' });
  await call('PUT', `/permissions/${v}/${encodeURIComponent(user)}`, {
    configure: '.*',
    write: '.*',
    read: '.*',
  });
  return {
    vhost,
    url: withVhost(withCredentials(url, user, password), vhost),
    async remove() {
      await call('DELETE', `/vhosts/${v}`);
      await call('DELETE', `/users/${encodeURIComponent(user)}`);
    },
  };
}

/** `url` in another vhost. */
export function withVhost(url: string, vhost: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(vhost)}`;
  return parsed.toString();
}
