import type { Task } from '@devart/contracts';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  api,
  closeSession,
  horizontalOverflow,
  navLink,
  openSession,
  type Session,
  screenshot,
  signInWithLoginLink,
  timeouts,
  unique,
  waitUntilLive,
} from './browser';
import { launchBrowser } from './chromium';
import { admin, createTask, quarantinedTask, taskReaches } from './fixtures';

describe('the console, signed in as the admin', () => {
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

  it('signs in through the login link, opens Tasks from the navigation and shows a task created through the API without a reload', async () => {
    session = await openSession(browser);
    const { page } = session;
    await signInWithLoginLink(page);
    // The token leaves the address at once and lives in this tab's session storage only.
    expect(page.url()).not.toContain('token=');
    expect(await page.evaluate(() => sessionStorage.getItem('devart.token'))).toBe(admin());
    await page.getByTestId('signed-in-user').filter({ hasText: 'admin' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    await waitUntilLive(page);
    await page.locator('[data-status-count]').first().waitFor();
    await page.getByTestId('activity-feed').waitFor();

    await navLink(page, 'Tasks').click();
    await page.getByRole('heading', { level: 1, name: 'Tasks' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/tasks');
    await page
      .getByRole('table', { name: 'Tasks, newest first' })
      .or(page.getByText('No tasks yet.'))
      .waitFor();
    // A marker on the window: a reload (or a full navigation) would lose it.
    await page.evaluate(() => Object.assign(window, { __sameDocument: true }));

    const title = unique('Say hello');
    const task = await createTask({ title, capability: 'echo', payload: { hello: 'world' } });
    const row = page.locator(`tr[data-task-id="${task.id}"]`);
    await row.getByRole('link', { name: title }).waitFor();
    await page.locator(`.board [data-task-id="${task.id}"]`).waitFor();
    // A demo agent finishes it; the status follows live too.
    await row.locator('[data-status=DONE]').waitFor({ timeout: timeouts.run });
    await page.locator(`[data-column=DONE] [data-task-id="${task.id}"]`).waitFor();
    expect(await page.evaluate(() => (window as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    await screenshot(page, 'tasks');

    await row.getByRole('link', { name: title }).click();
    await page.getByRole('heading', { level: 1, name: title }).waitFor();
    await page.getByRole('region', { name: 'Result' }).getByText('"hello": "world"').waitFor();
    await page
      .getByRole('list', { name: 'Attempts' })
      .locator('[data-attempt="1"] [data-status=DONE]')
      .waitFor();
    await screenshot(page, 'task-detail');

    await navLink(page, 'Overview').click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.locator('[data-status-count=DONE]').filter({ hasText: /[1-9]/ }).waitFor();
    await screenshot(page, 'overview-admin');
  });

  it('requeues a task that failed past its retries from the Quarantine page, with an edited payload', async () => {
    const task = await quarantinedTask();
    session = await openSession(browser);
    const { page } = session;
    await signInWithLoginLink(page);
    await navLink(page, 'Quarantine').click();
    await page.getByRole('heading', { level: 1, name: 'Quarantine' }).waitFor();
    const card = page.locator(`article[data-task-id="${task.id}"]`);
    await card.getByRole('heading', { name: task.title }).waitFor();
    await card
      .getByText(/exited with 3|sandbox/)
      .first()
      .waitFor();
    await card.getByRole('button', { name: 'Show attempts' }).click();
    await card.locator('[data-attempt="1"]').waitFor();
    await screenshot(page, 'quarantine');

    await card.getByRole('button', { name: `Requeue ${task.title}` }).click();
    const dialog = page.getByRole('dialog', { name: `Requeue “${task.title}”` });
    const payload = dialog.getByLabel('Payload');
    expect(JSON.parse(await payload.inputValue())).toEqual(task.payload);
    await payload.fill(
      JSON.stringify({ command: ['sh', '-c', 'echo "deployed on the second try"'] }, null, 2),
    );
    await dialog.getByRole('button', { name: 'Requeue with this payload' }).click();
    // The card leaves the page live, and the task runs again with the new payload.
    await card.waitFor({ state: 'detached' });

    if (inject('sandboxes')) {
      const done = await taskReaches(task.id, 'DONE');
      expect(done.payload).toEqual({ command: ['sh', '-c', 'echo "deployed on the second try"'] });
      expect(done.attempt).toBe(2);
      await page.goto(`/tasks/${task.id}`);
      await page.getByRole('heading', { level: 1, name: task.title }).waitFor();
      await page
        .getByRole('list', { name: 'Attempts' })
        .locator('[data-attempt="2"] [data-status=DONE]')
        .waitFor();
      await page.getByRole('region', { name: 'Result' }).getByText('deployed on the second try').waitFor();
    } else {
      // No bubblewrap here: the second attempt fails for want of a sandbox, but it ran.
      await expect.poll(async () => (await api<Task>(admin(), `/api/tasks/${task.id}`)).attempt).toBe(2);
    }
  });

  it('lists the demo agents, registers an agent showing its key once, and revokes it', async () => {
    session = await openSession(browser);
    const { page } = session;
    await signInWithLoginLink(page);
    await navLink(page, 'Agents').click();
    await page.getByRole('heading', { level: 1, name: 'Agents' }).waitFor();
    const agents = page.getByRole('table', { name: 'Agents' });
    for (const name of ['demo-agent-1', 'demo-agent-2']) {
      const row = agents.locator('tr[data-agent-id]').filter({ hasText: name });
      await row.waitFor();
      await row.getByText('shell').waitFor();
    }
    await screenshot(page, 'agents');

    const name = unique('builder').replace(' ', '-');
    await page.getByRole('button', { name: 'Register agent' }).click();
    const drawer = page.getByRole('dialog', { name: 'Register an agent' });
    await drawer.getByLabel('Name').fill(name);
    await drawer.getByLabel('Capabilities').fill('echo, shell');
    await drawer.getByRole('button', { name: 'Register', exact: true }).click();
    const registered = drawer.getByTestId('registered-agent');
    await registered.getByText(/dva_/).waitFor();
    await registered.getByRole('button', { name: 'Copy API key' }).waitFor();
    await screenshot(page, 'agent-registered');
    await drawer.getByRole('button', { name: 'Done' }).click();

    const row = agents.locator('tr[data-agent-id]').filter({ hasText: name });
    await row.waitFor();
    await row.getByRole('button', { name: `Revoke ${name}` }).click();
    await page
      .getByRole('dialog', { name: `Revoke ${name}?` })
      .getByRole('button', { name: `Revoke ${name}` })
      .click();
    await row.waitFor({ state: 'detached' });
  });

  it('fits a phone: Overview and Tasks have no horizontal overflow at 390 px', async () => {
    await createTask({
      title: unique('A rather long task title that has to wrap on a phone'),
      capability: 'echo',
    });
    session = await openSession(browser, { viewport: { width: 390, height: 844 } });
    const { page } = session;
    await signInWithLoginLink(page);
    await page.locator('[data-status-count]').first().waitFor();
    await page.getByTestId('activity-feed').waitFor();
    expect(await horizontalOverflow(page), 'Overview sticks out sideways').toBeLessThanOrEqual(0);
    await screenshot(page, 'phone-overview');

    await page.getByRole('button', { name: 'Menu' }).click();
    await navLink(page, 'Tasks').click();
    await page.getByRole('heading', { level: 1, name: 'Tasks' }).waitFor();
    await page.locator('tr[data-task-id]').first().waitFor();
    expect(await horizontalOverflow(page), 'Tasks sticks out sideways').toBeLessThanOrEqual(0);
    await screenshot(page, 'phone-tasks');
  });
});
