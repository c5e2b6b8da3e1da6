import { randomBytes } from 'node:crypto';
import type { BrokerLogger } from '@devart/queue';
import { createAgent } from '@devart/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { createTestPlatform, managementUrl, type TestPlatform } from '../../../test/platform';

const amqpUrl = process.env.AMQP_URL;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One call to the RabbitMQ management API as its administrator (AMQP_URL's user). */
async function manage(method: string, path: string, body?: unknown): Promise<unknown> {
  const base = new URL(managementUrl);
  const auth = Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`);
  base.username = '';
  base.password = '';
  const res = await fetch(`${base.origin}${base.pathname.replace(/\/$/, '')}/api${path}`, {
    method,
    headers: { authorization: `Basic ${auth.toString('base64')}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok && res.status !== 404) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 || res.headers.get('content-length') === '0'
    ? undefined
    : res.json().catch(() => undefined);
}

/** A vhost and a user of this test's own, so closing "every connection" touches nobody else. */
async function ownVhost(): Promise<{ url: string; vhost: string; remove(): Promise<void> }> {
  const id = randomBytes(4).toString('hex');
  const vhost = `devart-broker-faults-${id}`;
  const user = `devart-broker-faults-${id}`;
  const password = randomBytes(12).toString('hex');
  const v = encodeURIComponent(vhost);
  await manage('PUT', `/vhosts/${v}`, {});
  await manage('PUT', `/users/${encodeURIComponent(user)}`, { password, tags: '' });
  await manage('PUT', `/permissions/${v}/${encodeURIComponent(user)}`, {
    configure: '.*',
    write: '.*',
    read: '.*',
  });
  const url = new URL(amqpUrl as string);
  url.username = user;
  url.password = password;
  url.pathname = `/${v}`;
  return {
    url: url.toString(),
    vhost,
    async remove() {
      await manage('DELETE', `/vhosts/${v}`);
      await manage('DELETE', `/users/${encodeURIComponent(user)}`);
    },
  };
}

/** A logger that keeps its warnings and infos, for assertions. */
function recordingLogger(): BrokerLogger & { warnings: string[]; infos: string[] } {
  const warnings: string[] = [];
  const infos: string[] = [];
  return {
    warnings,
    infos,
    info: (_obj, msg = '') => void infos.push(msg),
    warn: (_obj, msg = '') => void warnings.push(msg),
    error() {},
  };
}

let platform: TestPlatform | undefined;
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
  await cleanup?.();
  cleanup = undefined;
});

describe.runIf(!!amqpUrl)(`broker faults on ${backend} + rabbitmq`, () => {
  it('a task queue force-deleted under running agents, then every connection of the vhost closed: the queue is declared again, agents re-subscribe, the lost messages are republished, and every task ends DONE once', async () => {
    const own = await ownVhost();
    cleanup = own.remove;
    platform = await createTestPlatform({
      amqpUrl: own.url,
      reconcile: { afterSeconds: 3, intervalMs: 250 },
    });
    const p = platform;
    const runs = new Map<string, number>();
    for (const name of ['a', 'b']) {
      const agent = await p.registerAgent(['fragile'], name);
      await p.startAgent(
        agent,
        async (task) => {
          runs.set(task.task_id, (runs.get(task.task_id) ?? 0) + 1);
          await sleep(5);
          return { result: 'ok' };
        },
        { capabilities: ['fragile'], concurrency: 4 },
      );
    }
    // The management API lists connections only after its next statistics round: waited for
    // before the tasks exist, or a fast run could finish them all meanwhile.
    await p.waitFor(
      'the connections to show in the management API',
      async () => (await p.management!.listConnections()).filter((c) => c.vhost === own.vhost).length >= 3,
      15_000,
    );
    const total = 1500;
    const ids = await p.createTasks(total, { capability: 'fragile' });
    const done = async () => {
      const { rows } = await p.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasks WHERE status = 'DONE'`,
      );
      return rows[0]!.n;
    };
    await p.waitFor('some tasks DONE', async () => (await done()) >= 50);
    const queue = `${p.prefix}tasks.todo.fragile`;
    // What waits in the queue goes with it: only the reconciler can bring those tasks back.
    await manage('DELETE', `/queues/${encodeURIComponent(own.vhost)}/${encodeURIComponent(queue)}`);
    const afterDelete = await done();
    expect(afterDelete).toBeLessThan(total);
    await sleep(500);
    const closed = await p.management!.closeConnections((c) => c.vhost === own.vhost);
    // The platform's two connections and one per agent.
    expect(closed).toBeGreaterThanOrEqual(3);

    await p.waitFor('every task DONE', async () => (await done()) === total, 60_000);
    expect([...runs.keys()].sort()).toEqual([...ids].sort());
    // Nothing ran twice: the agents stayed alive, so duplicates were fenced at start.
    expect([...runs.values()].filter((n) => n > 1)).toEqual([]);
    const metrics = await (await p.call('GET', '/metrics')).text();
    const republished = Number(/^devart_tasks_republished_total (\d+)$/m.exec(metrics)?.[1]);
    expect(republished).toBeGreaterThan(0);
    const queues = (await manage('GET', `/queues/${encodeURIComponent(own.vhost)}?columns=name`)) as {
      name: string;
    }[];
    expect(queues.map((q) => q.name)).toContain(queue);
  }, 90_000);

  /**
   * A platform on a vhost of its own whose reconciler the test drives, and an agent registered for
   * `late` whose task queue was deleted.
   */
  async function platformMissingItsQueue() {
    const own = await ownVhost();
    cleanup = own.remove;
    platform = await createTestPlatform({ amqpUrl: own.url });
    platform.reconciler.stop();
    const registered = await platform.registerAgent(['late'], 'late');
    const queue = `${platform.prefix}tasks.todo.late`;
    await manage('DELETE', `/queues/${encodeURIComponent(own.vhost)}/${encodeURIComponent(queue)}`);
    return { p: platform, registered, queue };
  }

  it('an agent started while its task queue is missing waits until the reconciler declares it, then runs the tasks', async () => {
    // The test runs the reconciler's pass itself, once the agent is seen waiting.
    const { p, registered, queue } = await platformMissingItsQueue();

    const log = recordingLogger();
    const starting = p.startAgent(registered, async () => ({ result: 'ok' }), {
      capabilities: ['late'],
      logger: log,
    });
    const waiting = `queue ${queue} does not exist yet; waiting for the devart API to declare it`;
    await p.waitFor('the agent to wait for its queue', async () => log.warnings.includes(waiting));
    // Several retries later it is still waiting, not gone.
    await sleep(1_500);
    expect(log.infos).not.toContain('agent consuming');

    await p.reconciler.reconcileNow();
    await starting;
    expect(log.infos).toContain(`queue ${queue} exists now; consuming it`);
    expect(log.warnings).toEqual([waiting]);
    const ids = await p.createTasks(5, { capability: 'late' });
    await p.waitFor('the tasks DONE', async () => {
      const { rows } = await p.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasks WHERE status = 'DONE' AND id = ANY($1)`,
        [ids],
      );
      return rows[0]!.n === ids.length;
    });
  }, 60_000);

  it('stop() ends the wait of an agent whose task queue is missing, and startConsuming() resolves', async () => {
    const { p, registered, queue } = await platformMissingItsQueue();

    const log = recordingLogger();
    const agent = createAgent({
      // Never called: no task reaches an agent that is not consuming.
      apiUrl: 'http://127.0.0.1:9',
      apiKey: registered.apiKey,
      amqpUrl: registered.amqpUrl,
      prefix: p.prefix,
      capabilities: ['late'],
      logger: log,
    });
    let started = false;
    const starting = agent
      .startConsuming(() => undefined)
      .then(() => {
        started = true;
      });
    await p.waitFor('the agent to wait for its queue', async () =>
      log.warnings.some((w) => w.startsWith(`queue ${queue} does not exist yet`)),
    );
    expect(started).toBe(false);
    await agent.stop();
    await starting;
    expect(log.infos).not.toContain('agent consuming');
    // Nothing of it is left waiting: once the queue is there, it does not subscribe after all.
    await p.reconciler.reconcileNow();
    await sleep(1_500);
    expect(log.infos).not.toContain(`queue ${queue} exists now; consuming it`);
  }, 60_000);
});
