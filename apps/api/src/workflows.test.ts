import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';

let api: TestApi;
let supervisor: string;
beforeAll(async () => {
  api = await createTestApi();
  supervisor = await api.token('supervisor');
});
afterAll(() => api.drop());

const diamond = {
  name: 'ci-pipeline',
  description: 'checkout → lint ‖ test → report',
  variables: { branch: { type: 'string', required: true } },
  steps: [
    { key: 'checkout', title: 'Checkout', capability: 'echo', payload: { branch: '{{vars.branch}}' } },
    {
      key: 'lint',
      title: 'Lint',
      capability: 'echo',
      depends_on: ['checkout'],
      payload: { sha: '{{steps.checkout.result.sha}}' },
    },
    { key: 'test', title: 'Test', capability: 'echo', depends_on: ['checkout'] },
    {
      key: 'report',
      title: 'Report',
      depends_on: ['lint', 'test'],
      payload: {
        summary: 'lint {{steps.lint.result.status}}, test {{steps.test.result.status}} on {{vars.branch}}',
      },
    },
  ],
};

async function problemFields(body: unknown) {
  const count = async () =>
    (await api.db.query<{ n: number }>('SELECT count(*)::int AS n FROM workflows')).rows[0]!.n;
  const before = await count();
  const res = await api.call('POST', '/api/workflows', { auth: supervisor, body });
  expect(res.status).toBe(400);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(await count()).toBe(before);
  const problem = (await res.json()) as { detail: string; errors: { field: string; message: string }[] };
  return problem.errors.map((e) => `${e.field}: ${e.message}`);
}

describe(`workflow definitions on ${backend}`, () => {
  it('stores a valid diamond and reads it back, alone and in the list', async () => {
    const res = await api.call('POST', '/api/workflows', { auth: supervisor, body: diamond });
    expect(res.status).toBe(201);
    const { warnings, ...created } = (await res.json()) as {
      id: string;
      name: string;
      definition: { steps: { key: string; depends_on: string[] }[] };
      warnings: string[];
    };
    expect(created.name).toBe('ci-pipeline');
    // Which capabilities are served depends on the agents registered (workflow-warnings.test.ts).
    expect(Array.isArray(warnings)).toBe(true);
    expect(created.definition.steps.map((s) => [s.key, s.depends_on])).toEqual([
      ['checkout', []],
      ['lint', ['checkout']],
      ['test', ['checkout']],
      ['report', ['lint', 'test']],
    ]);
    const viewer = await api.token('viewer');
    const one = await api.call('GET', `/api/workflows/${created.id}`, { auth: viewer });
    expect(await one.json()).toEqual(created);
    const list = (await (await api.call('GET', '/api/workflows?limit=1', { auth: viewer })).json()) as {
      items: { id: string }[];
    };
    expect(list.items[0]!.id).toBe(created.id);
  });

  it('names the cycle of a cyclic definition', async () => {
    const cyclic = {
      name: 'loop',
      steps: [
        { key: 'a', title: 'A', depends_on: ['c'] },
        { key: 'b', title: 'B', depends_on: ['a'] },
        { key: 'c', title: 'C', depends_on: ['b'] },
      ],
    };
    expect((await problemFields(cyclic)).join('\n')).toMatch(
      /dependency cycle: (a → b → c → a|b → c → a → b|c → a → b → c)/,
    );
  });

  it('refuses unknown and duplicate step keys, naming the field', async () => {
    const fields = await problemFields({
      name: 'bad keys',
      steps: [
        { key: 'a', title: 'A' },
        { key: 'a', title: 'A again' },
        { key: 'b', title: 'B', depends_on: ['ghost'] },
      ],
    });
    expect(fields.some((f) => f.startsWith('steps[1].key') || f.startsWith('steps[0].key'))).toBe(true);
    expect(fields.some((f) => f.startsWith('steps[2].depends_on[0]') && f.includes('ghost'))).toBe(true);
  });

  it('refuses a template that reads a step that is not upstream, or a variable that is not declared', async () => {
    const fields = await problemFields({
      name: 'bad templates',
      steps: [
        { key: 'a', title: 'A', payload: { x: '{{steps.b.result}}' } },
        { key: 'b', title: 'B', payload: { nested: { y: ['{{vars.nope}}'] } } },
      ],
    });
    expect(fields.some((f) => f.startsWith('steps[0].payload.x') && /\bb\b/.test(f))).toBe(true);
    expect(fields.some((f) => f.startsWith('steps[1].payload.nested.y[0]') && f.includes('nope'))).toBe(true);
  });

  it('validates the body shape first: unknown fields and bad step keys are 400 naming them', async () => {
    const fields = await problemFields({ name: 'x', steps: [{ key: 'Bad Key', title: 'A', extra: 1 }] });
    expect(fields.some((f) => f.startsWith('steps[0].key'))).toBe(true);
    expect(fields.some((f) => f.startsWith('steps[0].extra'))).toBe(true);
  });

  it('lets supervisors define and viewers read, but not the other way round', async () => {
    expect(
      (await api.call('POST', '/api/workflows', { auth: await api.token('viewer'), body: diamond })).status,
    ).toBe(403);
    expect((await api.call('GET', '/api/workflows')).status).toBe(401);
    expect((await api.call('GET', '/api/workflows/not-a-uuid', { auth: supervisor })).status).toBe(400);
    expect(
      (await api.call('GET', '/api/workflows/00000000-0000-4000-8000-000000000000', { auth: supervisor }))
        .status,
    ).toBe(404);
  });
});
