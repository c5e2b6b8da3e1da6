import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { digestRows, expectProblem } from '../../../test/http';

// Bodies PostgreSQL cannot hold or JavaScript would silently change: each is refused with a 400 that
// names the field and writes nothing, or (an agent's outcome) stored faithfully, escaped where needed.

let api: TestApi;
let supervisor: string;
let viewer: string;
let admin: string;
let agentKey: string;
let agentId: string;

beforeAll(async () => {
  api = await createTestApi();
  supervisor = await api.token('supervisor');
  viewer = await api.token('viewer');
  admin = await api.token('admin');
  const res = await api.call('POST', '/api/agents', {
    auth: admin,
    body: { name: 'hostile-input agent', capabilities: ['echo'] },
  });
  const agent = (await res.json()) as { id: string; api_key: string };
  agentKey = agent.api_key;
  agentId = agent.id;
});

afterAll(async () => {
  await api?.drop();
});

/** Sends raw text (or bytes) as a JSON body, so the test controls every character the server sees. */
const send = async (method: string, path: string, auth: string, body: string | Uint8Array<ArrayBuffer>) =>
  api.app.request(path, {
    method,
    headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
    body,
  });

/** Expects `request` to be answered 400 naming `field` (e.g. `body.payload.cmd`), with no row changed. */
async function expectRefused(request: () => Promise<Response>, field: string, message?: RegExp) {
  const before = await digestRows(api.db);
  const problem = await expectProblem(await request(), 400);
  const [location, ...rest] = field.split('.');
  const named = rest.join('.') || location!;
  // A value nested too deep is named down to where the limit struck: `payload.a.a…` names `payload`.
  const names = (e: { location: string; field: string }) =>
    e.location === location && (e.field === named || /^[.[]/.test(e.field.slice(named.length)));
  expect(
    problem.errors?.some((e) => names(e) && e.field.startsWith(named)),
    JSON.stringify(problem.errors),
  ).toBe(true);
  expect(problem.detail).toContain(field);
  if (message) expect(problem.detail).toMatch(message);
  expect(await digestRows(api.db)).toBe(before);
  return problem;
}

/** A task started by the test agent, ready to be completed or failed. */
async function startedTask(title = 'work'): Promise<string> {
  const created = await api.call('POST', '/api/tasks', {
    auth: supervisor,
    body: { title, capability: 'echo' },
  });
  const { id } = (await created.json()) as { id: string };
  expect((await api.call('POST', `/api/tasks/${id}/start`, { auth: agentKey })).status).toBe(200);
  return id;
}

async function readTask(id: string) {
  const res = await api.call('GET', `/api/tasks/${id}`, { auth: viewer });
  expect(res.status).toBe(200);
  return { text: await res.clone().text(), task: (await res.json()) as Record<string, unknown> };
}

const nested = (levels: number, inner = '1') => `${'{"a":'.repeat(levels)}${inner}${'}'.repeat(levels)}`;
const deepArray = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

describe(`hostile input on ${backend}`, () => {
  describe('text PostgreSQL cannot store, in what people and agents send as input', () => {
    it.each([
      ['a NUL in the title', { title: 'a\u0000b' }, 'body.title', /NUL/],
      [
        'a lone surrogate in the description',
        { title: 't', description: 'x\ud800' },
        'body.description',
        /surrogate/,
      ],
      [
        'a NUL deep in the payload',
        { title: 't', payload: { cmd: ['ok', 'r\u0000m'] } },
        'body.payload.cmd[1]',
        /NUL/,
      ],
      ['a NUL in a payload key', { title: 't', payload: { 'k\u0000': 1 } }, 'body.payload', /key/],
      ['a trailing low surrogate', { title: 't', payload: { s: '\udc00' } }, 'body.payload.s', /surrogate/],
    ])('POST /api/tasks refuses %s', async (_, body, field, message) => {
      await expectRefused(() => send('POST', '/api/tasks', supervisor, JSON.stringify(body)), field, message);
    });

    it('refuses it in a task batch, an agent, a workflow, a trigger, a requeue and the marketplace', async () => {
      await expectRefused(
        () =>
          send(
            'POST',
            '/api/tasks/batch',
            supervisor,
            JSON.stringify({ tasks: [{ title: 'ok' }, { title: '\u0000' }] }),
          ),
        'body.tasks[1].title',
      );
      await expectRefused(
        () => send('POST', '/api/agents', admin, JSON.stringify({ name: 'n\u0000', capabilities: ['echo'] })),
        'body.name',
      );
      const step = { key: 'a', title: 'step', payload: { cmd: 'x\u0000' } };
      await expectRefused(
        () => send('POST', '/api/workflows', supervisor, JSON.stringify({ name: 'wf', steps: [step] })),
        'body.steps[0].payload.cmd',
      );
      const created = await api.call('POST', '/api/workflows', {
        auth: supervisor,
        body: { name: 'wf', variables: { v: { type: 'string' } }, steps: [{ key: 'a', title: 'step' }] },
      });
      expect(created.status).toBe(201);
      const { id: workflowId } = (await created.json()) as { id: string };
      await expectRefused(
        () =>
          send(
            'POST',
            `/api/workflows/${workflowId}/trigger`,
            supervisor,
            JSON.stringify({ variables: { v: '\ud800' } }),
          ),
        'body.variables.v',
      );
      const task = await api.call('POST', '/api/tasks', { auth: supervisor, body: { title: 'to requeue' } });
      const { id: taskId } = (await task.json()) as { id: string };
      await expectRefused(
        () =>
          send(
            'POST',
            `/api/tasks/${taskId}/requeue`,
            supervisor,
            JSON.stringify({ payload: { p: '\u0000' } }),
          ),
        'body.payload.p',
      );
      await expectRefused(
        () =>
          send(
            'POST',
            '/api/marketplace',
            supervisor,
            JSON.stringify({
              item_type: 'agent',
              name: 'nul-agent',
              version: '1.0.0',
              description: 'd\u0000',
              manifest: { capabilities: ['echo'] },
            }),
          ),
        'body.description',
      );
    });

    it('refuses a NUL in a query value or a path parameter, naming it', async () => {
      await expectRefused(
        () => api.call('GET', '/api/tasks?capability=%00', { auth: viewer }),
        'query.capability',
      );
      await expectRefused(() => api.call('GET', '/api/marketplace?q=a%00b', { auth: viewer }), 'query.q');
      await expectRefused(() => api.call('GET', '/api/tasks/%00', { auth: viewer }), 'path.taskId');
    });
  });

  describe('text PostgreSQL cannot store, in an agent’s outcome: stored escaped', () => {
    it('completes a task whose result holds a NUL and a lone surrogate, each written as its \\u escape', async () => {
      const id = await startedTask();
      const res = await send(
        'POST',
        `/api/tasks/${id}/complete`,
        agentKey,
        JSON.stringify({ result: { stdout: 'a\u0000b', odd: ['\ud800x'], 'key\u0000': true }, cost: 0 }),
      );
      expect(res.status, await res.clone().text()).toBe(200);
      const { task } = await readTask(id);
      expect(task.status).toBe('DONE');
      expect(task.result).toEqual({ stdout: 'a\\u0000b', odd: ['\\ud800x'], 'key\\u0000': true });
    });

    it('reports a failure whose error and details hold a NUL', async () => {
      const id = await startedTask();
      const res = await send(
        'POST',
        `/api/tasks/${id}/report-failure`,
        agentKey,
        JSON.stringify({ error: 'boom\u0000', details: { stderr: '\u0000\udfff' } }),
      );
      expect(res.status, await res.clone().text()).toBe(200);
      const attempts = await api.call('GET', `/api/tasks/${id}/attempts`, { auth: viewer });
      const { items } = (await attempts.json()) as { items: { error: string; details: unknown }[] };
      expect(items.at(-1)).toMatchObject({ error: 'boom\\u0000', details: { stderr: '\\u0000\\udfff' } });
      expect((await readTask(id)).task.last_error).toBe('boom\\u0000');
    });

    it('escapes the result of every item of a complete-batch', async () => {
      const [a, b] = [await startedTask('a'), await startedTask('b')];
      const res = await send(
        'POST',
        '/api/tasks/complete-batch',
        agentKey,
        JSON.stringify({
          items: [
            { task_id: a, result: 'x\u0000' },
            { task_id: b, result: { ok: true } },
          ],
        }),
      );
      expect(res.status).toBe(200);
      const { items } = (await res.json()) as { items: { status: number }[] };
      expect(items.map((i) => i.status)).toEqual([200, 200]);
      expect((await readTask(a)).task.result).toBe('x\\u0000');
    });
  });

  describe('one bad item of a batch fails only that item', () => {
    it('complete-batch applies the good items and answers the bad ones 400 naming their field', async () => {
      const [good1, bad1, bad2, bad3, good2] = [
        await startedTask('good 1'),
        await startedTask('bad cost'),
        await startedTask('too deep'),
        await startedTask('huge number'),
        await startedTask('good 2'),
      ];
      const body = `{"items":[
        {"task_id":"${good1}","result":{"n":1},"cost":"0.5"},
        {"task_id":"${bad1}","cost":"lots"},
        {"task_id":"${bad2}","result":${nested(100)}},
        {"task_id":"${bad3}","result":{"n":1e400}},
        {"task_id":"${good2}","result":"fine","colour":"red"},
        {"task_id":"not-a-uuid"}
      ]}`;
      const res = await send('POST', '/api/tasks/complete-batch', agentKey, body);
      expect(res.status, await res.clone().text()).toBe(200);
      const { items } = (await res.json()) as {
        items: { task_id: string; status: number; detail?: string }[];
      };
      expect(items.map((i) => [i.task_id, i.status])).toEqual([
        [good1, 200],
        [bad1, 400],
        [bad2, 400],
        [bad3, 400],
        [good2, 400],
        ['not-a-uuid', 400],
      ]);
      expect(items[1]!.detail).toContain('body.items[1].cost');
      expect(items[2]!.detail).toMatch(/body\.items\[2\]\.result(\.a)+: is nested deeper than 64 levels/);
      expect(items[3]!.detail).toContain('body.items[3].result.n: is out of range');
      expect(items[4]!.detail).toContain('body.items[4].colour: is not a known field');
      expect(items[5]!.detail).toContain('body.items[5].task_id');
      expect((await readTask(good1)).task).toMatchObject({ status: 'DONE', cost: '0.5' });
      for (const id of [bad1, bad2, bad3, good2])
        expect((await readTask(id)).task.status).toBe('IN_PROGRESS');
    });

    it('start-batch starts the good items and answers a bad one 400', async () => {
      const ids: string[] = [];
      for (const title of ['s1', 's2']) {
        const created = await api.call('POST', '/api/tasks', {
          auth: supervisor,
          body: { title, capability: 'echo' },
        });
        ids.push(((await created.json()) as { id: string }).id);
      }
      const res = await send(
        'POST',
        '/api/tasks/start-batch',
        agentKey,
        JSON.stringify({
          items: [{ task_id: ids[0] }, { task_id: ids[1], attempt: 0 }, { task_id: 'x\u0000' }],
        }),
      );
      expect(res.status).toBe(200);
      const { items } = (await res.json()) as { items: { status: number; detail?: string }[] };
      expect(items.map((i) => i.status)).toEqual([200, 400, 400]);
      expect(items[1]!.detail).toContain('body.items[1].attempt');
      expect(items[2]!.detail).toContain('body.items[2].task_id');
      expect((await readTask(ids[0]!)).task.status).toBe('IN_PROGRESS');
      expect((await readTask(ids[1]!)).task.status).toBe('TODO');
    });

    it('the OpenAPI document still shows each item’s schema, and which fields are stored escaped', async () => {
      const doc = (await (await api.app.request('/api/openapi.json')).json()) as {
        paths: Record<string, Record<string, Record<string, unknown>>>;
        components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
      };
      expect(doc.components.schemas.CompleteTaskBatchItem?.properties).toHaveProperty('cost');
      expect(doc.components.schemas.StartTaskBatchItem?.properties).toHaveProperty('attempt');
      expect(doc.paths['/api/tasks/complete-batch']!.post!['x-devart-stored-escaped']).toEqual([
        'items.*.result',
      ]);
      expect(doc.paths['/api/tasks/{taskId}/report-failure']!.post!['x-devart-stored-escaped']).toEqual([
        'error',
        'details',
      ]);
    });

    it('a bad envelope is still refused whole', async () => {
      await expectRefused(
        () => send('POST', '/api/tasks/complete-batch', agentKey, JSON.stringify({ items: [], extra: 1 })),
        'body.items',
      );
    });
  });

  describe('nesting', () => {
    it.each([
      ['an object payload 10,000 levels deep', (n: number) => `{"title":"t","payload":${nested(n)}}`],
      ['an array payload 10,000 levels deep', (n: number) => `{"title":"t","payload":{"a":${deepArray(n)}}}`],
    ])('POST /api/tasks refuses %s, naming the payload', async (_, body) => {
      const problem = await expectRefused(
        () => send('POST', '/api/tasks', supervisor, body(10_000)),
        'body.payload',
      );
      expect(problem.detail).toMatch(/nested deeper than 64 levels/);
    });

    it('refuses a result or details nested too deep, and leaves the task in progress', async () => {
      const id = await startedTask();
      await expectRefused(
        () => send('POST', `/api/tasks/${id}/complete`, agentKey, `{"result":${deepArray(10_000)}}`),
        'body.result',
      );
      await expectRefused(
        () =>
          send(
            'POST',
            `/api/tasks/${id}/report-failure`,
            agentKey,
            `{"error":"e","details":${nested(10_000)}}`,
          ),
        'body.details',
      );
      expect((await readTask(id)).task.status).toBe('IN_PROGRESS');
    });

    it('keeps a payload nested 60 levels, as it came', async () => {
      const payload = JSON.parse(nested(60, '"bottom"'));
      const res = await api.call('POST', '/api/tasks', {
        auth: supervisor,
        body: { title: 'deep', payload },
      });
      expect(res.status).toBe(201);
      const { id } = (await res.json()) as { id: string };
      expect((await readTask(id)).task.payload).toEqual(payload);
    });
  });

  describe('no silent changes', () => {
    it('keeps __proto__ and constructor keys as data, in a payload and in a result', async () => {
      const payload = '{"__proto__":{"polluted":true},"constructor":{"prototype":1},"x":{"__proto__":[1]}}';
      const res = await send(
        'POST',
        '/api/tasks',
        supervisor,
        `{"title":"proto","capability":"echo","payload":${payload}}`,
      );
      expect(res.status, await res.clone().text()).toBe(201);
      const { id } = (await res.json()) as { id: string };
      // jsonb orders keys its own way, so compare own properties rather than text.
      const stored = (await readTask(id)).task.payload as Record<string, Record<string, unknown>>;
      expect(Object.keys(stored).sort()).toEqual(['__proto__', 'constructor', 'x']);
      expect(Object.getOwnPropertyDescriptor(stored, '__proto__')?.value).toEqual({ polluted: true });
      expect(Object.getOwnPropertyDescriptor(stored, 'constructor')?.value).toEqual({ prototype: 1 });
      expect(Object.getOwnPropertyDescriptor(stored.x, '__proto__')?.value).toEqual([1]);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();

      expect((await api.call('POST', `/api/tasks/${id}/start`, { auth: agentKey })).status).toBe(200);
      const done = await send(
        'POST',
        `/api/tasks/${id}/complete`,
        agentKey,
        `{"result":{"__proto__":"kept"}}`,
      );
      expect(done.status).toBe(200);
      expect((await readTask(id)).text).toContain('"result":{"__proto__":"kept"}');
    });

    it('refuses __proto__ as a workflow variable name rather than dropping it', async () => {
      await expectRefused(
        () =>
          send(
            'POST',
            '/api/workflows',
            supervisor,
            '{"name":"wf","variables":{"__proto__":{"type":"string"}},"steps":[{"key":"a","title":"a"}]}',
          ),
        'body.variables.__proto__',
      );
    });

    it.each([
      ['1e400', 'is out of range'],
      ['-1e400', 'is out of range'],
      ['1e-400', 'is out of range'],
      ['12345678901234567890', 'has more digits'],
      ['0.1000000000000000055511151231257827', 'has more digits'],
    ])('refuses the number %s in a payload instead of storing another', async (number, message) => {
      await expectRefused(
        () => send('POST', '/api/tasks', supervisor, `{"title":"n","payload":{"n":${number}}}`),
        'body.payload.n',
        new RegExp(message),
      );
    });

    it('accepts a cost as a string with every digit, or as a number that survives the round trip', async () => {
      const id = await startedTask();
      await expectRefused(
        () =>
          send(
            'POST',
            `/api/tasks/${id}/complete`,
            agentKey,
            '{"cost":0.1000000000000000055511151231257827}',
          ),
        'body.cost',
        /send it as a string/,
      );
      const ok = await send('POST', `/api/tasks/${id}/complete`, agentKey, '{"cost":1.50e-1}');
      expect(ok.status).toBe(200);
      expect((await readTask(id)).task.cost).toBe('0.15');
      const other = await startedTask();
      await send('POST', `/api/tasks/${other}/complete`, agentKey, '{"cost":"0.100000000001"}');
      expect((await readTask(other)).task.cost).toBe('0.100000000001');
    });

    it('refuses invalid UTF-8 instead of replacing it', async () => {
      const bytes = new Uint8Array([...Buffer.from('{"title":"caf'), 0xe9, ...Buffer.from('"}')]);
      await expectRefused(() => send('POST', '/api/tasks', supervisor, bytes), 'body', /UTF-8/);
    });

    it('refuses a key given twice instead of keeping the last', async () => {
      await expectRefused(
        () => send('POST', '/api/tasks', supervisor, '{"title":"first","title":"second"}'),
        'body.title',
        /twice/,
      );
      await expectRefused(
        () => send('POST', '/api/tasks', supervisor, '{"title":"t","payload":{"a":1,"a":2}}'),
        'body.payload.a',
      );
    });

    it('refuses a sandbox request naming the task both as taskId and task_id', async () => {
      const id = await startedTask();
      await expectRefused(
        () =>
          send(
            'POST',
            `/api/agents/${agentId}/request-sandbox`,
            agentKey,
            JSON.stringify({ task_id: id, taskId: '00000000-0000-4000-8000-000000000000' }),
          ),
        'body.taskId',
        /give only one/,
      );
    });
  });

  describe('operations that take no body', () => {
    it('refuse one, but accept none or {}', async () => {
      const task = await api.call('POST', '/api/tasks', { auth: supervisor, body: { title: 'to cancel' } });
      const { id } = (await task.json()) as { id: string };
      await expectRefused(
        () => send('POST', `/api/tasks/${id}/cancel`, supervisor, '{"reason":"because"}'),
        'body',
        /takes no body/,
      );
      const started = await startedTask();
      await expectRefused(() => send('POST', `/api/tasks/${started}/heartbeat`, agentKey, '[1]'), 'body');
      expect((await send('POST', `/api/tasks/${started}/heartbeat`, agentKey, '{}')).status).toBe(200);
      expect((await send('POST', `/api/tasks/${id}/cancel`, supervisor, ' { } ')).status).toBe(200);
    });
  });
});
