import type { Overview } from '@devart/contracts';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  api,
  closeSession,
  navLink,
  openSession,
  type Session,
  screenshot,
  signInWithLoginLink,
  timeouts,
  waitUntilLive,
} from './browser';
import { launchBrowser } from './chromium';

interface RunDetail {
  status: string;
  trigger_context: Record<string, unknown>;
  steps: { step_key: string; status: string }[];
}

describe('workflows in the console', () => {
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

  it('triggers the demo workflow from its page and watches the run reach COMPLETED on the timeline, with duration and cost', async () => {
    session = await openSession(browser);
    const { page } = session;
    await signInWithLoginLink(page);
    await navLink(page, 'Workflows').click();
    await page.getByRole('heading', { level: 1, name: 'Workflows' }).waitFor();
    const row = page.locator('tr[data-workflow-name="ci-pipeline"]');
    await row.waitFor();
    await screenshot(page, 'workflows');

    await row.getByRole('link', { name: 'ci-pipeline' }).click();
    await page.getByRole('heading', { level: 1, name: 'ci-pipeline' }).waitFor();
    const dag = page.getByTestId('workflow-dag');
    for (const key of ['checkout', 'lint', 'test', 'report'])
      await dag.locator(`[data-step-key="${key}"]`).waitFor();
    await screenshot(page, 'workflow-dag');

    await waitUntilLive(page);
    // A marker on the window: a reload would lose it, so the run below must fill in live.
    await page.evaluate(() => Object.assign(window, { __sameDocument: true }));
    const form = page.getByRole('form', { name: 'Trigger a run' });
    await form.getByLabel('branch').fill('feature-browser');
    await form.getByRole('button', { name: 'Trigger run' }).click();
    await page.waitForURL(/\/workflows\/runs\/[0-9a-f-]{36}$/);
    const runId = new URL(page.url()).pathname.split('/').pop()!;

    await page
      .getByTestId('run-status')
      .and(page.locator('[data-status=COMPLETED]'))
      .waitFor({ timeout: timeouts.run });
    const timeline = page.getByRole('list', { name: "Steps on the run's timeline" });
    for (const key of ['checkout', 'lint', 'test', 'report']) {
      await timeline.locator(`[data-step-key="${key}"][data-status=DONE]`).waitFor();
    }
    await expect.poll(() => page.getByTestId('run-duration').textContent()).toMatch(/\d/);
    await expect.poll(() => page.getByTestId('run-cost').textContent()).toMatch(/\d/);
    expect(await page.evaluate(() => (window as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    await screenshot(page, 'run-timeline');

    const run = await api<RunDetail>(inject('adminToken'), `/api/workflow-runs/${runId}`);
    expect(run.status).toBe('COMPLETED');
    expect(run.trigger_context).toMatchObject({ branch: 'feature-browser' });

    await navLink(page, 'Stats').click();
    await page.getByRole('heading', { level: 1, name: 'Stats' }).waitFor();
    // With one workflow Stats opens it at once; with more, it lists them to pick one.
    const statsOf = page.getByRole('link', { name: 'Stats of ci-pipeline' });
    const headline = page.getByTestId('stats-headline');
    await statsOf.or(headline).first().waitFor();
    if (await statsOf.isVisible()) await statsOf.click();
    await headline.getByText('1 completed').waitFor();
    await page.getByRole('region', { name: 'Steps' }).locator('[data-step-key="report"]').waitFor();
    await screenshot(page, 'stats');

    // The README's Overview, with this run's tasks and the earlier tests' in it.
    await navLink(page, 'Overview').click();
    await page.getByTestId('activity-feed').getByText('workflow_run.completed').first().waitFor();
    // The counts refetch at most every 500 ms after the feed: wait until they agree with the API's.
    await expect
      .poll(async () => {
        const { tasks_by_status: expected } = await api<Overview>(inject('adminToken'), '/api/overview');
        const shown = await page
          .locator('[data-status-count]')
          .evaluateAll((links) =>
            Object.fromEntries(
              links.map((a) => [
                a.getAttribute('data-status-count'),
                Number.parseInt(a.textContent ?? '', 10),
              ]),
            ),
          );
        const same = Object.entries(expected).every(([status, count]) => shown[status] === count);
        return same || { shown, expected };
      })
      .toBe(true);
    await screenshot(page, 'overview');
  });
});
