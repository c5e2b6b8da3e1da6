import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { brokerKind, createTestPlatform, type TestPlatform } from '../../../test/platform';

let platform: TestPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

describe(`dispatch on ${backend} + ${brokerKind}`, () => {
  it('a created task reaches an agent through the outbox and the broker, and ends DONE with its result and cost', async () => {
    platform = await createTestPlatform();
    const agent = await platform.registerAgent(['echo']);
    await platform.startAgent(agent, (task) => ({ result: { echoed: task.payload }, cost: 0.25 }), {
      capabilities: ['echo'],
    });
    const [id] = await platform.createTasks(1, { capability: 'echo', payload: { hello: 'world' } });
    const viewer = await platform.token('viewer');
    const task = await platform.waitFor('task DONE', async () => {
      const body = (await (await platform!.call('GET', `/api/tasks/${id}`, { auth: viewer })).json()) as {
        status: string;
      };
      return body.status === 'DONE' ? body : undefined;
    });
    expect(task).toMatchObject({
      status: 'DONE',
      result: { echoed: { hello: 'world' } },
      cost: '0.25',
      attempt: 1,
    });
    const attempts = await (await platform.call('GET', `/api/tasks/${id}/attempts`, { auth: viewer })).json();
    expect(attempts.items).toMatchObject([{ attempt: 1, agent_id: agent.id, outcome: 'DONE' }]);
    const { rows } = await platform.db.query<{ status: string }>('SELECT status FROM agents WHERE id = $1', [
      agent.id,
    ]);
    expect(rows[0]!.status).toBe('IDLE');
  });
});
