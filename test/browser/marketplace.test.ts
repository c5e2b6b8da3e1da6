import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  closeSession,
  navLink,
  openSession,
  type Session,
  screenshot,
  signInWithLoginLink,
} from './browser';
import { launchBrowser } from './chromium';
import { admin } from './fixtures';

/** Items someone else published, so the page has neighbours and the search has something to leave out. */
async function publishNeighbours(): Promise<void> {
  const items = [
    {
      item_type: 'agent',
      name: '@acme/gpu-runner',
      version: '2.1.0',
      description: 'Runs render and training jobs on a GPU node.',
      tags: ['gpu', 'ml'],
      manifest: { capabilities: ['gpu'], resources: { cpu: 4000, memory: 16384 } },
    },
    {
      item_type: 'workflow',
      name: '@acme/release-train',
      version: '1.4.0',
      description: 'Tag, build and announce a release.',
      tags: ['release'],
      manifest: {
        name: 'release-train',
        steps: [
          { key: 'tag', title: 'Tag', capability: 'echo' },
          { key: 'announce', title: 'Announce', capability: 'echo', depends_on: ['tag'] },
        ],
      },
    },
  ];
  for (const body of items) {
    await api(admin(), '/api/marketplace', { body }).catch((error: Error) => {
      // Another test file's run of this one on the same server published them already.
      if (!/409/.test(error.message)) throw error;
    });
  }
}

describe('the marketplace in the console', () => {
  let browser: Browser;
  let session: Session | undefined;

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    await closeSession(session);
    session = undefined;
  });

  it('publishes a workflow item from the form, installs it, and finds it by search', async () => {
    await publishNeighbours();
    session = await openSession(browser);
    const { page } = session;
    await signInWithLoginLink(page);
    await navLink(page, 'Marketplace').click();
    await page.getByRole('heading', { level: 1, name: 'Marketplace' }).waitFor();
    await page.locator('[data-item-name="@acme/release-train"]').waitFor();

    await page.getByRole('link', { name: 'Publish', exact: true }).click();
    const form = page.getByRole('form', { name: 'Publish to the marketplace' });
    await form.getByLabel('Type').selectOption('workflow');
    await form.getByLabel('Name').fill('@browser/nightly-build');
    await form.getByLabel('Version').fill('1.0.0');
    await form.getByLabel('Description').fill('Builds the main branch every night and reports the result.');
    await form.getByLabel('Tags').fill('ci, nightly');
    // The manifest editor starts with a valid two-step workflow; it is published as it is.
    expect(JSON.parse(await form.getByLabel('Manifest (JSON)').inputValue())).toMatchObject({
      steps: [{ key: 'build' }, { key: 'report' }],
    });
    await form.getByRole('button', { name: 'Publish', exact: true }).click();

    await page.waitForURL(/\/marketplace\/[0-9a-f-]{36}$/);
    await page.getByRole('heading', { level: 1, name: '@browser/nightly-build' }).waitFor();
    await page.getByTestId('item-version').filter({ hasText: '1.0.0' }).waitFor();
    await page.getByRole('region', { name: 'Versions' }).locator('[data-version="1.0.0"]').waitFor();
    await page.getByTestId('quality-signals').waitFor();

    const install = page.getByRole('form', { name: 'Install @browser/nightly-build' });
    await install.getByLabel('Workflow name').fill('nightly-build');
    await install.getByRole('button', { name: 'Install' }).click();
    await page.getByRole('link', { name: 'nightly-build', exact: true }).waitFor();
    await screenshot(page, 'marketplace-item');

    await navLink(page, 'Marketplace').click();
    const results = page.getByRole('list', { name: 'Results' });
    for (const name of ['@browser/nightly-build', '@acme/release-train', '@acme/gpu-runner']) {
      await results.locator(`[data-item-name="${name}"]`).waitFor();
    }
    await screenshot(page, 'marketplace');

    await page.getByLabel('Search').fill('nightly');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await results.locator('[data-item-name="@acme/release-train"]').waitFor({ state: 'detached' });
    await results.locator('[data-item-name="@browser/nightly-build"]').waitFor();
    expect(await results.locator('[data-item-name]').count()).toBe(1);
    expect(new URL(page.url()).searchParams.get('q')).toBe('nightly');
  });
});
