import { type Action, type PrincipalKind, rbacMatrix } from '@devart/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { digestRows } from '../../../test/http';
import {
  loadOperations,
  type OpenApiDoc,
  type Operation,
  pathFixtures,
  sampleOf,
} from '../../../test/openapi';

// Routes anyone may call: the probes and the API's own documentation; and the GitHub webhook,
// which takes no token but a signature of its body (github-webhooks.test.ts).
const publicPaths = ['/health', '/ready', '/api/openapi.json', '/api/docs'];
const publicApiRoutes = new Set([
  'GET /api/openapi.json',
  'GET /api/docs',
  'GET /api/docs/assets/:file',
  'POST /api/webhooks/github',
]);

const principals = ['nobody', 'viewer', 'supervisor', 'admin', 'agent'] as const;
type Principal = (typeof principals)[number];

let api: TestApi;
let doc: OpenApiDoc;
let operations: Operation[];
let fixtures: ReturnType<typeof pathFixtures>;
const credentials = {} as Record<Principal, string | undefined>;
let publishedVersions = 0;

beforeAll(async () => {
  api = await createTestApi();
  ({ doc, operations } = await loadOperations(api));
  credentials.nobody = undefined;
  credentials.viewer = await api.token('viewer');
  credentials.supervisor = await api.token('supervisor');
  credentials.admin = await api.token('admin');
  const registered = await api.call('POST', '/api/agents', {
    auth: credentials.admin,
    body: { name: 'rbac agent', capabilities: ['shell'] },
  });
  expect(registered.status).toBe(201);
  const agent = (await registered.json()) as { id: string; api_key: string };
  credentials.agent = agent.api_key;
  fixtures = pathFixtures(api, { key: agent.api_key, id: agent.id });
});

afterAll(async () => {
  await api?.drop();
});

const successCodes = (op: Operation) => Object.keys(op.responses).filter((code) => /^2\d\d$/.test(code));

/**
 * What a principal the matrix lets in gets: the documented 2xx (one of them, for a route that
 * answers 201 when it creates and 200 when it finds, like a repeated install), or 410 from a
 * route the seed retired.
 */
function allowedOutcome(op: Operation): string {
  const codes = successCodes(op);
  if (codes.length > 0) return codes.join(' or ');
  if (op.responses['410']) return '410 application/problem+json nothing-written';
  throw new Error(`${op.method} ${op.path} documents no success code`);
}

/** What the matrix says `principal` must get from `op`, in the form `outcome` below reports. */
function expected(op: Operation, principal: Principal): string {
  if (principal === 'nobody') return '401 application/problem+json www-authenticate=Bearer nothing-written';
  const allowed = rbacMatrix[op.action as Action] as readonly PrincipalKind[];
  return allowed.includes(principal) ? allowedOutcome(op) : '403 application/problem+json nothing-written';
}

/** Calls `op` as `principal` with real path ids and a valid body, and reports what came back. */
async function outcome(op: Operation, principal: Principal): Promise<string> {
  const path = await fixtures.freshPath(op);
  const body = op.requestBody?.content?.['application/json']
    ? sampleOf(doc, op.requestBody.content['application/json'].schema, `${op.method} ${op.path} body`)
    : undefined;
  // A published version never changes: each allowed principal publishes a version of its own.
  if (op.method === 'POST' && op.path === '/api/marketplace') {
    (body as { version: string }).version = `1.0.${++publishedVersions}`;
  }
  // A sandbox is for a task the agent holds.
  if (op.path.endsWith('/request-sandbox') && principal === 'agent') {
    (body as { task_id: string }).task_id = await fixtures.heldTask();
  }
  const before = await digestRows(api.db);
  const res = await api.call(op.method, path, { auth: credentials[principal], body });
  if (res.status < 400) {
    const codes = successCodes(op);
    return codes.includes(String(res.status)) ? codes.join(' or ') : String(res.status);
  }
  const written = (await digestRows(api.db)) === before ? 'nothing-written' : 'WROTE-ROWS';
  const type = res.headers.get('content-type')?.split(';')[0];
  const challenge = res.status === 401 ? ` www-authenticate=${res.headers.get('www-authenticate')}` : '';
  return `${res.status} ${type}${challenge} ${written}`;
}

describe(`RBAC over HTTP on ${backend}`, () => {
  it('gives every /api/ operation but the public docs an x-devart-action from the matrix', () => {
    const documented = operations.filter((op) => op.path.startsWith('/api/'));
    expect(documented.length).toBeGreaterThan(0);
    expect(documented.filter((op) => !op.action).map((op) => `${op.method} ${op.path}`)).toEqual([]);
    expect(
      documented.filter((op) => !Object.hasOwn(rbacMatrix, op.action!)).map((op) => `${op.action}`),
    ).toEqual([]);
  });

  it('serves no /api/ route outside the OpenAPI document except the public docs', () => {
    const documented = new Set(
      operations.map((op) => `${op.method} ${op.path.replaceAll(/\{(\w+)\}/g, ':$1')}`),
    );
    const served = new Set(
      api.app.routes
        .filter((route) => route.method !== 'ALL' && route.path.startsWith('/api/'))
        .map((route) => `${route.method} ${route.path}`),
    );
    expect([...documented].filter((route) => route.includes(' /api/') && !served.has(route))).toEqual([]);
    expect([...served].filter((route) => !documented.has(route) && !publicApiRoutes.has(route))).toEqual([]);
  });

  it('answers the public routes 200 without a token, and with a bad one', async () => {
    for (const path of publicPaths) {
      expect((await api.call('GET', path)).status, path).toBe(200);
      expect((await api.call('GET', path, { auth: 'not-a-jwt' })).status, path).toBe(200);
    }
  });

  it.each(principals)('answers every operation for %s exactly as the matrix says', async (principal) => {
    const protectedOps = operations.filter((op) => op.action);
    expect(protectedOps.length).toBeGreaterThanOrEqual(7);
    const actual: Record<string, string> = {};
    const wanted: Record<string, string> = {};
    for (const op of protectedOps) {
      const key = `${op.method} ${op.path} (${op.action})`;
      wanted[key] = expected(op, principal);
      actual[key] = await outcome(op, principal);
    }
    expect(actual).toEqual(wanted);
  });
});
