import { afterEach, describe, expect, it } from 'vitest';
import { createTestVhost, type TestVhost } from '../../../packages/queue/src/rabbitmq/test-support';
import { backend } from '../../../test/db';
import { loadOperations, resolveSchema } from '../../../test/openapi';
import { brokerKind, createTestPlatform, type TestPlatform } from '../../../test/platform';

let platform: TestPlatform | undefined;
let own: TestVhost | undefined;
/** Agents registered here: their broker users outlive the vhost unless revoked. */
const registered: string[] = [];
afterEach(async () => {
  for (const id of registered.splice(0)) await platform?.management?.revokeAgentUser(id);
  await platform?.close();
  platform = undefined;
  await own?.remove();
  own = undefined;
});

interface Registered {
  id: string;
  api_key: string;
  broker: { url: string; username: string; password: string; amqp_prefix: string; queues: string[] } | null;
}

async function register(p: TestPlatform, capabilities: string[]): Promise<Registered> {
  const res = await p.call('POST', '/api/agents', {
    auth: await p.token('admin'),
    body: { name: 'registered agent', capabilities },
  });
  expect(res.status).toBe(201);
  const answer = (await res.json()) as Registered;
  registered.push(answer.id);
  return answer;
}

async function installCommand(p: TestPlatform): Promise<string> {
  const supervisor = await p.token('supervisor');
  const published = await p.call('POST', '/api/marketplace', {
    auth: supervisor,
    body: {
      item_type: 'agent',
      name: '@team/echoer',
      version: '1.0.0',
      manifest: { capabilities: ['echo'] },
    },
  });
  expect(published.status).toBe(201);
  const { id } = (await published.json()) as { id: string };
  const installed = await p.call('POST', `/api/marketplace/${id}/install`, { auth: supervisor });
  expect(installed.status).toBe(200);
  return ((await installed.json()) as { agent: { command: string } }).agent.command;
}

describe(`the registration answer on ${backend} + ${brokerKind}`, () => {
  it('documents the broker prefix and the queue names in the OpenAPI document, both required', async () => {
    platform = await createTestPlatform();
    const { doc } = await loadOperations(platform);
    const created = resolveSchema(doc, { $ref: '#/components/schemas/CreatedAgent' });
    const broker = created.properties?.broker ?? {};
    // broker is nullable: the object is one of its variants.
    const credentials = [broker, ...(broker.anyOf ?? []), ...(broker.oneOf ?? [])]
      .map((variant) => resolveSchema(doc, variant))
      .find((variant) => variant.properties?.url);
    if (!credentials) throw new Error(`no broker object in ${JSON.stringify(broker)}`);
    expect(credentials.required).toEqual(
      expect.arrayContaining(['url', 'username', 'password', 'amqp_prefix', 'queues']),
    );
    expect(credentials.properties?.queues?.type).toBe('array');
  });

  it.runIf(brokerKind === 'in-process')(
    'has no broker on the in-process broker, and the install command no --prefix',
    async () => {
      platform = await createTestPlatform();
      expect((await register(platform, ['echo'])).broker).toBeNull();
      expect(await installCommand(platform)).not.toContain('--prefix');
    },
  );

  it.runIf(brokerKind === 'rabbitmq')(
    'on RabbitMQ names the prefix and the full queue names beside the broker URL; an agent configured from it alone completes a task, and the install command passes --prefix',
    async () => {
      own = await createTestVhost(process.env.AMQP_URL!);
      platform = await createTestPlatform({ amqpUrl: own.url });
      const p = platform;
      const answer = await register(p, ['echo', 'shell']);
      expect(answer.broker).toEqual({
        url: expect.stringMatching(/^amqp:\/\/agent-/),
        username: `agent-${answer.id}`,
        password: expect.any(String),
        amqp_prefix: p.prefix,
        queues: [`${p.prefix}tasks.todo`, `${p.prefix}tasks.todo.echo`, `${p.prefix}tasks.todo.shell`],
      });
      expect(new URL(answer.broker!.url).pathname).toBe(`/${encodeURIComponent(own.vhost)}`);

      const ran: string[] = [];
      await p.startAgent(
        { id: answer.id, apiKey: answer.api_key, amqpUrl: answer.broker!.url },
        (task) => {
          ran.push(task.task_id);
          return { result: task.payload };
        },
        { prefix: answer.broker!.amqp_prefix, capabilities: ['echo', 'shell'] },
      );
      const [id] = await p.createTasks(1, { capability: 'echo', payload: { hello: 'prefix' } });
      const done = await p.waitFor('the task to end DONE', async () => {
        const res = await p.call('GET', `/api/tasks/${id}`, { auth: await p.token('viewer') });
        const task = (await res.json()) as { status: string; result: unknown };
        return task.status === 'DONE' && task;
      });
      expect(done.result).toEqual({ hello: 'prefix' });
      expect(ran).toEqual([id]);

      expect(await installCommand(p)).toBe(
        `npx devart agent --capability echo --api http://localhost --key "$DEVART_AGENT_KEY" --amqp "$DEVART_AMQP_URL" --prefix ${p.prefix}`,
      );
    },
  );
});
