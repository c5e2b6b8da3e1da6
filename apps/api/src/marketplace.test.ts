import { randomUUID } from 'node:crypto';
import semver from 'semver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { digestRows, expectProblem } from '../../../test/http';

let api: TestApi;
let supervisor: string;
let otherSupervisor: string;
let admin: string;
let viewer: string;

beforeAll(async () => {
  api = await createTestApi();
  supervisor = await api.token('supervisor');
  otherSupervisor = await api.token('supervisor', { sub: randomUUID() });
  admin = await api.token('admin');
  viewer = await api.token('viewer');
});

afterAll(async () => {
  await api?.drop();
});

const workflowManifest = (name = 'pipeline') => ({
  name,
  variables: { branch: { type: 'string', required: true } },
  steps: [
    { key: 'lint', title: 'Lint {{vars.branch}}', capability: 'mk', payload: { branch: '{{vars.branch}}' } },
    { key: 'test', title: 'Test', capability: 'mk', depends_on: ['lint'], payload: { cost: '0.25' } },
  ],
});

let unique = 0;
const uniqueName = (stem: string) => `${stem}-${++unique}-${randomUUID().slice(0, 8)}`;

function item(overrides: Record<string, unknown> = {}) {
  return {
    item_type: 'workflow',
    name: uniqueName('item'),
    version: '1.0.0',
    description: 'Runs the checks of a branch.',
    tags: ['ci'],
    repository_url: 'https://github.com/acme/pipeline',
    manifest: workflowManifest(),
    ...overrides,
  };
}

async function publish(body: Record<string, unknown>, auth = supervisor) {
  const res = await api.call('POST', '/api/marketplace', { auth, body });
  const text = await res.text();
  expect(res.status, text).toBe(201);
  return JSON.parse(text) as { id: string; name: string; version: string; publisher_id: string };
}

interface Page {
  items: { id: string; name: string; version: string; item_type: string; tags: string[] }[];
  next_cursor: string | null;
}

async function search(query: string, auth = viewer): Promise<Page> {
  const res = await api.call('GET', `/api/marketplace?${query}`, { auth });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as Page;
}

/** Every page of a search, following next_cursor. */
async function allPages(query: string, limit: number): Promise<Page['items'][]> {
  const pages: Page['items'][] = [];
  let cursor: string | null = null;
  do {
    const page: Page = await search(`${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    pages.push(page.items);
    cursor = page.next_cursor;
  } while (cursor && pages.length < 100);
  return pages;
}

describe(`marketplace publishing on ${backend}`, () => {
  it('publishes as the authenticated user and answers with the manifest', async () => {
    const body = item({ tags: ['ci', 'lint'] });
    const published = await publish(body);
    const me = JSON.parse(Buffer.from(supervisor.split('.')[1]!, 'base64url').toString()).sub;
    expect(published).toMatchObject({
      name: body.name,
      version: '1.0.0',
      item_type: 'workflow',
      publisher_id: me,
      tags: ['ci', 'lint'],
      downloads: 0,
      yanked_at: null,
      manifest: body.manifest,
      quality: { installs: 0, runs: 0, success_rate: null },
    });
  });

  it('refuses a viewer (403), an agent key (403) and no token (401), writing nothing', async () => {
    const registered = await api.call('POST', '/api/agents', {
      auth: admin,
      body: { name: 'publisher agent', capabilities: ['mk'] },
    });
    const agentKey = ((await registered.json()) as { api_key: string }).api_key;
    const before = await digestRows(api.db);
    await expectProblem(
      await api.call('POST', '/api/marketplace', { auth: viewer, body: item() }),
      403,
      'forbidden',
    );
    await expectProblem(
      await api.call('POST', '/api/marketplace', { auth: agentKey, body: item() }),
      403,
      'forbidden',
    );
    await expectProblem(await api.call('POST', '/api/marketplace', { body: item() }), 401, 'unauthenticated');
    expect(await digestRows(api.db)).toBe(before);
  });

  it('refuses a publisher_id in the body with 400 naming it, even the caller’s own', async () => {
    const me = JSON.parse(Buffer.from(supervisor.split('.')[1]!, 'base64url').toString()).sub;
    const before = await digestRows(api.db);
    for (const forged of [randomUUID(), me]) {
      const problem = await expectProblem(
        await api.call('POST', '/api/marketplace', {
          auth: supervisor,
          body: item({ publisher_id: forged }),
        }),
        400,
        'validation',
      );
      expect(problem.errors).toEqual([
        { location: 'body', field: 'publisher_id', message: expect.stringContaining('token') },
      ]);
    }
    expect(await digestRows(api.db)).toBe(before);
  });

  const badFields: [string, Record<string, unknown>, string][] = [
    ['item_type', { item_type: 'plugin' }, 'item_type'],
    ['item_type missing', { item_type: undefined }, 'item_type'],
    ['name with capitals', { name: 'My-Flow' }, 'name'],
    ['name too long', { name: `a${'b'.repeat(64)}` }, 'name'],
    ['name with a bad scope', { name: '@Acme/flow' }, 'name'],
    ['name with a path', { name: 'a/b/c' }, 'name'],
    ['version not semver', { version: '1.0' }, 'version'],
    ['version with a leading v', { version: 'v1.0.0' }, 'version'],
    ['version missing', { version: undefined }, 'version'],
    ['repository_url over http', { repository_url: 'http://github.com/acme/x' }, 'repository_url'],
    [
      'repository_url with credentials',
      { repository_url: 'https://me:secret@github.com/acme/x' },
      'repository_url',
    ],
    ['repository_url not a URL', { repository_url: 'github.com/acme/x' }, 'repository_url'],
    ['21 tags', { tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, 'tags'],
    ['an uppercase tag', { tags: ['CI'] }, 'tags[0]'],
    ['a 33-character tag', { tags: ['ok', 'x'.repeat(33)] }, 'tags[1]'],
    ['a repeated tag', { tags: ['ci', 'ci'] }, 'tags'],
    ['tags not an array', { tags: 'ci' }, 'tags'],
    ['description over 4,000 characters', { description: 'x'.repeat(4001) }, 'description'],
    [
      'manifest missing with no repository_url',
      { manifest: undefined, repository_url: undefined },
      'manifest',
    ],
    ['manifest not an object', { manifest: ['steps'] }, 'manifest'],
    ['a workflow manifest without steps', { manifest: { name: 'x', steps: [] } }, 'manifest.steps'],
    [
      'a workflow manifest with a cycle',
      {
        manifest: {
          name: 'x',
          steps: [
            { key: 'a', title: 'A', depends_on: ['b'] },
            { key: 'b', title: 'B', depends_on: ['a'] },
          ],
        },
      },
      'manifest.steps[0].depends_on',
    ],
    [
      'a workflow manifest reading an undeclared variable',
      { manifest: { name: 'x', steps: [{ key: 'a', title: 'A', payload: { b: '{{vars.nope}}' } }] } },
      'manifest.steps[0].payload.b',
    ],
    [
      'an agent manifest without capabilities',
      { item_type: 'agent', manifest: { image: 'acme/a:1' } },
      'manifest.capabilities',
    ],
    [
      'an agent manifest with a bad capability',
      { item_type: 'agent', manifest: { capabilities: ['Bad Cap'] } },
      'manifest.capabilities[0]',
    ],
    ['an unknown field', { stars: 5 }, 'stars'],
  ];

  it.each(badFields)(
    'refuses %s with 400 naming the field, writing nothing',
    async (_case, overrides, field) => {
      const body = Object.fromEntries(Object.entries(item(overrides)).filter(([, v]) => v !== undefined));
      const before = await digestRows(api.db);
      const problem = await expectProblem(
        await api.call('POST', '/api/marketplace', { auth: supervisor, body }),
        400,
        'validation',
      );
      expect(problem.errors?.map((e) => e.field)).toContain(field);
      expect(await digestRows(api.db)).toBe(before);
    },
  );

  it('decides 20 concurrent publishes of one name@version by the unique constraint: one 201, nineteen 409', async () => {
    const body = item();
    const statuses = await Promise.all(
      Array.from({ length: 20 }, () => api.call('POST', '/api/marketplace', { auth: supervisor, body })),
    );
    const codes = statuses.map((r) => r.status).sort();
    expect(codes.filter((c) => c === 201)).toHaveLength(1);
    expect(codes.filter((c) => c === 409)).toHaveLength(19);
    await expectProblem(statuses.find((r) => r.status === 409)!, 409, 'conflict');
    const { rows } = await api.db.query('SELECT id FROM marketplace_items WHERE name = $1', [body.name]);
    expect(rows).toHaveLength(1);
  });

  it('keeps a name to its first publisher and type; an admin may publish any', async () => {
    const first = await publish(item());
    await expectProblem(
      await api.call('POST', '/api/marketplace', {
        auth: otherSupervisor,
        body: item({ name: first.name, version: '1.1.0' }),
      }),
      403,
      'forbidden',
    );
    await expectProblem(
      await api.call('POST', '/api/marketplace', {
        auth: supervisor,
        body: item({
          name: first.name,
          version: '1.2.0',
          item_type: 'agent',
          manifest: { capabilities: ['mk'] },
        }),
      }),
      409,
      'conflict',
    );
    await publish(item({ name: first.name, version: '1.3.0' }), admin);
  });

  it('accepts scoped names and reads them back by name with the slash encoded', async () => {
    const name = `@acme/${uniqueName('scoped')}`;
    await publish(item({ name, version: '0.1.0' }));
    const res = await api.call('GET', `/api/marketplace/by-name/${encodeURIComponent(name)}`, {
      auth: viewer,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ name, latest: '0.1.0', versions: [{ version: '0.1.0' }] });
    const exact = await api.call(
      'GET',
      `/api/marketplace/by-name/${encodeURIComponent(name)}/versions/0.1.0`,
      { auth: viewer },
    );
    expect(exact.status).toBe(200);
  });
});

describe(`marketplace search on ${backend}`, () => {
  const tag = `t${randomUUID().slice(0, 8)}`;
  const names = { exact: '', described: '', agent: '', versions: '' };

  beforeAll(async () => {
    names.exact = uniqueName('kubernetes-deploy');
    names.described = uniqueName('shipper');
    names.agent = uniqueName('reviewer');
    names.versions = uniqueName('semver');
    await publish(item({ name: names.exact, description: 'Rolls out a release.', tags: [tag, 'cd', 'k8s'] }));
    await publish(
      item({
        name: names.described,
        description: 'Ships builds; can deploy to kubernetes too.',
        tags: [tag, 'cd'],
      }),
    );
    await publish(
      item({
        name: names.agent,
        item_type: 'agent',
        description: 'Reviews kubernetes manifests.',
        tags: [tag, 'review'],
        manifest: { capabilities: ['review'], image: 'ghcr.io/acme/reviewer:1.0.0' },
      }),
    );
    for (const version of [
      '1.9.0',
      '1.10.0',
      '2.0.0-rc.1',
      '2.0.0-alpha',
      '2.0.0',
      '2.0.0-rc.2',
      '0.9.0',
      '2.1.0-beta.1',
    ]) {
      await publish(item({ name: names.versions, version, tags: [tag, 'semver'] }));
    }
  });

  it('ranks a name match above a description match, and finds words by prefix', async () => {
    const page = await search(`q=kubernetes&tags=${tag}`);
    const found = page.items.map((i) => i.name);
    expect(found.slice(0, 1)).toEqual([names.exact]);
    expect(found).toEqual(expect.arrayContaining([names.described, names.agent]));
    expect(found).toHaveLength(3);
    expect((await search(`q=kube+roll&tags=${tag}`)).items.map((i) => i.name)).toEqual([names.exact]);
    expect((await search(`q=nothing-like-this&tags=${tag}`)).items).toEqual([]);
  });

  it('filters by tag containment (all of them) and by type', async () => {
    expect((await search(`tags=${tag},cd&sort=name`)).items.map((i) => i.name)).toEqual(
      [names.exact, names.described].sort(),
    );
    expect((await search(`tags=${tag},cd,k8s`)).items.map((i) => i.name)).toEqual([names.exact]);
    expect((await search(`tags=${tag}&type=agent`)).items.map((i) => i.name)).toEqual([names.agent]);
    expect((await search(`tags=${tag}&type=workflow`)).items.map((i) => i.item_type)).not.toContain('agent');
  });

  it('shows the newest release per name by default and every version by semver precedence with versions=all', async () => {
    const latest = await search(`tags=${tag},semver`);
    expect(latest.items.map((i) => i.version)).toEqual(['2.0.0']);
    const all = await search(`tags=${tag},semver&versions=all&sort=name`);
    expect(all.items.map((i) => i.version)).toEqual([
      '2.1.0-beta.1',
      '2.0.0',
      '2.0.0-rc.2',
      '2.0.0-rc.1',
      '2.0.0-alpha',
      '1.10.0',
      '1.9.0',
      '0.9.0',
    ]);
    const byName = (await (
      await api.call('GET', `/api/marketplace/by-name/${names.versions}`, { auth: viewer })
    ).json()) as { latest: string; versions: { version: string }[] };
    expect(byName.latest).toBe('2.0.0');
    expect(byName.versions.map((v) => v.version)).toEqual(all.items.map((i) => i.version));
  });

  it('orders exactly as the semver package does, for versions the SQL key must get right', async () => {
    const versions = [
      '0.0.0',
      '0.0.1',
      '0.1.0',
      '1.0.0-0',
      '1.0.0-0.0',
      '1.0.0-1',
      '1.0.0-2',
      '1.0.0-10',
      '1.0.0-a',
      '1.0.0-a.1',
      '1.0.0-a.b',
      '1.0.0-a-b',
      '1.0.0-A',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.0.1',
      '1.2.3+build.5',
      '1.10.0',
      '2.0.0',
      '10.0.0',
      '9007199254740991.0.0',
    ];
    const { rows } = await api.db.query<{ version: string }>(
      `SELECT v AS version FROM unnest($1::text[]) v ORDER BY devart_semver_key(v) COLLATE "C"`,
      [versions],
    );
    expect(rows.map((r) => r.version)).toEqual([...versions].sort(semver.compare));
    const { rows: invalid } = await api.db.query<{ key: string | null }>(
      `SELECT devart_semver_key(v) AS key FROM unnest(ARRAY['1.0', 'v1.0.0', '01.0.0', '1.0.0-01', '1.0.0-']) v`,
    );
    expect(invalid.every((r) => r.key === null)).toBe(true);
  });

  it('pages through every sort without duplicates or gaps', async () => {
    for (const sort of ['newest', 'name', 'downloads']) {
      for (const versions of ['latest', 'all']) {
        const query = `tags=${tag}&sort=${sort}&versions=${versions}`;
        const whole = (await search(`${query}&limit=100`)).items.map((i) => i.id);
        const pages = await allPages(query, 2);
        expect(
          pages.flat().map((i) => i.id),
          `${sort} ${versions}`,
        ).toEqual(whole);
        expect(new Set(whole).size).toBe(whole.length);
        expect(whole.length).toBe(versions === 'all' ? 11 : 4);
      }
    }
    const relevance = (await search(`q=kubernetes&tags=${tag}&limit=100`)).items.map((i) => i.id);
    expect((await allPages(`q=kubernetes&tags=${tag}`, 1)).flat().map((i) => i.id)).toEqual(relevance);
  });

  it('refuses bad queries with 400 naming the parameter', async () => {
    const cases: [string, string][] = [
      ['type=plugin', 'type'],
      ['sort=stars', 'sort'],
      ['limit=101', 'limit'],
      ['limit=0', 'limit'],
      ['tags=Bad Tag', 'tags'],
      ['publisher=me', 'publisher'],
      ['sort=relevance', 'sort'],
      ['cursor=garbage', 'cursor'],
      ['versions=some', 'versions'],
      ['color=red', 'color'],
    ];
    for (const [query, field] of cases) {
      const problem = await expectProblem(
        await api.call('GET', `/api/marketplace?${query}`, { auth: viewer }),
        400,
        'validation',
      );
      expect(
        problem.errors?.map((e) => e.field),
        query,
      ).toContain(field);
    }
    // A cursor belongs to its sort.
    const page = await search(`tags=${tag}&sort=name&limit=1`);
    await expectProblem(
      await api.call('GET', `/api/marketplace?tags=${tag}&sort=newest&cursor=${page.next_cursor}`, {
        auth: viewer,
      }),
      400,
      'validation',
    );
  });

  it('filters by publisher', async () => {
    const mine = await publish(item({ tags: [tag, 'mine'] }), otherSupervisor);
    const page = await search(`tags=${tag}&publisher=${mine.publisher_id}`);
    expect(page.items.map((i) => i.id)).toEqual([mine.id]);
  });
});

describe(`marketplace yanking on ${backend}`, () => {
  it('hides a yanked version from search but resolves it by id and exact version; publisher or admin only', async () => {
    const name = uniqueName('yank');
    const v1 = await publish(item({ name, version: '1.0.0' }));
    const v2 = await publish(item({ name, version: '1.1.0' }));
    await expectProblem(
      await api.call('DELETE', `/api/marketplace/${v2.id}`, { auth: otherSupervisor }),
      403,
      'forbidden',
    );
    const yanked = await api.call('DELETE', `/api/marketplace/${v2.id}`, { auth: supervisor });
    expect(yanked.status).toBe(200);
    const { yanked_at } = (await yanked.json()) as { yanked_at: string };
    expect(yanked_at).toEqual(expect.any(String));
    // Yanking again keeps the first time.
    const again = await api.call('DELETE', `/api/marketplace/${v2.id}`, { auth: admin });
    expect(((await again.json()) as { yanked_at: string }).yanked_at).toBe(yanked_at);

    expect((await search(`q=${name}`)).items.map((i) => i.version)).toEqual(['1.0.0']);
    expect((await search(`q=${name}&versions=all`)).items.map((i) => i.version)).toEqual(['1.0.0']);
    expect((await api.call('GET', `/api/marketplace/${v2.id}`, { auth: viewer })).status).toBe(200);
    const exact = await api.call('GET', `/api/marketplace/by-name/${name}/versions/1.1.0`, { auth: viewer });
    expect(((await exact.json()) as { yanked_at: string }).yanked_at).toBe(yanked_at);
    const versions = (await (
      await api.call('GET', `/api/marketplace/by-name/${name}`, { auth: viewer })
    ).json()) as {
      latest: string;
      versions: { version: string; yanked_at: string | null }[];
    };
    expect(versions.latest).toBe('1.0.0');
    expect(versions.versions.map((v) => [v.version, v.yanked_at !== null])).toEqual([
      ['1.1.0', true],
      ['1.0.0', false],
    ]);
    await api.call('DELETE', `/api/marketplace/${v1.id}`, { auth: admin });
    expect((await search(`q=${name}`)).items).toEqual([]);
    // Versions never come back: publishing 1.1.0 again is still a conflict.
    await expectProblem(
      await api.call('POST', '/api/marketplace', {
        auth: supervisor,
        body: item({ name, version: '1.1.0' }),
      }),
      409,
      'conflict',
    );
  });

  it('answers 404 for unknown items and names', async () => {
    await expectProblem(
      await api.call('GET', `/api/marketplace/${randomUUID()}`, { auth: viewer }),
      404,
      'not_found',
    );
    await expectProblem(
      await api.call('DELETE', `/api/marketplace/${randomUUID()}`, { auth: admin }),
      404,
      'not_found',
    );
    await expectProblem(
      await api.call('GET', '/api/marketplace/by-name/no-such-item', { auth: viewer }),
      404,
      'not_found',
    );
    await expectProblem(
      await api.call('POST', `/api/marketplace/${randomUUID()}/install`, { auth: supervisor }),
      404,
      'not_found',
    );
  });
});

describe(`marketplace install on ${backend}`, () => {
  it('turns an agent item into the devart agent command and counts the download', async () => {
    const agent = await publish(
      item({
        item_type: 'agent',
        manifest: { capabilities: ['echo', 'shell'], resources: { cpu: 500, memory: 256 } },
      }),
    );
    const res = await api.call('POST', `/api/marketplace/${agent.id}/install`, { auth: supervisor });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { downloads: number; warnings: string[]; agent: { command: string } };
    expect(body.downloads).toBe(1);
    expect(body.warnings).toEqual([]);
    expect(body.agent.command).toBe(
      'npx devart agent --capability echo,shell --api http://localhost --key "$DEVART_AGENT_KEY" --amqp "$DEVART_AMQP_URL"',
    );
    const custom = await publish(item({ item_type: 'agent', manifest: { capabilities: ['terraform'] } }));
    const installed = (await (
      await api.call('POST', `/api/marketplace/${custom.id}/install`, { auth: admin })
    ).json()) as { warnings: string[] };
    expect(installed.warnings[0]).toContain('no handler for terraform');
    await expectProblem(
      await api.call('POST', `/api/marketplace/${custom.id}/install`, { auth: viewer }),
      403,
      'forbidden',
    );
  });
});
