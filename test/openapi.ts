import { randomBytes } from 'node:crypto';
import { type Action, type PrincipalKind, rbacMatrix } from '@devart/core';
import { insertAgent, insertMarketplaceItem, insertTasks, upsertUser } from '@devart/db';
import { expect } from 'vitest';
import { defaultSubject } from '../apps/api/src/auth/jwt';
import type { TestApi } from './api';

export type Schema = {
  $ref?: string;
  $defs?: Record<string, Schema>;
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

export interface Operation {
  method: string;
  path: string;
  action: string | undefined;
  requestBody?: { required?: boolean; content?: Record<string, { schema: Schema }> };
  parameters?: { in: string; name: string; schema?: Schema }[];
  responses: Record<string, unknown>;
}

export interface OpenApiDoc {
  paths: Record<string, Record<string, Omit<Operation, 'method' | 'path' | 'action'>>>;
  components: { schemas: Record<string, Schema> };
}

/** The API's own OpenAPI document and every operation in it, so a walk over it misses no route. */
export async function loadOperations(api: TestApi): Promise<{ doc: OpenApiDoc; operations: Operation[] }> {
  const res = await api.call('GET', '/api/openapi.json');
  expect(res.status).toBe(200);
  const doc = (await res.json()) as OpenApiDoc;
  const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      ...op,
      method: method.toUpperCase(),
      path,
      action: (op as Record<string, unknown>)['x-devart-action'] as string | undefined,
    })),
  );
  return { doc, operations };
}

/** `schema` with its `$ref`s followed. */
export function resolveSchema(doc: OpenApiDoc, schema: Schema): Schema {
  if (!schema.$ref) return schema;
  // A component may carry its own definitions: { $ref: '#/$defs/X', $defs: { X: … } }.
  const local = schema.$ref.startsWith('#/$defs/') && schema.$defs?.[schema.$ref.slice(8)];
  if (local) return resolveSchema(doc, local);
  const name = schema.$ref.replace('#/components/schemas/', '');
  const target = doc.components.schemas[name];
  if (!target) throw new Error(`Unresolvable $ref ${schema.$ref}`);
  return resolveSchema(doc, target);
}

/** The smallest valid value of a JSON Schema: required properties only, each at its lower bound. */
export function sampleOf(doc: OpenApiDoc, raw: Schema, where: string): unknown {
  const schema = resolveSchema(doc, raw);
  if (schema.example !== undefined) return structuredClone(schema.example);
  if ('const' in schema) return schema.const;
  if (schema.enum) return schema.enum[0];
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives?.[0]) return sampleOf(doc, alternatives[0], where);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'object':
      return Object.fromEntries(
        (schema.required ?? []).map((key) => {
          const property = schema.properties?.[key];
          if (!property) throw new Error(`${where}.${key} is required but not described`);
          return [key, sampleOf(doc, property, `${where}.${key}`)];
        }),
      );
    case 'string': {
      if (schema.format === 'uuid') return '00000000-0000-4000-8000-000000000000';
      const candidate = ['rbac-check', 'shell', 'x', '00000000-0000-4000-8000-000000000000'].find(
        (s) => s.length >= (schema.minLength ?? 0) && (!schema.pattern || new RegExp(schema.pattern).test(s)),
      );
      if (!candidate) throw new Error(`No sample string for ${where}: add one to test/openapi.ts`);
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
      if (!items) throw new Error(`No sample items for ${where}: add one to test/openapi.ts`);
      return Array.from({ length: schema.minItems }, (_, i) => sampleOf(doc, items, `${where}[${i}]`));
    }
    default:
      throw new Error(
        `No sample for ${where} (type ${String(schema.type ?? 'unknown')}): add one to test/openapi.ts`,
      );
  }
}

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

/**
 * Fresh rows for path parameters, each in the state the operation acts on, so a write by one
 * call never changes what the next one meets. `agent` is the key and id of the calling agent.
 */
export function pathFixtures(api: TestApi, agent: { key: string; id: string }) {
  /** A fresh task IN_PROGRESS under the calling agent. */
  async function heldTask(): Promise<string> {
    const [task] = await insertTasks(api.db, [{ title: 'held task', capability: 'shell', created_by: null }]);
    const start = await api.call('POST', `/api/tasks/${task!.id}/start`, { auth: agent.key, body: {} });
    expect(start.status).toBe(200);
    return task!.id;
  }

  async function freshId(op: Operation, param: string): Promise<string> {
    if (param === 'taskId') {
      const [task] = await insertTasks(api.db, [{ title: 'target', capability: 'shell', created_by: null }]);
      const state = taskStateFor[`${op.method} ${op.path}`];
      if (state === 'held') {
        const start = await api.call('POST', `/api/tasks/${task!.id}/start`, { auth: agent.key, body: {} });
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
      if ((rbacMatrix[op.action as Action] as readonly PrincipalKind[]).includes('agent')) return agent.id;
      const created = await insertAgent(api.db, {
        name: 'target agent',
        capabilities: ['shell'],
        apiKeyHash: randomBytes(32).toString('hex'),
        createdBy: null,
      });
      return created.id;
    }
    if (param === 'runId') {
      const { rows } = await api.db.query<{ id: string }>(
        `WITH w AS (INSERT INTO workflows (name, definition) VALUES ('run target', '{"steps": []}') RETURNING id)
         INSERT INTO workflow_runs (workflow_id, status, definition) SELECT id, 'RUNNING', '{"steps": []}' FROM w
         RETURNING id`,
      );
      return rows[0]!.id;
    }
    if (param === 'workflowId') {
      const { rows } = await api.db.query<{ id: string }>(
        `INSERT INTO workflows (name, definition) VALUES ('target', '{"steps": []}') RETURNING id`,
      );
      return rows[0]!.id;
    }
    if (param === 'sandboxId') {
      const res = await api.call('POST', `/api/agents/${agent.id}/request-sandbox`, {
        auth: agent.key,
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
        name: `item-${randomBytes(6).toString('hex')}`,
        version: '1.0.0',
        description: null,
        publisherId: publisher,
        tags: [],
        repositoryUrl: null,
        manifest: { name: 'target', steps: [{ key: 'a', title: 'A' }] },
      });
      return param === 'name' ? item.name : item.id;
    }
    throw new Error(`No fixture for the path parameter {${param}}: add one to test/openapi.ts`);
  }

  /** `op.path` with a fresh id for each of its parameters. */
  async function freshPath(op: Operation): Promise<string> {
    let path = op.path;
    for (const [, param] of op.path.matchAll(/\{(\w+)\}/g))
      path = path.replace(`{${param}}`, await freshId(op, param!));
    return path;
  }

  return { heldTask, freshId, freshPath };
}
