import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  api,
  closeSession,
  navLink,
  openSession,
  screenshot,
  signInWithLoginLink,
  unique,
  waitUntilLive,
} from './browser';
import { launchBrowser } from './chromium';
import { admin, createTask, quarantinedTask } from './fixtures';

/** Fails unless the page shows no button, and no link styled as one, whose name matches. */
async function noButton(page: Page, name: string | RegExp): Promise<void> {
  expect(await page.getByRole('button', { name }).count(), `a viewer sees a "${name}" button`).toBe(0);
  expect(await page.getByRole('link', { name }).count(), `a viewer sees a "${name}" link`).toBe(0);
}

describe('the console, signed in as a viewer', () => {
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('signs in with a pasted token and sees no control it may not use', async () => {
    const quarantined = await quarantinedTask();
    // Nobody runs the gpu capability: this task stays TODO and this run RUNNING, both cancellable.
    const waiting = await createTask({ title: unique('Waits for a GPU'), capability: 'gpu' });
    const gpuWorkflow = await api<{ id: string; name: string }>(admin(), '/api/workflows', {
      body: {
        name: unique('render').replace(' ', '-'),
        steps: [{ key: 'render', title: 'Render on a GPU', capability: 'gpu' }],
      },
    });
    const item = await api<{ id: string; name: string }>(admin(), '/api/marketplace', {
      body: {
        item_type: 'workflow',
        name: '@acme/lint-pipeline',
        version: '0.3.0',
        description: 'Lints every pull request.',
        tags: ['ci'],
        manifest: { name: 'lint-pipeline', steps: [{ key: 'lint', title: 'Lint', capability: 'echo' }] },
      },
    });
    const { run_id: runId } = await api<{ run_id: string }>(
      admin(),
      `/api/workflows/${gpuWorkflow.id}/trigger`,
      { body: {} },
    );

    // First, as the admin: every control is there, so its absence below means something.
    const adminSession = await openSession(browser);
    try {
      const { page } = adminSession;
      await signInWithLoginLink(page);
      await page.goto('/tasks');
      await page.getByRole('button', { name: 'New task' }).waitFor();
      await page.goto(`/tasks/${waiting.id}`);
      await page.getByRole('button', { name: 'Cancel task' }).waitFor();
      await page.goto(`/tasks/${quarantined.id}`);
      await page.getByRole('button', { name: 'Requeue' }).waitFor();
      await page.goto('/quarantine');
      await page.getByRole('button', { name: `Requeue ${quarantined.title}` }).waitFor();
      await page.goto('/agents');
      await page.getByRole('button', { name: 'Register agent' }).waitFor();
      await page.getByRole('button', { name: 'Revoke demo-agent-1' }).waitFor();
      await page.goto(`/workflows/${gpuWorkflow.id}`);
      await page.getByRole('button', { name: 'Trigger run' }).waitFor();
      await page.goto(`/workflows/runs/${runId}`);
      await page.getByRole('button', { name: 'Cancel run' }).waitFor();
      await page.goto('/marketplace');
      await page.getByRole('link', { name: 'Publish', exact: true }).waitFor();
      await page.goto(`/marketplace/${item.id}`);
      await page.getByRole('link', { name: 'New version' }).waitFor();
      await page.getByRole('button', { name: 'Yank' }).waitFor();
      await page.getByRole('button', { name: 'Install' }).waitFor();
    } finally {
      await closeSession(adminSession);
    }

    const session = await openSession(browser);
    try {
      const { page } = session;
      await page.goto('/');
      await page.getByRole('heading', { name: 'Sign in to devart' }).waitFor();
      await screenshot(page, 'sign-in');
      await page.getByLabel('Token').fill(inject('viewerToken'));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByTestId('signed-in-user').filter({ hasText: 'viewer' }).waitFor();
      await waitUntilLive(page);

      await navLink(page, 'Tasks').click();
      await page.locator(`tr[data-task-id="${waiting.id}"]`).waitFor();
      await noButton(page, 'New task');

      await page
        .locator(`tr[data-task-id="${waiting.id}"]`)
        .getByRole('link', { name: waiting.title })
        .click();
      await page.getByRole('heading', { level: 1, name: waiting.title }).waitFor();
      await page.getByRole('region', { name: 'Details' }).waitFor();
      await noButton(page, /Cancel/);

      await navLink(page, 'Quarantine').click();
      await page.locator(`article[data-task-id="${quarantined.id}"]`).getByRole('heading').waitFor();
      await noButton(page, /Requeue/);

      await page.locator(`article[data-task-id="${quarantined.id}"]`).getByRole('link').click();
      await page.getByRole('heading', { level: 1, name: quarantined.title }).waitFor();
      await page.getByRole('region', { name: 'Details' }).waitFor();
      await noButton(page, /Requeue/);

      await navLink(page, 'Agents').click();
      await page.locator('tr[data-agent-id]').filter({ hasText: 'demo-agent-1' }).waitFor();
      await noButton(page, /Register/);
      await noButton(page, /Revoke/);

      await navLink(page, 'Workflows').click();
      await page.getByRole('link', { name: gpuWorkflow.name }).click();
      await page.getByRole('heading', { level: 1, name: gpuWorkflow.name }).waitFor();
      await page.getByTestId('workflow-dag').locator('[data-step-key="render"]').waitFor();
      await noButton(page, /Trigger/);

      await page.goto(`/workflows/runs/${runId}`);
      await page.getByTestId('run-status').and(page.locator('[data-status=RUNNING]')).waitFor();
      await noButton(page, /Cancel/);

      await navLink(page, 'Marketplace').click();
      await page.getByRole('heading', { level: 1, name: 'Marketplace' }).waitFor();
      await page.locator(`[data-item-name="${item.name}"]`).getByRole('link', { name: item.name }).click();
      await page.getByRole('heading', { level: 1, name: item.name }).waitFor();
      await page
        .getByRole('region', { name: 'Install' })
        .getByText('Supervisors and admins install.')
        .waitFor();
      await noButton(page, /Install|Yank|New version/);
      await navLink(page, 'Marketplace').click();
      await page.locator(`[data-item-name="${item.name}"]`).waitFor();
      await noButton(page, /Publish/);
    } finally {
      await closeSession(session);
    }
  });
});
