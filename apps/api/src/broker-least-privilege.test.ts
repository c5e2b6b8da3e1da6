import { randomBytes } from 'node:crypto';
import { taskQueueName } from '@devart/queue';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { brokerKind, createTestPlatform, managementUrl, type TestPlatform } from '../../../test/platform';
import { classifyDeadLetter } from './services/dead-letters';

const amqpUrl = process.env.AMQP_URL;

/** A pino logger that keeps what it writes, for assertions on warnings. */
function capturingLogger() {
  const lines: { level: number; msg: string; [key: string]: unknown }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const warnings = () => lines.filter((l) => l.level === 40);
  return { logger, warnings, lines: () => lines };
}

const unexpectedMessage = /^unexpected dead letter/;

function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

let platform: TestPlatform | undefined;
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
  await cleanup?.();
  cleanup = undefined;
});

describe('classifyDeadLetter', () => {
  const task = {
    type: 'devart.task.v1',
    task_id: '0b6f3a53-6a8e-4d7e-9a55-93b1b1b3c1a0',
    attempt: 1,
    capability: null,
    title: 't',
    payload: {},
    workflow_run_id: null,
    enqueued_at: '2026-12-02T00:00:00.000000Z',
  };
  it('tells devart’s own, poison, malformed and unexpected dead letters apart', () => {
    expect(classifyDeadLetter({}, task)).toEqual({ kind: 'platform' });
    expect(classifyDeadLetter({ 'x-first-death-reason': 'delivery_limit' }, task)).toEqual({
      kind: 'poison',
      taskId: task.task_id,
      attempt: 1,
    });
    expect(classifyDeadLetter({ 'x-first-death-reason': 'rejected' }, { type: 'other' })).toEqual({
      kind: 'malformed',
    });
    expect(classifyDeadLetter({ 'x-first-death-reason': 'rejected' }, undefined)).toEqual({
      kind: 'malformed',
    });
    expect(classifyDeadLetter({ 'x-first-death-reason': 'rejected' }, task)).toEqual({
      kind: 'unexpected',
      reason: 'rejected',
    });
    for (const reason of ['expired', 'maxlen']) {
      expect(classifyDeadLetter({ 'x-first-death-reason': reason }, task)).toEqual({
        kind: 'unexpected',
        reason,
      });
    }
    expect(classifyDeadLetter({ 'x-first-death-reason': 'delivery_limit' }, { x: 1 })).toEqual({
      kind: 'unexpected',
      reason: 'delivery_limit',
    });
  });
});

describe(`dead-letter alerts on ${backend} + ${brokerKind}`, () => {
  it('warns about and counts a valid task message someone rejected, and the reconciler still gets the task done', async () => {
    const { logger, warnings, lines } = capturingLogger();
    const p = await createTestPlatform({ logger, reconcile: { afterSeconds: 1, intervalMs: 300 } });
    platform = p;
    const queue = await p.broker.ensureTaskQueue('reject-me');
    const [taskId] = await p.createTasks(1, { capability: 'reject-me' });
    // What a hostile consumer does with the message: reject it without requeue.
    let rejected = 0;
    const hostile = await p.broker.consume(queue, { prefetch: 1 }, async (delivery) => {
      rejected++;
      delivery.nack({ requeue: false });
    });
    await p.waitFor('a rejected message', async () => rejected > 0);
    await hostile.cancel();
    const warning = await p.waitFor('the warning', async () =>
      warnings().find((w) => unexpectedMessage.test(w.msg)),
    );
    expect(warning).toMatchObject({ reason: 'rejected', task_id: taskId, attempt: 1 });
    const metrics = await (await p.call('GET', '/metrics')).text();
    expect(metricValue(metrics, 'devart_dead_letters_unexpected_total{reason="rejected"}')).toBe(1);

    const agent = await p.registerAgent(['reject-me']);
    await p.startAgent(agent, async () => ({ result: { ok: true } }), { capabilities: ['reject-me'] });
    await p.waitFor(
      'the task DONE',
      async () => {
        const res = await p.call('GET', `/api/tasks/${taskId}`, { auth: await p.token('viewer') });
        return ((await res.json()) as { status: string }).status === 'DONE';
      },
      30_000,
    );
  });

  it('stays quiet about what the SDK itself dead-letters (a message that is not devart.task.v1)', async () => {
    const { logger, warnings, lines } = capturingLogger();
    const p = await createTestPlatform({ logger });
    platform = p;
    const queue = await p.broker.ensureTaskQueue('garbage');
    await p.broker.publish([{ routingKey: queue, messageId: 'junk', body: { type: 'not-a-task' } }]);
    const agent = await p.registerAgent(['garbage']);
    await p.startAgent(agent, async () => ({ result: {} }), { capabilities: ['garbage'] });
    await p.waitFor('the SDK’s own error', async () =>
      lines().some((l) => l.msg === 'not a devart.task.v1 message; dead-lettering it'),
    );
    // Give the watcher the time it took above to see the dead letter.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(warnings().filter((w) => unexpectedMessage.test(w.msg))).toEqual([]);
  });
});

/** Opens a channel, runs `op`, and answers the AMQP reply code that closed the channel (or 'ok'). */
async function attempt(model: ChannelModel, op: (ch: Channel) => unknown): Promise<number | 'ok'> {
  const ch = await model.createChannel();
  let code: number | undefined;
  ch.on('error', (error: { code?: number }) => {
    code = error.code;
  });
  const closed = new Promise<void>((resolve) => ch.once('close', () => resolve()));
  try {
    await op(ch);
    // A refused publish is only known when the broker closes the channel: a round trip settles it.
    await ch.checkExchange('amq.direct');
    await ch.close();
    return 'ok';
  } catch (error) {
    await closed;
    return code ?? (error as { code?: number }).code ?? -1;
  }
}

describe.runIf(!!amqpUrl)(`an agent's broker user on ${backend} + rabbitmq`, () => {
  it('may not delete, declare, bind or publish, nor read another capability; it may purge its own queues, and the reconciler puts the lost task back', async () => {
    const own = await ownVhost();
    cleanup = own.remove;
    const { logger, warnings } = capturingLogger();
    const p = await createTestPlatform({
      amqpUrl: own.url,
      logger,
      reconcile: { afterSeconds: 1, intervalMs: 300 },
    });
    platform = p;
    const agent = await p.registerAgent(['lp']);
    await p.broker.ensureTaskQueue('other');
    const queue = taskQueueName('lp', p.prefix);
    const model = await connect(agent.amqpUrl as string);
    try {
      const refused = 403;
      expect(await attempt(model, (ch) => ch.deleteQueue(queue))).toBe(refused);
      expect(await attempt(model, (ch) => ch.assertQueue(`${p.prefix}mine`))).toBe(refused);
      expect(
        await attempt(model, (ch) =>
          ch.bindQueue(queue, p.broker.topology.exchange, taskQueueName('other', p.prefix)),
        ),
      ).toBe(refused);
      expect(
        await attempt(model, (ch) =>
          ch.publish(p.broker.topology.exchange, queue, Buffer.from('{"type":"forged"}')),
        ),
      ).toBe(refused);
      expect(await attempt(model, (ch) => ch.purgeQueue(taskQueueName('other', p.prefix)))).toBe(refused);
      expect(await attempt(model, (ch) => ch.consume(taskQueueName('other', p.prefix), () => {}))).toBe(
        refused,
      );

      // Not prevented: `read` on a queue allows queue.purge (RabbitMQ has no finer permission).
      const [taskId] = await p.createTasks(1, { capability: 'lp' });
      await p.waitFor('the message in the queue', async () => {
        const ch = await model.createChannel();
        const { messageCount } = await ch.checkQueue(queue);
        await ch.close();
        return messageCount === 1;
      });
      const purge = await model.createChannel();
      expect((await purge.purgeQueue(queue)).messageCount).toBe(1);
      await purge.close();

      await p.waitFor('the republish warning', async () =>
        warnings().some((w) => w.msg.startsWith('task message lost') && w.task_id === taskId),
      );
      const metrics = await (await p.call('GET', '/metrics')).text();
      expect(metricValue(metrics, 'devart_tasks_republished_total')).toBeGreaterThan(0);
      await p.startAgent(agent, async () => ({ result: { ok: true } }), { capabilities: ['lp'] });
      await p.waitFor(
        'the task DONE',
        async () => {
          const res = await p.call('GET', `/api/tasks/${taskId}`, { auth: await p.token('viewer') });
          return ((await res.json()) as { status: string }).status === 'DONE';
        },
        30_000,
      );
    } finally {
      await model.close().catch(() => {});
    }
  });
});

/** A vhost and an administrator-free user of this test's own; removed at the end. */
async function ownVhost(): Promise<{ url: string; remove(): Promise<void> }> {
  const id = randomBytes(4).toString('hex');
  const vhost = `devart-least-privilege-${id}`;
  const user = `devart-least-privilege-${id}`;
  const password = randomBytes(12).toString('hex');
  const base = new URL(managementUrl);
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
  const url = new URL(amqpUrl as string);
  url.username = user;
  url.password = password;
  url.pathname = `/${v}`;
  return {
    url: url.toString(),
    async remove() {
      await call('DELETE', `/vhosts/${v}`);
      await call('DELETE', `/users/${encodeURIComponent(user)}`);
    },
  };
}
