import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_JWT_SECRET, testLogger } from '../../../test/api';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { createApp } from './app';
import { createTokenVerifier } from './auth/jwt';

let current: TestDatabase;
let dist: string;
let app: ReturnType<typeof createApp>;
let unbuilt: ReturnType<typeof createApp>;

const indexHtml = '<!doctype html><title>console</title><div id="root"></div>';

beforeAll(async () => {
  current = await createTestDatabase();
  dist = mkdtempSync(join(tmpdir(), 'devart-web-dist-'));
  mkdirSync(join(dist, 'assets'));
  writeFileSync(join(dist, 'index.html'), indexHtml);
  writeFileSync(join(dist, 'assets', 'index-abc123.js'), 'console.log(1)');
  writeFileSync(join(dist, 'assets', 'index-abc123.css'), 'body{}');
  writeFileSync(join(dist, 'favicon.svg'), '<svg/>');
  const deps = {
    db: current.db,
    verifyToken: createTokenVerifier({ secret: TEST_JWT_SECRET }),
    logger: testLogger(),
    recordUsers: false,
  };
  app = createApp({ ...deps, webDist: dist });
  unbuilt = createApp({ ...deps, webDist: join(dist, 'missing') });
});

afterAll(async () => {
  rmSync(dist, { recursive: true, force: true });
  await current?.drop();
});

describe(`the web console served by the API on ${backend}`, () => {
  it('serves index.html at / and for client-side routes, revalidated on every load', async () => {
    for (const path of ['/', '/tasks', '/tasks/0b7c0000-0000-4000-8000-000000000000', '/workflows/runs/x']) {
      const res = await app.request(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control'), path).toBe('no-cache');
      expect(await res.text(), path).toBe(indexHtml);
    }
  });

  it('serves hashed assets with a year of immutable cache, and other files revalidated', async () => {
    const js = await app.request('/assets/index-abc123.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await js.text()).toBe('console.log(1)');
    const css = await app.request('/assets/index-abc123.css');
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    const icon = await app.request('/favicon.svg');
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    expect(icon.headers.get('cache-control')).toBe('no-cache');
  });

  it('answers a missing asset 404, never index.html in place of a script', async () => {
    const res = await app.request('/assets/index-old999.js');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect((await app.request('/robots.txt')).status).toBe(404);
  });

  it('never serves a file outside the build', async () => {
    writeFileSync(join(dist, '..', 'devart-web-secret.txt'), 'TOP-SECRET-CONTENT');
    try {
      for (const path of [
        '/../devart-web-secret.txt',
        '/%2e%2e/devart-web-secret.txt',
        '/assets/..%2f..%2fdevart-web-secret.txt',
      ]) {
        const res = await app.request(path);
        expect(await res.text(), path).not.toContain('TOP-SECRET-CONTENT');
      }
    } finally {
      rmSync(join(dist, '..', 'devart-web-secret.txt'), { force: true });
    }
  });

  it('leaves the API, the probes and the metrics as they were', async () => {
    const unknown = await app.request('/api/nope');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toContain('application/problem+json');
    expect((await unknown.json()) as { detail: string }).toMatchObject({ detail: 'No route GET /api/nope.' });
    expect((await app.request('/api')).status).toBe(404);
    expect((await app.request('/health')).status).toBe(200);
    expect(await (await app.request('/health')).json()).toEqual({ status: 'ok' });
    expect((await app.request('/ready')).headers.get('content-type')).toContain('json');
    expect((await app.request('/metrics')).headers.get('content-type')).toContain('text/plain');
    expect((await app.request('/health/extra')).status).toBe(404);
    expect((await app.request('/api/openapi.json')).status).toBe(200);
    expect((await app.request('/api/docs')).status).toBe(200);
    expect((await app.request('/api/tasks')).status).toBe(401);
  });

  it('answers other methods outside the API as before: a problem+json 404', async () => {
    const res = await app.request('/tasks', { method: 'POST' });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });

  it('says how to build the console when it is not built, and still serves the API', async () => {
    for (const path of ['/', '/tasks']) {
      const res = await unbuilt.request(path);
      expect(res.status, path).toBe(200);
      expect(await res.text(), path).toContain('npm run build:web');
    }
    expect((await unbuilt.request('/health')).status).toBe(200);
    expect((await unbuilt.request('/api/nope')).status).toBe(404);
  });
});
