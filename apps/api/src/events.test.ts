import { randomUUID } from 'node:crypto';
import type { PlatformEvent } from '@devart/contracts';
import { appendEvents, type Db, type NewEvent } from '@devart/db';
import { createEventsClient } from '@devart/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { callOf, createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { expectProblem } from '../../../test/http';
import { brokerKind, createTestPlatform } from '../../../test/platform';

let api: TestApi | undefined;
afterEach(async () => {
  await api?.drop();
  api = undefined;
});

interface Frame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** Reads a server-sent event stream frame by frame. */
function sseReader(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let done = false;
  const frames: Frame[] = [];
  const parse = (block: string): Frame => {
    const frame: Frame = {};
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) frame.comment = line.slice(1).trim();
      const [, field, value] = /^(id|event|data): ?(.*)$/.exec(line) ?? [];
      if (field) frame[field as 'id' | 'event' | 'data'] = value;
    }
    return frame;
  };
  const fill = async () => {
    const { value, done: end } = await reader.read();
    if (end) {
      done = true;
      return;
    }
    buffer += decoder.decode(value, { stream: true });
    for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
      frames.push(parse(buffer.slice(0, cut)));
      buffer = buffer.slice(cut + 2);
    }
  };
  return {
    /** The next frame, or undefined once the stream ended. */
    async next(timeoutMs = 15_000): Promise<Frame | undefined> {
      const deadline = Date.now() + timeoutMs;
      while (frames.length === 0 && !done) {
        if (Date.now() > deadline) throw new Error('no frame in time');
        await Promise.race([fill(), new Promise((r) => setTimeout(r, deadline - Date.now()))]);
      }
      return frames.shift();
    },
    /** Events (frames with an id) until `count` arrived or the stream ended. */
    async events(count: number, timeoutMs = 20_000): Promise<PlatformEvent[]> {
      const out: PlatformEvent[] = [];
      const deadline = Date.now() + timeoutMs;
      while (out.length < count) {
        const frame = await this.next(Math.max(1, deadline - Date.now()));
        if (!frame) break;
        if (frame.id && frame.data) out.push(JSON.parse(frame.data) as PlatformEvent);
      }
      return out;
    },
    cancel: () => reader.cancel(),
  };
}

/** Each event in its own transaction, as separate state changes commit. */
async function produce(db: Db, events: NewEvent[]) {
  await Promise.all(
    events.map((event) =>
      db.transaction(async (tx) => {
        appendEvents(tx, [event]);
      }),
    ),
  );
}

const doneEvent = (task_id = randomUUID(), agent_id?: string): NewEvent => ({
  type: 'task.done',
  task_id,
  agent_id,
  data: { status: 'DONE', attempt: 1 },
});

async function history(api: TestApi, query = '', auth?: string) {
  const res = await api.call('GET', `/api/events/history${query}`, {
    auth: auth ?? (await api.token('viewer')),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { items: PlatformEvent[]; next_after: string | null };
}

describe(`the event log on ${backend}`, () => {
  it('resumes with Last-Event-ID: a client away while 100 tasks finish receives exactly the missed events, none twice', async () => {
    api = await createTestApi();
    const viewer = await api.token('viewer');
    const first = sseReader(await api.call('GET', '/api/events', { auth: viewer }));
    expect((await first.next())?.event).toBe('ready');
    await produce(api.db, [doneEvent()]);
    const [seen] = await first.events(1);
    await first.cancel();

    const tasks = Array.from({ length: 100 }, () => randomUUID());
    await produce(
      api.db,
      tasks.map((id) => doneEvent(id)),
    );
    const missed = (await history(api, `?after=${seen!.id}&limit=500`)).items;
    expect(missed).toHaveLength(100);

    const again = sseReader(
      await api.call('GET', '/api/events', { auth: viewer, headers: { 'last-event-id': seen!.id } }),
    );
    // Some arrive while the replay runs: they must come once, after the replayed ones.
    const later = tasks.slice(0, 0);
    const during = produce(
      api.db,
      Array.from({ length: 20 }, () => {
        const id = randomUUID();
        later.push(id);
        return doneEvent(id);
      }),
    );
    const received = await again.events(120);
    await during;
    expect(received.map((e) => e.id).slice(0, 100)).toEqual(missed.map((e) => e.id));
    expect(new Set(received.map((e) => e.id)).size).toBe(120);
    expect(received.map((e) => Number(e.id))).toEqual(
      received.map((e) => Number(e.id)).toSorted((a, b) => a - b),
    );
    expect(new Set(received.map((e) => e.task_id))).toEqual(new Set([...tasks, ...later]));
    // Nothing more: no duplicate trails the live part.
    await produce(api.db, [doneEvent()]);
    const [next] = await again.events(1);
    expect(Number(next!.id)).toBeGreaterThan(Number(received.at(-1)!.id));
    await again.cancel();
  });

  it('replays with ?after= and then streams live; the frames carry id, event and data', async () => {
    api = await createTestApi();
    const viewer = await api.token('viewer');
    await produce(api.db, [doneEvent(), doneEvent(), doneEvent()]);
    const all = (await history(api)).items;
    const stream = sseReader(await api.call('GET', `/api/events?after=${all[0]!.id}`, { auth: viewer }));
    expect((await stream.next())?.event).toBe('ready');
    const frame = await stream.next();
    expect(frame?.id).toBe(all[1]!.id);
    expect(frame?.event).toBe('task.done');
    expect(JSON.parse(frame!.data!)).toEqual(all[1]);
    expect((await stream.events(1))[0]).toEqual(all[2]);
    await produce(api.db, [doneEvent()]);
    expect((await stream.events(1))[0]!.type).toBe('task.done');
    await stream.cancel();
  });

  it('streams a change committed through one API process from another over the same database', async () => {
    api = await createTestApi();
    const other = callOf(await api.replica());
    const stream = sseReader(await other('GET', '/api/events', { auth: await api.token('viewer') }));
    expect((await stream.next())?.event).toBe('ready');
    const agent = await api.call('POST', '/api/agents', {
      auth: await api.token('admin'),
      body: { name: 'watched', capabilities: ['echo'] },
    });
    expect(agent.status).toBe(201);
    const { id } = (await agent.json()) as { id: string };
    // The other process heard it on its own LISTEN and read it from the table.
    const events = await stream.events(1, 10_000);
    expect(events[0]).toMatchObject({ type: 'agent.registered', agent_id: id, data: { name: 'watched' } });
    await stream.cancel();
  });

  it('shows an agent key only its own events, and refuses it another agent', async () => {
    api = await createTestApi();
    const admin = await api.token('admin');
    const register = async (name: string) => {
      const res = await api!.call('POST', '/api/agents', {
        auth: admin,
        body: { name, capabilities: ['echo'] },
      });
      const body = (await res.json()) as { id: string; api_key: string };
      return { agent: { id: body.id }, api_key: body.api_key };
    };
    const mine = await register('mine');
    const theirs = await register('theirs');
    const stream = sseReader(await api.call('GET', '/api/events', { auth: mine.api_key }));
    expect((await stream.next())?.event).toBe('ready');
    await produce(api.db, [doneEvent(undefined, theirs.agent.id)]);
    await produce(api.db, [doneEvent(undefined, mine.agent.id)]);
    const [event] = await stream.events(1);
    expect(event!.agent_id).toBe(mine.agent.id);
    await stream.cancel();

    const own = await history(api, '', mine.api_key);
    expect(own.items.length).toBeGreaterThan(0);
    expect(own.items.every((e) => e.agent_id === mine.agent.id)).toBe(true);
    const viewerSees = await history(api);
    expect(viewerSees.items.some((e) => e.agent_id === theirs.agent.id)).toBe(true);
    await expectProblem(
      await api.call('GET', `/api/events/history?agent_id=${theirs.agent.id}`, { auth: mine.api_key }),
      403,
    );
    expect((await api.call('GET', '/api/events')).status).toBe(401);
  });

  it('filters by types and subjects, refuses an unknown type naming it, and pages the history', async () => {
    api = await createTestApi();
    const task = randomUUID();
    const run = randomUUID();
    await produce(api.db, [
      { type: 'task.created', task_id: task, workflow_run_id: run, data: { status: 'TODO' } },
      doneEvent(),
      { type: 'workflow_run.completed', workflow_run_id: run, data: { status: 'COMPLETED' } },
    ]);
    expect((await history(api, `?task_id=${task}`)).items.map((e) => e.type)).toEqual(['task.created']);
    expect((await history(api, `?workflow_run_id=${run}`)).items.map((e) => e.type).toSorted()).toEqual([
      'task.created',
      'workflow_run.completed',
    ]);
    expect((await history(api, '?types=task.done,workflow_run.completed')).items).toHaveLength(2);

    const first = await history(api, '?limit=2');
    expect(first.items).toHaveLength(2);
    const rest = await history(api, `?limit=2&after=${first.next_after}`);
    expect(rest.items).toHaveLength(1);
    expect(rest.next_after).toBeNull();

    const stream = sseReader(
      await api.call('GET', `/api/events?after=0&types=workflow_run.completed`, {
        auth: await api.token('viewer'),
      }),
    );
    expect((await stream.events(1))[0]!.type).toBe('workflow_run.completed');
    await stream.cancel();

    const bad = await api.call('GET', '/api/events?types=task.exploded', { auth: await api.token('viewer') });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe('types');
    expect(
      (await api.call('GET', '/api/events/history?limit=501', { auth: await api.token('viewer') })).status,
    ).toBe(400);
  });

  it('caps the streams of one caller (429) and sends heartbeat comments', async () => {
    api = await createTestApi();
    const app = await api.replica({ eventStream: { maxStreamsPerPrincipal: 2, keepAliveMs: 50 } });
    const call = callOf(app);
    const viewer = await api.token('viewer', { sub: randomUUID() });
    const a = sseReader(await call('GET', '/api/events', { auth: viewer }));
    const b = sseReader(await call('GET', '/api/events', { auth: viewer }));
    const third = await call('GET', '/api/events', { auth: viewer });
    await expectProblem(third, 429);
    // Another user is not counted with this one.
    const other = await call('GET', '/api/events', {
      auth: await api.token('viewer', { sub: randomUUID() }),
    });
    expect(other.status).toBe(200);
    await other.body!.cancel();
    expect((await a.next())?.event).toBe('ready');
    expect((await a.next())?.comment).toBe('keep-alive');
    await a.cancel();
    const fourth = await call('GET', '/api/events', { auth: viewer });
    expect(fourth.status).toBe(200);
    await fourth.body!.cancel();
    await b.cancel();
  });

  it('drops a client that does not read, saying why, with what it holds bounded', async () => {
    api = await createTestApi();
    const app = await api.replica({ eventStream: { maxBuffered: 20 } });
    const res = await callOf(app)('GET', '/api/events', { auth: await api.token('viewer') });
    const stream = sseReader(res);
    expect((await stream.next())?.event).toBe('ready');
    // It reads nothing while 200 events commit, in batches as a busy platform commits them.
    for (let i = 0; i < 20; i++)
      await produce(
        api.db,
        Array.from({ length: 10 }, () => doneEvent()),
      );
    await new Promise((r) => setTimeout(r, 300));
    const frames: Frame[] = [];
    for (let frame = await stream.next(); frame; frame = await stream.next()) frames.push(frame);
    const dropped = frames.find((f) => f.event === 'dropped');
    expect(JSON.parse(dropped!.data!).reason).toMatch(/did not read/);
    // What it got before the reason is at most the cap plus one burst: the rest was never held.
    expect(frames.filter((f) => f.id).length).toBeLessThanOrEqual(20 + 10);
    expect(frames.at(-1)).toBe(dropped);
  });

  it('the SDK iterator resumes after the server ended the stream, with nothing lost or repeated', async () => {
    api = await createTestApi();
    const app = await api.replica({ eventStream: { maxBuffered: 5 } });
    const viewer = await api.token('viewer');
    const client = createEventsClient({
      apiUrl: 'http://api.test',
      token: viewer,
      fetch: ((input: string | URL | Request, init?: RequestInit) =>
        app.request(String(input), init)) as typeof fetch,
      retryBaseMs: 10,
    });
    await produce(api.db, [doneEvent()]);
    const start = (await history(api)).items[0]!.id;
    const controller = new AbortController();
    const iterator = client.events({ types: ['task.done'], after: start, signal: controller.signal });
    const got: string[] = [];
    // Read slowly while a burst commits: the server drops the stream, the SDK reconnects after the last id.
    const bursts = (async () => {
      for (let i = 0; i < 5; i++)
        await produce(
          api!.db,
          Array.from({ length: 10 }, () => doneEvent()),
        );
    })();
    for await (const event of iterator) {
      got.push(event.id);
      if (got.length === 3) await bursts;
      if (got.length === 50) break;
    }
    const expected = (await history(api, `?after=${start}`)).items.map((e) => e.id);
    expect(got).toEqual(expected);
  });

  it(`through the whole platform (${brokerKind}): a client away while 100 tasks finish resumes with exactly the missed events`, async () => {
    const platform = await createTestPlatform();
    try {
      const viewer = await platform.token('viewer');
      const first = sseReader(await platform.call('GET', '/api/events', { auth: viewer }));
      expect((await first.next())?.event).toBe('ready');
      const agent = await platform.registerAgent(['echo']);
      const [seen] = await first.events(1);
      expect(seen).toMatchObject({ type: 'agent.registered', agent_id: agent.id });
      await first.cancel();

      const ids = await platform.createTasks(100, { capability: 'echo' });
      await platform.startAgent(agent, (task) => ({ result: task.title }), { capabilities: ['echo'] });
      const missed = await platform.waitFor('100 task.done in the log', async () => {
        const res = await platform.call('GET', `/api/events/history?after=${seen!.id}&limit=500`, {
          auth: viewer,
        });
        const { items } = (await res.json()) as { items: PlatformEvent[] };
        return items.filter((e) => e.type === 'task.done').length === 100 && items;
      });

      const again = sseReader(
        await platform.call('GET', '/api/events', { auth: viewer, headers: { 'last-event-id': seen!.id } }),
      );
      const received = await again.events(missed.length);
      await again.cancel();
      expect(received.map((e) => e.id)).toEqual(missed.map((e) => e.id));
      const done = received.filter((e) => e.type === 'task.done');
      expect(done.map((e) => e.task_id).toSorted()).toEqual(ids.toSorted());
      expect(done.every((e) => e.agent_id === agent.id && e.data.status === 'DONE')).toBe(true);
      // In commit order, each task's own events in the order they happened.
      const first100 = ids[0]!;
      expect(received.filter((e) => e.task_id === first100).map((e) => e.type)).toEqual([
        'task.created',
        'task.started',
        'task.done',
      ]);
    } finally {
      await platform.close();
    }
  });
});
