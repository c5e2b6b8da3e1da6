import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { brokerKind, createTestPlatform, type TestPlatform } from '../../../test/platform';

let platform: TestPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

/** Reads server-sent events from a streaming response until `count` of them (besides `ready`) arrived. */
async function readEvents(res: Response, count: number, timeoutMs = 15_000) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: { event: string; data: Record<string, unknown> }[] = [];
  let buffer = '';
  const deadline = Date.now() + timeoutMs;
  while (events.filter((e) => e.event !== 'ready').length < count) {
    if (Date.now() > deadline) throw new Error(`only ${events.length} events: ${JSON.stringify(events)}`);
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut = buffer.indexOf('\n\n');
    while (cut >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) events.push({ event, data: JSON.parse(data) });
      cut = buffer.indexOf('\n\n');
    }
  }
  await reader.cancel();
  return events;
}

describe(`events on ${backend} + ${brokerKind}`, () => {
  it('streams task.failed, task.quarantined and task.requeued to a viewer as they commit', async () => {
    platform = await createTestPlatform();
    const agent = await platform.registerAgent(['echo']);
    const viewer = await platform.token('viewer');
    const stream = await platform.call('GET', '/api/events', { auth: viewer });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/text\/event-stream/);
    const collected = readEvents(stream, 3);

    const [id] = await platform.createTasks(1, { capability: 'echo', max_retries: 1 });
    const report = async (attempt: number) => {
      const start = await platform!.call('POST', `/api/tasks/${id}/start`, {
        auth: agent.apiKey,
        body: { attempt },
      });
      expect(start.status).toBe(200);
      const res = await platform!.call('POST', `/api/tasks/${id}/report-failure`, {
        auth: agent.apiKey,
        body: { error: `boom ${attempt}`, attempt },
      });
      expect(res.status).toBe(200);
    };
    await report(1);
    await report(2);
    const requeue = await platform.call('POST', `/api/tasks/${id}/requeue`, {
      auth: await platform.token('supervisor'),
    });
    expect(requeue.status).toBe(200);

    const events = (await collected).filter((e) => e.event !== 'ready');
    expect(events.map((e) => [e.event, e.data.task_id, e.data.status, e.data.retry_count])).toEqual([
      ['task.failed', id, 'TODO', 1],
      ['task.quarantined', id, 'QUARANTINED', 2],
      ['task.requeued', id, 'TODO', 0],
    ]);
    expect(events[0]!.data.error).toBe('boom 1');
    expect(events[0]!.data.next_attempt_at).toEqual(expect.any(String));
  });

  it('filters by type, refuses an unknown type naming it, and keeps agents and strangers out', async () => {
    platform = await createTestPlatform();
    const bad = await platform.call('GET', '/api/events?types=task.exploded', {
      auth: await platform.token('viewer'),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe('types');
    expect((await platform.call('GET', '/api/events')).status).toBe(401);
    const agent = await platform.registerAgent([]);
    expect((await platform.call('GET', '/api/events', { auth: agent.apiKey })).status).toBe(403);
  });
});
