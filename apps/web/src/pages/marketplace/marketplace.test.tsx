import type { UserRole } from '@devart/core';
import { configure, fireEvent, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { App } from '../../app';
import { json, mockApi, problem, renderSignedIn, sessionOf } from '../../test-utils';

// The first render in a file loads the app's modules; on a busy CI machine that can outlast the default 1 s.
configure({ asyncUtilTimeout: 5000 });

beforeAll(() => {
  globalThis.ResizeObserver ??= class {
    observe() {}
    unobserve() {}
    disconnect() {}
  } as unknown as typeof ResizeObserver;
});
afterEach(() => vi.unstubAllGlobals());

const itemId = 'a1b20000-0000-4000-8000-000000000001';
const supervisor = sessionOf('supervisor');
/** The supervisor of mockApi publishes the item, so it may yank it. */
const supervisorId = supervisor.kind === 'user' ? supervisor.subject : null;
const manifest = {
  name: 'ci-pipeline',
  variables: { branch: { type: 'string', required: true } },
  steps: [
    { key: 'lint', title: 'Lint', capability: 'shell' },
    { key: 'test', title: 'Test', capability: 'echo', depends_on: ['lint'] },
  ],
};
const summary = (over: Record<string, unknown> = {}) => ({
  id: itemId,
  item_type: 'workflow',
  name: '@acme/ci-pipeline',
  description: 'Lint and test a branch, then report.',
  version: '1.1.0',
  publisher_id: supervisorId,
  tags: ['ci', 'testing'],
  repository_url: 'https://github.com/acme/ci-pipeline',
  created_at: '2026-12-02T06:00:00.000Z',
  yanked_at: null,
  downloads: 3,
  downloads_all_versions: 7,
  ...over,
});
const item = {
  ...summary(),
  manifest,
  quality: {
    installs: 2,
    runs: 10,
    completed: 9,
    failed: 1,
    success_rate: 0.9,
    median_duration_ms: 1200,
    median_cost: '0.0300',
  },
};
const versions = {
  name: '@acme/ci-pipeline',
  item_type: 'workflow',
  latest: '1.1.0',
  versions: [
    summary(),
    summary({ id: 'a1b20000-0000-4000-8000-000000000002', version: '1.0.0', downloads: 4 }),
  ],
};

function marketplaceApi(searches: URL[] = []) {
  return (url: URL) => {
    if (url.pathname === '/api/marketplace') {
      searches.push(url);
      const tags = url.searchParams.get('tags');
      const items = tags && !['ci', 'testing'].includes(tags) ? [] : [summary()];
      return json({ items, next_cursor: null });
    }
    if (url.pathname === `/api/marketplace/${itemId}`) return json(item);
    if (url.pathname === `/api/marketplace/by-name/${encodeURIComponent('@acme/ci-pipeline')}`)
      return json(versions);
    return undefined;
  };
}

describe('Marketplace search', () => {
  it.each([
    ['viewer', false],
    ['supervisor', true],
  ] as [UserRole, boolean][])('as %s shows results as cards, with Publish: %s', async (role, shown) => {
    mockApi(role, marketplaceApi());
    renderSignedIn(<App />, { path: '/marketplace' });
    const card = (await screen.findByRole('link', { name: '@acme/ci-pipeline' })).closest('article')!;
    expect(card.getAttribute('data-item-name')).toBe('@acme/ci-pipeline');
    expect(card.textContent).toContain('7 installs');
    expect(Boolean(screen.queryByRole('link', { name: 'Publish' }))).toBe(shown);
  });

  it('searches as the user types, and filters by type and by a tag clicked on a card', async () => {
    const searches: URL[] = [];
    mockApi('viewer', marketplaceApi(searches));
    renderSignedIn(<App />, { path: '/marketplace' });
    await screen.findByRole('link', { name: '@acme/ci-pipeline' });
    await userEvent.type(screen.getByLabelText('Search'), 'lint');
    await waitFor(() => expect(searches.at(-1)!.searchParams.get('q')).toBe('lint'));
    await userEvent.selectOptions(screen.getByLabelText('Type'), 'workflow');
    await waitFor(() => expect(searches.at(-1)!.searchParams.get('type')).toBe('workflow'));
    expect(searches.at(-1)!.searchParams.get('q')).toBe('lint');
    await userEvent.click(await screen.findByRole('button', { name: 'Filter by tag ci' }));
    await waitFor(() => expect(searches.at(-1)!.searchParams.get('tags')).toBe('ci'));
    expect(screen.getByRole('button', { name: 'Remove tag ci', pressed: true })).toBeTruthy();
    await userEvent.click(within(screen.getByRole('list', { name: 'Tag filters' })).getByRole('button'));
    // Back to a search already in the cache: the page shows it without asking again.
    expect(await screen.findByRole('button', { name: 'Filter by tag ci', pressed: false })).toBeTruthy();
    expect(screen.queryByRole('list', { name: 'Tag filters' })).toBeNull();
  });

  it('adds typed tags, refuses one that is not a tag, and says when nothing matches', async () => {
    const searches: URL[] = [];
    mockApi('viewer', marketplaceApi(searches));
    renderSignedIn(<App />, { path: '/marketplace?tags=ci' });
    await screen.findByRole('link', { name: '@acme/ci-pipeline' });
    const tags = screen.getByLabelText('Tags');
    await userEvent.type(tags, 'Bad/Tag{Enter}');
    expect((await screen.findByRole('alert')).textContent).toMatch(/Not a tag: bad\/tag/);
    await userEvent.clear(tags);
    await userEvent.type(tags, 'rust{Enter}');
    await waitFor(() => expect(searches.at(-1)!.searchParams.get('tags')).toBe('ci,rust'));
    expect(await screen.findByText(/Nothing matches these filters/)).toBeTruthy();
  });
});

describe('Marketplace item', () => {
  it('shows versions and quality signals; a viewer gets no Install, Yank or New version', async () => {
    mockApi('viewer', marketplaceApi());
    renderSignedIn(<App />, { path: `/marketplace/${itemId}` });
    expect(await screen.findByRole('heading', { name: '@acme/ci-pipeline', level: 1 })).toBeTruthy();
    expect(screen.getByTestId('quality-success-rate').textContent).toContain('90 %');
    const rows = await screen.findAllByRole('row');
    expect(rows.map((r) => r.getAttribute('data-version')).filter(Boolean)).toEqual(['1.1.0', '1.0.0']);
    expect(screen.getByTestId('quality-signals').textContent).toContain(
      '3 of this version, 7 of all versions',
    );
    expect(screen.queryByRole('button', { name: 'Install' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Yank' })).toBeNull();
    expect(screen.queryByRole('link', { name: 'New version' })).toBeNull();
  });

  it('installs a workflow item for a supervisor and shows what the install did', async () => {
    const bodies: unknown[] = [];
    mockApi('supervisor', async (url, init) => {
      if (url.pathname === `/api/marketplace/${itemId}/install` && init?.method === 'POST') {
        bodies.push(JSON.parse(String(init.body)));
        return json({
          item_id: itemId,
          item_type: 'workflow',
          name: '@acme/ci-pipeline',
          version: '1.1.0',
          downloads: 4,
          warnings: [],
          workflow: {
            id: '4ef3f7b2-b276-45fb-821d-4cd1bf61ce23',
            name: 'ci-acme',
            description: null,
            definition: manifest,
            created_by: null,
            created_at: '2026-12-02T06:00:00.000Z',
            marketplace_item_id: itemId,
          },
        });
      }
      return marketplaceApi()(url);
    });
    renderSignedIn(<App />, { path: `/marketplace/${itemId}` });
    await userEvent.type(await screen.findByLabelText('Workflow name'), 'ci-acme');
    await userEvent.click(screen.getByRole('button', { name: 'Install' }));
    const result = await screen.findByTestId('install-result');
    expect(within(result).getByRole('link', { name: 'ci-acme' }).getAttribute('href')).toBe(
      '/workflows/4ef3f7b2-b276-45fb-821d-4cd1bf61ce23',
    );
    expect(result.textContent).toContain('4 installs');
    expect(bodies).toEqual([{ workflow_name: 'ci-acme' }]);
    expect(screen.getByRole('button', { name: 'Yank' })).toBeTruthy();
  });
});

describe('Publish', () => {
  it('publishes from the form and opens the new version', async () => {
    const bodies: unknown[] = [];
    mockApi('supervisor', async (url, init) => {
      if (url.pathname === '/api/marketplace' && init?.method === 'POST') {
        bodies.push(JSON.parse(String(init.body)));
        return json(item, 201);
      }
      return marketplaceApi()(url);
    });
    renderSignedIn(<App />, { path: '/marketplace' });
    await userEvent.click(await screen.findByRole('link', { name: 'Publish' }));
    await userEvent.type(await screen.findByLabelText('Name'), '@acme/ci-pipeline');
    await userEvent.type(screen.getByLabelText('Tags'), 'ci');
    await userEvent.click(screen.getByRole('button', { name: 'Publish' }));
    expect(await screen.findByRole('heading', { name: '@acme/ci-pipeline', level: 1 })).toBeTruthy();
    expect(bodies).toEqual([
      expect.objectContaining({ item_type: 'workflow', name: '@acme/ci-pipeline', tags: ['ci'] }),
    ]);
  });

  it('refuses a bad form before asking the API, and shows the API’s refusal', async () => {
    const posts: unknown[] = [];
    mockApi('supervisor', async (url, init) => {
      if (url.pathname === '/api/marketplace' && init?.method === 'POST') {
        posts.push(init.body);
        return problem(
          409,
          'Conflict',
          '@acme/ci-pipeline@1.0.0 is already published; versions never change: publish a new one.',
        );
      }
      return marketplaceApi()(url);
    });
    renderSignedIn(<App />, { path: '/marketplace/publish' });
    const name = await screen.findByLabelText('Name');
    await userEvent.click(screen.getByRole('button', { name: 'Publish' }));
    expect(name.getAttribute('aria-invalid')).toBe('true');
    expect(posts).toEqual([]);
    await userEvent.type(name, '@acme/ci-pipeline');
    // The manifest editor holds braces userEvent would read as key names.
    fireEvent.change(screen.getByLabelText('Manifest (JSON)'), {
      target: { value: '{"capabilities": ["echo"]}' },
    });
    await userEvent.selectOptions(screen.getByLabelText('Type'), 'agent');
    await userEvent.click(screen.getByRole('button', { name: 'Publish' }));
    expect((await screen.findByRole('alert')).textContent).toContain('already published');
    expect(posts).toHaveLength(1);
  });

  it('offers the next version of an item, prefilled', async () => {
    mockApi('supervisor', marketplaceApi());
    renderSignedIn(<App />, { path: `/marketplace/publish?from=${itemId}` });
    expect(((await screen.findByLabelText('Version')) as HTMLInputElement).value).toBe('1.1.1');
    expect((screen.getByLabelText('Name') as HTMLInputElement).value).toBe('@acme/ci-pipeline');
    expect((screen.getByLabelText('Tags') as HTMLInputElement).value).toBe('ci, testing');
  });

  it('tells a viewer who opens the publish page that only supervisors and admins publish', async () => {
    mockApi('viewer', marketplaceApi());
    renderSignedIn(<App />, { path: '/marketplace/publish' });
    expect(await screen.findByText('Only supervisors and admins publish.')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Publish' })).toBeNull();
  });
});
