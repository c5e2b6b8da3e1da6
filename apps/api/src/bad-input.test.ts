import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { DATE_TIME_RANGE, INT4_MAX } from '@devart/contracts';
import { type Action, type PrincipalKind, rbacMatrix } from '@devart/core';
import { insertTasks } from '@devart/db';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { digestRows, expectProblem } from '../../../test/http';
import {
  loadOperations,
  type Operation,
  pathFixtures,
  resolveSchema,
  type Schema,
  sampleOf,
} from '../../../test/openapi';
import { bubblewrap } from '../../../test/sandbox';
import { answerClientError } from './client-error';
import { timestampInstant } from './services/cursor';

// Every operation of the OpenAPI document is called with hostile values in each path parameter,
// query parameter and top-level body field. Whatever the answer, it is never a 5xx; a 4xx is
// application/problem+json and wrote nothing; the server is healthy afterwards.

const api: TestApi = await createTestApi();
const { doc, operations } = await loadOperations(api);
const admin = await api.token('admin');
const registered = await api.call('POST', '/api/agents', {
  auth: admin,
  body: { name: 'battery agent', capabilities: ['shell'] },
});
const agent = (await registered.json()) as { id: string; api_key: string };
const fixtures = pathFixtures(api, { key: agent.api_key, id: agent.id });

afterAll(async () => {
  await api.drop();
});

const upper = (id: string) => id.toUpperCase();
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const someUuid = '7d0a8f3e-1c2b-4d5e-8f90-a1b2c3d4e5f6';
const deepArray = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
const deepObject = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;

/** Cursors this API never handed out: impossible instants, bad ids, values of the wrong type, the wrong sort. */
export const craftedCursors = [
  b64(['2026-01-01 00:00:00+99', someUuid]),
  b64(['2026-13-01 00:00:00+00', someUuid]),
  b64(['2026-02-30 00:00:00+00', someUuid]),
  b64(['0000-01-01 00:00:00+00', someUuid]),
  b64(['1969-12-31 23:59:59+00', someUuid]),
  b64(['2026-01-01 24:00:00+00', someUuid]),
  b64(['2026-01-01 00:00:00+00', 'not-a-uuid']),
  b64(['2026-01-01 00:00:00+00', `${someUuid}0`]),
  b64(['2026-01-01 00:00:00+00', someUuid, 'extra']),
  b64(['2026-01-01 00:00:00+00']),
  b64([1, 2]),
  b64({ createdAt: '2026-01-01 00:00:00+00', id: someUuid }),
  b64(null),
  b64(['newest', 'garbage', someUuid]),
  b64(['newest', '2026-01-01 00:00:00+99', someUuid]),
  b64(['newest', '2026-01-01 00:00:00+00', 'x']),
  b64(['name', 'a\u0000b', '1', someUuid]),
  b64(['name', '\ud800', '1', someUuid]),
  b64(['downloads', '1e400', 'a', 'b', someUuid]),
  b64(['downloads', '99999999999999999999', 'a', 'b', someUuid]),
  b64(['downloads', '-1', 'a', 'b', someUuid]),
  b64(['relevance', 'NaN', 'a', 'b', someUuid]),
  b64(['relevance', '1e-50', 'a', 'b', someUuid]),
  b64(['relevance', '1e300', 'a', 'b', someUuid]),
  'not base64 at all!',
  '%E0%A4%A',
];

/** Query values, already URL-encoded: loose numbers, dates out of range, broken encodings, cursors. */
const hostileQueryValues = [
  '0x10',
  '1e1',
  '%205%20',
  '%2B5',
  '5.0',
  '-1',
  '',
  '2147483648',
  '99999999999999999999',
  '0000-01-01T00:00:00Z',
  '2026-13-01T00:00:00Z',
  '2026-01-01T00:00:00%2B99:00',
  '9999-12-31T23:59:59-12:00',
  '1969-12-31T23:59:59Z',
  upper(someUuid),
  '%00',
  'a%00b',
  '%ED%A0%80',
  '%E0%A4%A',
  'x'.repeat(10_000),
  ...craftedCursors.map(encodeURIComponent),
];

/** Raw JSON texts for a body field: NUL, lone surrogates, 10,000-deep nesting, numbers no column holds… */
const hostileJson = [
  '"\\u0000"',
  '"a\\u0000b"',
  '"\\ud800"',
  '"x\\udfff"',
  deepArray,
  deepObject,
  `{"k":${deepArray}}`,
  '1e400',
  '-1e400',
  '2147483648',
  '-2147483649',
  '9007199254740993',
  '1.5',
  '-1',
  '"0000-01-01T00:00:00Z"',
  '"2026-13-01T00:00:00Z"',
  JSON.stringify(upper(someUuid)),
  JSON.stringify('x'.repeat(100_000)),
  'null',
  '[]',
  '{}',
  'true',
  '"0x10"',
  '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}',
  '{"k":"\\u0000","\\u0000":"v"}',
  '["\\u0000","\\ud800"]',
];

/** Who calls an operation: an admin where the matrix allows, else the agent. */
function callerOf(op: Operation): string {
  const allowed = rbacMatrix[op.action as Action] as readonly PrincipalKind[];
  return allowed.includes('admin') ? admin : agent.api_key;
}

let publishedVersions = 0;

/** A valid body for `op`, fresh where it must be (a new version, a task the agent holds). */
async function validBody(op: Operation): Promise<Record<string, unknown> | undefined> {
  const schema = op.requestBody?.content?.['application/json']?.schema;
  if (!schema) return undefined;
  const body = sampleOf(doc, schema, `${op.method} ${op.path} body`) as Record<string, unknown>;
  if (op.method === 'POST' && op.path === '/api/marketplace') body.version = `1.0.${++publishedVersions}`;
  if (op.path.endsWith('/request-sandbox')) body.task_id = await fixtures.heldTask();
  return body;
}

/** Top-level body fields, and the fields of the first item of an array of objects (batches, steps). */
function bodyFields(op: Operation, body: Record<string, unknown>): (string | [string, string])[] {
  const raw = op.requestBody?.content?.['application/json']?.schema;
  if (!raw) return [];
  const schema = resolveSchema(doc, raw);
  const fields: (string | [string, string])[] = [];
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    fields.push(name);
    const items = resolveSchema(doc, property).items;
    const item = items && resolveSchema(doc, items as Schema);
    if (item?.properties && Array.isArray(body[name]) && body[name].length > 0) {
      for (const sub of Object.keys(item.properties)) fields.push([name, sub]);
    }
  }
  return fields;
}

const MARK = '\u0001hostile\u0001';

/** `body` as JSON with `field` replaced by the raw JSON text `value`. */
function bodyWith(body: Record<string, unknown>, field: string | [string, string], value: string): string {
  const copy = structuredClone(body);
  if (typeof field === 'string') copy[field] = MARK;
  else (copy[field[0]] as Record<string, unknown>[])[0]![field[1]] = MARK;
  return JSON.stringify(copy).replace(JSON.stringify(MARK), value);
}

interface Attempt {
  label: string;
  path: string;
  body?: string;
  /** The answer must be a 400 naming this field (`location.field`). */
  names?: string;
  /** The answer must be a 4xx. */
  refused?: boolean;
}

/**
 * Calls `op` with every attempt and lists what broke a rule. Path fixtures are renewed after an
 * answer that may have changed them (a 2xx of a write), so each attempt meets the state the
 * operation acts on.
 */
async function runAttempts(op: Operation, attempts: ((path: string) => Promise<Attempt[]>)[]) {
  const failures: string[] = [];
  const write = op.method !== 'GET';
  let path = await fixtures.freshPath(op);
  let before = write ? await digestRows(api.db) : '';
  for (const make of attempts) {
    const made = await make(path);
    // Making the attempts may write fixtures (a held task for each body): those are not the request's.
    if (write) before = await digestRows(api.db);
    for (const attempt of made) {
      const res = await api.call(op.method, attempt.path, { auth: callerOf(op), body: attempt.body });
      // An accepted event stream never ends: what matters is that it was accepted.
      const streaming = res.headers.get('content-type')?.startsWith('text/event-stream');
      if (streaming) await res.body?.cancel();
      const text = streaming ? '' : await res.text();
      const where = `${attempt.label} → ${res.status}`;
      const documented503 = res.status === 503 && op.responses['503'] !== undefined;
      if (res.status >= 500 && !documented503) failures.push(`${where}: ${text.slice(0, 200)}`);
      if (res.status >= 400) {
        if (!res.headers.get('content-type')?.startsWith('application/problem+json')) {
          failures.push(`${where} without problem+json`);
        }
        if (attempt.names) {
          const problem = JSON.parse(text) as { errors?: { location: string; field: string }[] };
          const named = problem.errors?.map((e) => `${e.location}.${e.field}`) ?? [];
          if (res.status !== 400 || !named.includes(attempt.names)) {
            failures.push(`${where} does not name ${attempt.names}: ${text.slice(0, 200)}`);
          }
        }
        if (write) {
          const after = await digestRows(api.db);
          if (after !== before) failures.push(`${where} but wrote rows`);
          before = after;
        }
      } else {
        if (attempt.names || attempt.refused) failures.push(`${where}: accepted, must be refused`);
        if (write) {
          path = await fixtures.freshPath(op);
          before = await digestRows(api.db);
        }
      }
    }
  }
  return failures;
}

/** Hostile values for a path parameter whose fresh fixture is `real`. */
function hostilePathValues(param: string, real: string): string[] {
  if (param === 'name') return ['%E0%A4%A', '%00', 'A'.repeat(300), '@x%2Fy%2Fz', '%ED%A0%80', upper(real)];
  if (param === 'version') {
    return ['1.0.0%00', '99999999999999999999.0.0', '%E0%A4%A', 'V1.0.0', `1.0.0-${'x'.repeat(300)}`];
  }
  return [
    upper(real),
    '%E0%A4%A',
    '%00',
    `${real}%00`,
    '%ED%A0%80',
    'x'.repeat(4000),
    '00000000-0000-4000-8000-000000000000',
    '-1',
    `%20${real}`,
    `{${real}}`,
  ];
}

const pathAttempts = (op: Operation) => async () => {
  const attempts: Attempt[] = [];
  const params = [...op.path.matchAll(/\{(\w+)\}/g)].map(([, param]) => param!);
  for (const param of params) {
    const ids: Record<string, string> = {};
    for (const p of params) ids[p] = await fixtures.freshId(op, p);
    for (const value of hostilePathValues(param, ids[param]!)) {
      const body = await validBody(op);
      attempts.push({
        label: `{${param}}=${value.slice(0, 60)}`,
        path: op.path.replace(/\{(\w+)\}/g, (_, p: string) => (p === param ? value : ids[p]!)),
        body: body && JSON.stringify(body),
      });
    }
  }
  return attempts;
};

const queryAttempts = (op: Operation) => async (path: string) => {
  const body = await validBody(op);
  const json = body && JSON.stringify(body);
  const declared = (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
  const attempts: Attempt[] = [
    { label: '?bogus_param=1', path: `${path}?bogus_param=1`, body: json, names: 'query.bogus_param' },
  ];
  for (const name of declared) {
    attempts.push({ label: `?${name} twice`, path: `${path}?${name}=1&${name}=2`, body: json });
    for (const value of hostileQueryValues) {
      attempts.push({
        label: `?${name}=${value.slice(0, 60)}`,
        path: `${path}?${name}=${value}`,
        body: json,
      });
    }
  }
  return attempts;
};

const bodyAttempts = (op: Operation) => async (path: string) => {
  const body = await validBody(op);
  if (!body) {
    // fetch sends no body with a GET; a body on other body-less routes must be refused.
    return op.method === 'GET'
      ? []
      : [{ label: 'a body where none is declared', path, body: '{"x":1}', refused: true }];
  }
  const attempts: Attempt[] = [];
  const rest = JSON.stringify(body).slice(1);
  for (const key of ['bogus_field', '__proto__', 'constructor']) {
    attempts.push({
      label: `unknown body field ${key}`,
      path,
      body: `{${JSON.stringify(key)}:{"x":1}${rest === '}' ? '' : ','}${rest}`,
      names: `body.${key}`,
    });
  }
  for (const field of bodyFields(op, body)) {
    for (const value of hostileJson) {
      // Each write needs a body that is fresh where it must be (a held task, a new version).
      const fresh = (await validBody(op))!;
      attempts.push({
        label: `body.${typeof field === 'string' ? field : field.join('[0].')}=${value.slice(0, 40)}`,
        path,
        body: bodyWith(fresh, field, value),
      });
    }
  }
  return attempts;
};

const needsSandbox = (op: Operation) =>
  op.path.includes('{sandboxId}') || op.path.endsWith('/request-sandbox');

describe(`bad input over every operation on ${backend}`, () => {
  const protectedOps = operations.filter((op) => op.action && !op.responses['410']);

  it('walks the whole document', () => {
    expect(protectedOps.length).toBeGreaterThanOrEqual(30);
  });

  describe.each(protectedOps.map((op) => [`${op.method} ${op.path}`, op] as const))('%s', (_, op) => {
    it.skipIf(needsSandbox(op) && !bubblewrap.available)(
      'never answers 5xx; every 4xx is problem+json and writes nothing',
      async () => {
        const failures = await runAttempts(op, [pathAttempts(op), queryAttempts(op), bodyAttempts(op)]);
        expect(failures).toEqual([]);
      },
      60_000,
    );
  });

  it('is still healthy afterwards', async () => {
    expect((await api.call('GET', '/health')).status).toBe(200);
    expect((await api.call('GET', '/ready')).status).toBe(200);
    expect((await api.call('GET', '/api/tasks?limit=1', { auth: admin })).status).toBe(200);
  });
});

/** Expects a 400 whose errors name exactly `fields` (`location.field`), each also in the detail. */
async function expectNamed(res: Response, fields: string[]) {
  const problem = await expectProblem(res, 400, 'validation');
  expect(problem.errors?.map((e) => `${e.location}.${e.field}`).sort()).toEqual([...fields].sort());
  for (const field of fields) expect(problem.detail).toContain(field);
  return problem;
}

/** A task the battery agent holds IN_PROGRESS at attempt 1, in the state start left it. */
async function newTask(title = 'focused'): Promise<string> {
  const [task] = await insertTasks(api.db, [{ title, capability: 'shell', created_by: null }]);
  return task!.id;
}

async function taskRow(id: string) {
  const { rows } = await api.db.query<{ status: string; agent_id: string | null; attempt: number }>(
    'SELECT status, agent_id, attempt FROM tasks WHERE id = $1',
    [id],
  );
  return rows[0]!;
}

/** Calls as the battery agent. */
const asAgent = (method: string, path: string, body?: unknown) =>
  api.call(method, path, { auth: agent.api_key, body });

describe(`bad input, class by class, on ${backend}`, () => {
  describe('cursors', () => {
    let workflowId: string;
    const tag = 'cursor-check';

    beforeAll(async () => {
      for (const title of ['c1', 'c2', 'c3']) await newTask(title);
      const { rows } = await api.db.query<{ id: string }>(
        `INSERT INTO workflows (name, definition) VALUES ('cursor runs', '{"steps": []}'), ('cursor 2', '{"steps": []}')
         RETURNING id`,
      );
      workflowId = rows[0]!.id;
      for (let i = 0; i < 3; i++) {
        await api.db.query(
          `INSERT INTO workflow_runs (workflow_id, status, definition) VALUES ($1, 'RUNNING', '{"steps": []}')`,
          [workflowId],
        );
      }
      for (const version of ['1.0.0', '1.1.0']) {
        for (const name of ['cursor-a', 'cursor-b']) {
          const res = await api.call('POST', '/api/marketplace', {
            auth: admin,
            body: {
              item_type: 'agent',
              name,
              version,
              description: 'cursor fixture',
              tags: [tag],
              manifest: { capabilities: ['shell'] },
            },
          });
          expect(res.status).toBe(201);
        }
      }
    });

    const lists = () => [
      '/api/tasks?limit=1',
      '/api/workflows?limit=1',
      `/api/workflows/${workflowId}/runs?limit=1`,
      `/api/marketplace?tags=${tag}&versions=all&limit=1`,
      `/api/marketplace?tags=${tag}&sort=name&limit=1`,
      `/api/marketplace?tags=${tag}&sort=downloads&limit=1`,
      `/api/marketplace?q=cursor&tags=${tag}&limit=1`,
    ];

    it('refuses every crafted cursor with 400 query.cursor, on every list', async () => {
      for (const list of lists()) {
        for (const cursor of craftedCursors) {
          const res = await api.call('GET', `${list}&cursor=${encodeURIComponent(cursor)}`, { auth: admin });
          const problem = await expectNamed(res, ['query.cursor']);
          expect(problem.detail, `${list} ${cursor}`).toContain('query.cursor: is not a valid cursor');
        }
      }
    });

    it('reads the instants of PostgreSQL text forms in any session time zone, and nothing impossible', () => {
      expect(timestampInstant('2026-12-01 10:00:00.123456+00')?.toISOString()).toBe(
        '2026-12-01T10:00:00.123Z',
      );
      expect(timestampInstant('2026-12-01 15:30:00+05:30')?.toISOString()).toBe('2026-12-01T10:00:00.000Z');
      expect(timestampInstant('1970-01-01 00:09:21+00:09:21')?.toISOString()).toBe(
        '1970-01-01T00:00:00.000Z',
      );
      expect(timestampInstant('2024-02-29T23:59:59Z')).toBeInstanceOf(Date);
      for (const bad of [
        '2026-01-01 00:00:00+16',
        '2025-02-29 00:00:00+00',
        '2026-04-31 00:00:00+00',
        '10000-01-01 00:00:00+00',
      ]) {
        expect(timestampInstant(bad), bad).toBeUndefined();
      }
    });

    it('follows the cursors it hands out, and refuses them on another list or sort', async () => {
      const cursors: Record<string, string> = {};
      for (const list of lists()) {
        const page = (await (await api.call('GET', list, { auth: admin })).json()) as { next_cursor: string };
        expect(page.next_cursor, list).toEqual(expect.any(String));
        cursors[list] = page.next_cursor;
        const next = await api.call('GET', `${list}&cursor=${encodeURIComponent(page.next_cursor)}`, {
          auth: admin,
        });
        expect(next.status, list).toBe(200);
      }
      const [tasks, , , newest, byName] = lists();
      for (const [list, foreign] of [
        [newest, cursors[tasks!]],
        [newest, cursors[byName!]],
        [byName, cursors[newest!]],
      ] as const) {
        await expectNamed(
          await api.call('GET', `${list}&cursor=${encodeURIComponent(foreign!)}`, { auth: admin }),
          ['query.cursor'],
        );
      }
    });
  });

  describe('dates', () => {
    it(`bounds since to ${DATE_TIME_RANGE.min} … 9999-12-31T23:59:59Z`, async () => {
      const { rows } = await api.db.query<{ id: string }>(
        `INSERT INTO workflows (name, definition) VALUES ('stats', '{"steps": []}') RETURNING id`,
      );
      const stats = (since: string) =>
        api.call('GET', `/api/workflows/${rows[0]!.id}/stats?since=${encodeURIComponent(since)}`, {
          auth: admin,
        });
      for (const since of [
        '0000-01-01T00:00:00Z',
        '0001-01-01T00:00:00Z',
        '1969-12-31T23:59:59Z',
        '1970-01-01T00:30:00+01:00',
        '9999-12-31T23:59:59-01:00',
        '2026-13-01T00:00:00Z',
        '2026-02-30T00:00:00Z',
        '2026-01-01T00:00:00+99:00',
        '+275760-09-13T00:00:00Z',
      ]) {
        await expectNamed(await stats(since), ['query.since']);
      }
      for (const since of ['1970-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '2026-06-01T12:00:00+05:30']) {
        expect((await stats(since)).status, since).toBe(200);
      }
    });
  });

  describe('integers bounded to their columns', () => {
    it('refuses an attempt beyond int4 on start, complete and report-failure, writing nothing', async () => {
      const id = await newTask();
      for (const [path, body] of [
        [`/api/tasks/${id}/start`, { attempt: INT4_MAX + 1 }],
        [`/api/tasks/${id}/complete`, { attempt: INT4_MAX + 1, result: {} }],
        [`/api/tasks/${id}/report-failure`, { attempt: INT4_MAX + 1, error: 'x' }],
      ] as const) {
        const before = await digestRows(api.db);
        await expectNamed(await asAgent('POST', path, body), ['body.attempt']);
        expect(await digestRows(api.db), path).toBe(before);
      }
      // The largest attempt the column holds is a stale message, not a server error.
      await expectProblem(await asAgent('POST', `/api/tasks/${id}/start`, { attempt: INT4_MAX }), 409);
    });

    it('refuses an attempt beyond int4 in a batch item, in its place or for the whole batch', async () => {
      const id = await newTask();
      for (const path of ['/api/tasks/start-batch', '/api/tasks/complete-batch']) {
        const before = await digestRows(api.db);
        const res = await asAgent('POST', path, { items: [{ task_id: id, attempt: INT4_MAX + 1 }] });
        if (res.status === 400) {
          await expectNamed(res, ['body.items[0].attempt']);
        } else {
          expect(res.status, path).toBe(200);
          const { items } = (await res.json()) as { items: { status: number; detail?: string }[] };
          expect(items[0]).toMatchObject({ status: 400, detail: expect.stringContaining('attempt') });
        }
        expect(await digestRows(api.db), path).toBe(before);
      }
    });
  });

  describe('uppercase UUIDs', () => {
    it('starts and completes a task named in capitals, and reads it back', async () => {
      const id = await newTask();
      const start = await asAgent('POST', `/api/tasks/${upper(id)}/start`, {});
      expect(start.status, await start.clone().text()).toBe(200);
      expect(((await start.json()) as { id: string }).id).toBe(id);
      expect(await taskRow(id)).toMatchObject({ status: 'IN_PROGRESS', agent_id: agent.id, attempt: 1 });
      expect((await asAgent('POST', `/api/tasks/${upper(id)}/heartbeat`)).status).toBe(200);
      const done = await asAgent('POST', `/api/tasks/${upper(id)}/complete`, { result: { ok: true } });
      expect(done.status, await done.clone().text()).toBe(200);
      expect((await taskRow(id)).status).toBe('DONE');
      expect((await api.call('GET', `/api/tasks/${upper(id)}`, { auth: admin })).status).toBe(200);
    });

    it('starts and completes batch items named in capitals', async () => {
      const ids = [await newTask(), await newTask()];
      const started = await asAgent('POST', '/api/tasks/start-batch', {
        items: ids.map((id) => ({ task_id: upper(id) })),
      });
      expect(((await started.json()) as { items: { status: number }[] }).items.map((i) => i.status)).toEqual([
        200, 200,
      ]);
      const completed = await asAgent('POST', '/api/tasks/complete-batch', {
        items: ids.map((id) => ({ task_id: upper(id), result: 1 })),
      });
      expect(
        ((await completed.json()) as { items: { status: number }[] }).items.map((i) => i.status),
      ).toEqual([200, 200]);
      for (const id of ids) expect((await taskRow(id)).status).toBe('DONE');
    });

    it('advances a workflow run whose step is completed in capitals', async () => {
      const workflow = await api.call('POST', '/api/workflows', {
        auth: admin,
        body: {
          name: 'caps',
          steps: [
            { key: 'a', title: 'A', capability: 'shell' },
            { key: 'b', title: 'B', capability: 'shell', depends_on: ['a'] },
          ],
        },
      });
      const workflowId = ((await workflow.json()) as { id: string }).id;
      const triggered = await api.call('POST', `/api/workflows/${upper(workflowId)}/trigger`, {
        auth: admin,
        body: {},
      });
      expect(triggered.status).toBe(201);
      const runId = ((await triggered.json()) as { run_id: string }).run_id;
      const step = async (key: string) => {
        const { rows } = await api.db.query<{ id: string; status: string }>(
          'SELECT id, status FROM tasks WHERE workflow_run_id = $1 AND step_key = $2',
          [runId, key],
        );
        return rows[0]!;
      };
      for (const key of ['a', 'b']) {
        const { id, status } = await step(key);
        expect(status, `step ${key} is queued`).toBe('TODO');
        expect((await asAgent('POST', `/api/tasks/${upper(id)}/start`, {})).status).toBe(200);
        expect((await asAgent('POST', `/api/tasks/${upper(id)}/complete`, { result: key })).status).toBe(200);
      }
      const run = await api.call('GET', `/api/workflow-runs/${upper(runId)}`, { auth: admin });
      expect(((await run.json()) as { status: string }).status).toBe('COMPLETED');
      const listed = await api.call('GET', `/api/tasks?workflow_run_id=${upper(runId)}`, { auth: admin });
      expect(((await listed.json()) as { items: unknown[] }).items).toHaveLength(2);
    });

    it.skipIf(!bubblewrap.available)(
      'lets an agent request a sandbox with its own id in capitals',
      async () => {
        const task = await fixtures.heldTask();
        const res = await asAgent('POST', `/api/agents/${upper(agent.id)}/request-sandbox`, {
          task_id: upper(task),
        });
        expect(res.status, await res.clone().text()).toBe(201);
        const sandbox = (await res.json()) as { sandbox_id: string; task_id: string; agent_id: string };
        expect(sandbox).toMatchObject({ task_id: task, agent_id: agent.id });
        const ended = await asAgent('DELETE', `/api/sandboxes/${upper(sandbox.sandbox_id)}`);
        expect(ended.status).toBe(200);
      },
      30_000,
    );
  });

  describe('strict numbers in the query', () => {
    it('refuses limits that are not plain digits in range, on every list', async () => {
      for (const list of ['/api/tasks', '/api/workflows', '/api/marketplace']) {
        for (const limit of ['0x10', '1e1', '%205%20', '%2B5', '5.0', '-1', '', '0', '1000', '99999999999']) {
          await expectNamed(await api.call('GET', `${list}?limit=${limit}`, { auth: admin }), [
            'query.limit',
          ]);
        }
        expect((await api.call('GET', `${list}?limit=5`, { auth: admin })).status).toBe(200);
      }
    });
  });

  describe('unknown query parameters', () => {
    it('names them on routes that declare no query, before anything is written', async () => {
      const before = await digestRows(api.db);
      await expectNamed(
        await api.call('POST', '/api/tasks?priority=5', { auth: admin, body: { title: 'not created' } }),
        ['query.priority'],
      );
      expect(await digestRows(api.db)).toBe(before);
      await expectNamed(await asAgent('GET', '/api/agents/me?verbose=1'), ['query.verbose']);
    });
  });

  describe('framework errors', () => {
    it('answers unknown methods, malformed escapes and HEAD/OPTIONS with problem+json or a plain success', async () => {
      await expectProblem(await api.call('PUT', '/api/tasks', { auth: admin }), 404, 'not_found');
      await expectProblem(await api.call('OPTIONS', '/api/tasks', { auth: admin }), 404, 'not_found');
      await expectNamed(await api.call('GET', '/api/tasks/%E0%A4%A', { auth: admin }), ['path.taskId']);
      await expectProblem(await api.call('GET', '/api/no-such-route', { auth: admin }), 404, 'not_found');
      const head = await api.call('HEAD', '/api/tasks', { auth: admin });
      expect(head.status).toBe(200);
    });

    it('answers a 20,000-character URL with 431 problem+json, and a broken request line with 400', async () => {
      const server = serve({ fetch: api.app.fetch, port: 0, hostname: '127.0.0.1' });
      server.on('clientError', answerClientError);
      await new Promise((resolve) => server.once('listening', resolve));
      const { port } = server.address() as AddressInfo;
      try {
        const long = await fetch(`http://127.0.0.1:${port}/api/tasks?q=${'a'.repeat(20_000)}`);
        const problem = await expectProblem(long, 431);
        expect(problem.type).toBe('urn:devart:problem:header_fields_too_large');

        const raw = await new Promise<string>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
          let answer = '';
          socket.on('data', (chunk) => {
            answer += chunk.toString();
          });
          socket.on('end', () => resolve(answer));
          socket.on('error', reject);
        });
        expect(raw).toMatch(/^HTTP\/1\.1 400 /);
        expect(raw).toContain('Content-Type: application/problem+json');

        expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });
});
