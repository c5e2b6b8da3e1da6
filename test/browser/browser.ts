import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { expect, inject } from 'vitest';
import { repoRoot } from '../devart-process';

/** Where every run leaves a screenshot of each page (gitignored). */
export const screenshotDir = join(repoRoot, 'test/browser/.screenshots');

/** The screenshots the README shows: copied to docs/screenshots/ when UPDATE_SCREENSHOTS=1. */
const readmeScreenshots = new Set(['overview', 'run-timeline', 'marketplace']);

/**
 * Generous waits for conditions: a shared 2-core CI machine running PGlite, two demo agents and a
 * browser can take seconds for what takes milliseconds on a laptop. Nothing ever sleeps a fixed time.
 */
export const timeouts = { ui: 20_000, run: 90_000 } as const;

export interface ConsoleProblem {
  kind: 'pageerror' | 'console.error';
  url: string;
  text: string;
}

export interface Session {
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions and console errors seen on any page of this session. */
  problems: ConsoleProblem[];
  /** Requests to anything but loopback, which were refused. */
  blocked: string[];
}

const loopback = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * A fresh browser context (no storage shared with other sessions) whose network reaches loopback
 * only, collecting page errors and console errors from every page it opens.
 */
export async function openSession(
  browser: Browser,
  { viewport = { width: 1280, height: 800 } }: { viewport?: { width: number; height: number } } = {},
): Promise<Session> {
  const context = await browser.newContext({
    baseURL: inject('baseUrl'),
    viewport,
    reducedMotion: 'reduce',
    locale: 'en-GB',
  });
  const problems: ConsoleProblem[] = [];
  const blocked: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (loopback.has(url.hostname) || url.protocol === 'data:' || url.protocol === 'blob:') {
      return route.continue();
    }
    blocked.push(url.href);
    return route.abort('blockedbyclient');
  });
  context.on('weberror', (error) =>
    problems.push({ kind: 'pageerror', url: error.page()?.url() ?? '', text: String(error.error()) }),
  );
  context.on('console', (message) => {
    if (message.type() === 'error') {
      problems.push({ kind: 'console.error', url: message.page()?.url() ?? '', text: message.text() });
    }
  });
  const page = await context.newPage();
  page.setDefaultTimeout(timeouts.ui);
  return { context, page, problems, blocked };
}

/** Closes the session and fails the test if any page threw, logged an error or reached past loopback. */
export async function closeSession(session: Session | undefined): Promise<void> {
  if (!session) return;
  await session.context.close();
  expect(session.problems, 'page errors and console errors').toEqual([]);
  expect(session.blocked, 'requests outside loopback').toEqual([]);
}

/** Signs in as the admin through the link `devart start` printed, and waits for the header to say so. */
export async function signInWithLoginLink(page: Page): Promise<void> {
  await page.goto(inject('loginLink'));
  await expect.poll(() => page.getByTestId('signed-in-user').textContent()).toContain('admin');
}

/** The main navigation's link named `name`. */
export function navLink(page: Page, name: string): Locator {
  return page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });
}

/** Waits until the page's event stream is open, so what happens next reaches it without a reload. */
export async function waitUntilLive(page: Page): Promise<void> {
  await expect.poll(() => page.getByTestId('live-indicator').textContent()).toBe('Live');
}

/**
 * Saves a full-page screenshot as `.screenshots/<name>.png`; with UPDATE_SCREENSHOTS=1 the ones the
 * README shows are copied to docs/screenshots/ too.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  const path = join(screenshotDir, `${name}.png`);
  // Timestamps and the live dot change; nothing else should, and the caret must not blink in.
  await page.screenshot({ path, fullPage: true, animations: 'disabled', caret: 'hide' });
  if (process.env.UPDATE_SCREENSHOTS === '1' && readmeScreenshots.has(name)) {
    const docs = join(repoRoot, 'docs/screenshots');
    mkdirSync(docs, { recursive: true });
    copyFileSync(path, join(docs, `${name}.png`));
  }
}

/** Whether the page is wider than its viewport (something sticks out sideways). */
export function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** Calls the API as a script would (curl-like), with a user token. */
export async function api<T = unknown>(
  token: string,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<T> {
  const res = await fetch(`${inject('baseUrl')}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      authorization: `Bearer ${token}`,
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** A title no other test or run uses. */
export function unique(prefix: string): string {
  return `${prefix} ${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}
