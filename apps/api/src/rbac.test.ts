import { randomBytes } from 'node:crypto';
import { type Action, type PrincipalKind, rbacMatrix } from '@devart/core';
import { insertAgent, insertMarketplaceItem, insertTasks, upsertUser } from '@devart/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { digestRows } from '../../../test/http';
import { defaultSubject } from './auth/jwt';

// Routes anyone may call: the probes and the API's own documentation.
const publicPaths = ['/health', '/ready', '/api/openapi.json', '/api/docs'];
const publicApiRoutes = new Set(['GET /api/openapi.json', 'GET /api/docs', 'GET /api/docs/assets/:file']);

type Schema = {
  $ref?: string;
  example?: unknown;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  items?: Schema;
  pattern?: string;
  minLength?: number;
  minimum?: number;
  minItems?: number;
  format?: string;
  properties?: Record<string, Schema>;
  required?: string[];
};

interface Operation {
  method: string;
  path: string;
  action: string | undefined;
  requestBody?: { required?: boolean; content?: Record<string, { schema: Schema }> };
  parameters?: { in: string; name: string }[];
  responses: Record<string, unknown>;
}

interface OpenApiDoc {
  paths: Record<string, Record<string, Omit<Operation, 'method' | 'path' | 'action'>>>;
  components: { schemas: Record<string, Schema> };
}

const principals = ['nobody', 'viewer', 'supervisor', 'admin', 'agent'] as const;
type Principal = (typeof principals)[number];

let api: TestApi;
let doc: OpenApiDoc;
let operations: Operation[];
const credentials = {} as Record<Principal, string | undefined>;
let publishedVersions = 0;
/** The agent whose key is the `agent` principal. */
let callingAgentId: string;

beforeAll(async () => {
  api = await createTestApi();
  const res = await api.call('GET', '/api/openapi.json');
  expect(res.status).toBe(200);
  doc = (await res.json()) as OpenApiDoc;
  operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      ...op,
      method: method.toUpperCase(),
      path,
      action: (op as Record<string, unknown>)['x-devart-action'] as string | undefined,
    })),
  );
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
  callingAgentId = agent.id;
});

afterAll(async () => {
  await api?.drop();
});

/**
 * The state of the task an operation acts on, when it is not a fresh TODO task: `held` means
 * IN_PROGRESS under the calling agent's lease.
 */
const taskStateFor: Record<string, 'held' | 'quarantined'> = {
  'POST /api/tasks/{taskId}/heartbeat': 'held',
  'POST /api/tasks/{taskId}/complete': 'held',
  'POST /api/tasks/{taskId}/report-failure': 'held',
  'POST /api/tasks/{taskId}/requeue': 'quarantined',
};

/** A fresh task IN_PROGRESS under the calling agent. */
async function heldTask(): Promise<string> {
  const [task] = await insertTasks(api.db, [
    { title: 'rbac sandbox task', capability: 'shell', created_by: null },
  ]);
  const start = await api.call('POST', `/api/tasks/${task!.id}/start`, { auth: credentials.agent, body: {} });
  expect(start.status).toBe(200);
  return task!.id;
}

/**
 * A fresh row for each path parameter, in the state the operation acts on, so a write by one
 * principal never changes what the next one meets.
 */
async function freshId(op: Operation, param: string): Promise<string> {
  if (param === 'taskId') {
    const [task] = await insertTasks(api.db, [
      { title: 'rbac target', capability: 'shell', created_by: null },
    ]);
    const state = taskStateFor[`${op.method} ${op.path}`];
    if (state === 'held') {
      const start = await api.call('POST', `/api/tasks/${task!.id}/start`, {
        auth: credentials.agent,
        body: {},
      });
      expect(start.status, `starting a task for ${op.method} ${op.path}`).toBe(200);
    } else if (state === 'quarantined') {
      await api.db.query(
        `UPDATE tasks SET status = 'QUARANTINED', retry_count = max_retries + 1, last_error = 'kept failing'
         WHERE id = $1`,
        [task!.id],
      );
    }
    return task!.id;
  }
  if (param === 'agentId') {
    // An agent acts on itself; people act on any agent.
    if ((rbacMatrix[op.action as Action] as readonly PrincipalKind[]).includes('agent'))
      return callingAgentId;
    const agent = await insertAgent(api.db, {
      name: 'rbac target agent',
      capabilities: ['shell'],
      apiKeyHash: randomBytes(32).toString('hex'),
      createdBy: null,
    });
    return agent.id;
  }
  if (param === 'runId') {
    const { rows } = await api.db.query<{ id: string }>(
      `WITH w AS (INSERT INTO workflows (name, definition) VALUES ('rbac run target', '{"steps": []}') RETURNING id)
       INSERT INTO workflow_runs (workflow_id, status, definition) SELECT id, 'RUNNING', '{"steps": []}' FROM w
       RETURNING id`,
    );
    return rows[0]!.id;
  }
  if (param === 'workflowId') {
    const { rows } = await api.db.query<{ id: string }>(
      `INSERT INTO workflows (name, definition) VALUES ('rbac target', '{"steps": []}') RETURNING id`,
    );
    return rows[0]!.id;
  }
  if (param === 'sandboxId') {
    const res = await api.call('POST', `/api/agents/${callingAgentId}/request-sandbox`, {
      auth: credentials.agent,
      body: { task_id: await heldTask() },
    });
    expect(res.status, `provisioning a sandbox: ${await res.clone().text()}`).toBe(201);
    return ((await res.json()) as { sandbox_id: string }).sandbox_id;
  }
  if (param === 'version') return '1.0.0'; // the version of the {name} fixture below
  if (param === 'itemId' || param === 'name') {
    // Published by the supervisor, so the supervisor may yank it as well as the admin.
    const publisher = defaultSubject('supervisor');
    await upsertUser(api.db, { id: publisher, email: null, role: 'supervisor' });
    const item = await insertMarketplaceItem(api.db, {
      itemType: 'workflow',
      name: `rbac-item-${randomBytes(6).toString('hex')}`,
      version: '1.0.0',
      description: null,
      publisherId: publisher,
      tags: [],
      repositoryUrl: null,
      manifest: { name: 'rbac target', steps: [{ key: 'a', title: 'A' }] },
    });
    return param === 'name' ? item.name : item.id;
  }
  throw new Error(`No fixture for the path parameter {${param}}: add one to rbac.test.ts`);
}

function resolve(schema: Schema): Schema {
  if (!schema.$ref) return schema;
  const name = schema.$ref.replace('#/components/schemas/', '');
  const target = doc.components.schemas[name];
  if (!target) throw new Error(`Unresolvable $ref ${schema.$ref}`);
  return resolve(target);
}

/** The smallest valid value of a JSON Schema: required properties only, each at its lower bound. */
function sample(raw: Schema, where: string): unknown {
  const schema = resolve(raw);
  if (schema.example !== undefined) return structuredClone(schema.example);
  if ('const' in schema) return schema.const;
  if (schema.enum) return schema.enum[0];
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives?.[0]) return sample(alternatives[0], where);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'object':
      return Object.fromEntries(
        (schema.required ?? []).map((key) => {
          const property = schema.properties?.[key];
          if (!property) throw new Error(`${where}.${key} is required but not described`);
          return [key, sample(property, `${where}.${key}`)];
        }),
      );
    case 'string': {
      if (schema.format === 'uuid') return '00000000-0000-4000-8000-000000000000';
      const candidate = ['rbac-check', 'shell', 'x', '00000000-0000-4000-8000-000000000000'].find(
        (s) => s.length >= (schema.minLength ?? 0) && (!schema.pattern || new RegExp(schema.pattern).test(s)),
      );
      if (!candidate) throw new Error(`No sample string for ${where}: add one to rbac.test.ts`);
      return candidate;
    }
    case 'integer':
    case 'number':
      return schema.minimum ?? 0;
    case 'boolean':
      return false;
    case 'array': {
      const items = schema.items;
      if (!schema.minItems) return [];
      if (!items) throw new Error(`No sample items for ${where}: add one to rbac.test.ts`);
      return Array.from({ length: schema.minItems }, (_, i) => sample(items, `${where}[${i}]`));
    }
    default:
      throw new Error(
        `No sample for ${where} (type ${String(schema.type ?? 'unknown')}): add one to rbac.test.ts`,
      );
  }
}

/** What a principal the matrix lets in gets: the documented 2xx, or 410 from a route the seed retired. */
function allowedOutcome(op: Operation): string {
  const codes = Object.keys(op.responses).filter((code) => /^2\d\d$/.test(code));
  if (codes.length === 1) return codes[0]!;
  if (codes.length === 0 && op.responses['410']) return '410 application/problem+json nothing-written';
  throw new Error(`${op.method} ${op.path} documents ${codes.length} success codes`);
}

/** What the matrix says `principal` must get from `op`, in the form `outcome` below reports. */
function expected(op: Operation, principal: Principal): string {
  if (principal === 'nobody') return '401 application/problem+json www-authenticate=Bearer nothing-written';
  const allowed = rbacMatrix[op.action as Action] as readonly PrincipalKind[];
  return allowed.includes(principal) ? allowedOutcome(op) : '403 application/problem+json nothing-written';
}

/** Calls `op` as `principal` with real path ids and a valid body, and reports what came back. */
async function outcome(op: Operation, principal: Principal): Promise<string> {
  let path = op.path;
  for (const [, param] of op.path.matchAll(/\{(\w+)\}/g))
    path = path.replace(`{${param}}`, await freshId(op, param!));
  const body = op.requestBody?.content?.['application/json']
    ? sample(op.requestBody.content['application/json'].schema, `${op.method} ${op.path} body`)
    : undefined;
  // A published version never changes: each allowed principal publishes a version of its own.
  if (op.method === 'POST' && op.path === '/api/marketplace') {
    (body as { version: string }).version = `1.0.${++publishedVersions}`;
  }
  // A sandbox is for a task the agent holds.
  if (op.path.endsWith('/request-sandbox') && principal === 'agent') {
    (body as { task_id: string }).task_id = await heldTask();
  }
  const before = await digestRows(api.db);
  const res = await api.call(op.method, path, { auth: credentials[principal], body });
  if (res.status < 400) return String(res.status);
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
