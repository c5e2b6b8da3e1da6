import {
  Agent,
  AgentIdParams,
  RequestSandboxBody,
  Sandbox,
  SandboxExecBody,
  SandboxExecResult,
  SandboxIdParams,
} from '@devart/contracts';
import { createRoute } from '@hono/zod-openapi';
import { authorize } from '../middleware/auth';
import type { SandboxService } from '../services/sandboxes';
import { bearerAuth, conflict, createRouter, notFound, problemResponses } from './route-kit';

const unavailable = {
  503: {
    description:
      'No sandbox provider here (e.g. bubblewrap is not installed); the problem says how to fix it',
    content: {
      'application/problem+json': {
        schema: problemResponses[400].content['application/problem+json'].schema,
      },
    },
  },
} as const;

export function sandboxRoutes({ sandboxes }: { sandboxes: SandboxService }) {
  const router = createRouter();
  const sandboxJson = { 'application/json': { schema: Sandbox } };

  router.openapi(
    createRoute({
      method: 'get',
      path: '/api/agents/me',
      tags: ['agent work'],
      summary: 'The calling agent itself (the SDK learns its id here)',
      'x-devart-action': 'agents.self',
      security: bearerAuth,
      middleware: [authorize('agents.self')],
      responses: {
        200: { description: 'The agent', content: { 'application/json': { schema: Agent } } },
        ...problemResponses,
      },
    }),
    (c) => {
      const principal = c.get('auth').principal;
      if (principal?.kind !== 'agent') throw new Error('route needs an agent principal');
      return c.json(principal.agent, 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'post',
      path: '/api/agents/{agentId}/request-sandbox',
      tags: ['sandboxes'],
      summary: 'Provision a sandbox for a task this agent holds IN_PROGRESS',
      description:
        'No network unless the egress allows it, resource limits from `resources`, terminated when the task ' +
        'leaves IN_PROGRESS or `ttl_seconds` pass. Another agent’s task → 403; a task not IN_PROGRESS → 409; ' +
        'no provider on this server → 503.',
      'x-devart-action': 'sandboxes.request',
      security: bearerAuth,
      middleware: [authorize('sandboxes.request')],
      request: {
        params: AgentIdParams,
        body: { required: true, content: { 'application/json': { schema: RequestSandboxBody } } },
      },
      responses: {
        201: { description: 'Provisioned and running', content: sandboxJson },
        ...problemResponses,
        ...notFound,
        ...conflict,
        ...unavailable,
      },
    }),
    async (c) =>
      c.json(
        await sandboxes.request(c.get('auth').principal!, c.req.valid('param').agentId, c.req.valid('json')),
        201,
      ),
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/api/sandboxes/{sandboxId}',
      tags: ['sandboxes'],
      summary: 'A sandbox: status, spec, expiry, and why it ended',
      description: 'People with any role read every sandbox; an agent reads its own.',
      'x-devart-action': 'sandboxes.read',
      security: bearerAuth,
      middleware: [authorize('sandboxes.read')],
      request: { params: SandboxIdParams },
      responses: {
        200: { description: 'The sandbox', content: sandboxJson },
        ...problemResponses,
        ...notFound,
      },
    }),
    async (c) => c.json(await sandboxes.read(c.get('auth').principal!, c.req.valid('param').sandboxId), 200),
  );

  router.openapi(
    createRoute({
      method: 'post',
      path: '/api/sandboxes/{sandboxId}/exec',
      tags: ['sandboxes'],
      summary: 'Run a command (argv) in the sandbox and wait for it',
      description:
        'stdout and stderr are each capped (truncated says so); timeout_ms kills the whole process tree ' +
        '(exit_code 124). Only the agent that owns the sandbox.',
      'x-devart-action': 'sandboxes.exec',
      security: bearerAuth,
      middleware: [authorize('sandboxes.exec')],
      request: {
        params: SandboxIdParams,
        body: { required: true, content: { 'application/json': { schema: SandboxExecBody } } },
      },
      responses: {
        200: {
          description: 'The command finished',
          content: { 'application/json': { schema: SandboxExecResult } },
        },
        ...problemResponses,
        ...notFound,
        ...conflict,
        ...unavailable,
      },
    }),
    async (c) =>
      c.json(
        await sandboxes.exec(c.get('auth').principal!, c.req.valid('param').sandboxId, c.req.valid('json')),
        200,
      ),
  );

  router.openapi(
    createRoute({
      method: 'delete',
      path: '/api/sandboxes/{sandboxId}',
      tags: ['sandboxes'],
      summary: 'Terminate a sandbox (idempotent): everything it runs is killed and its workspace removed',
      description: 'Its agent, a supervisor or an admin. Terminating an ended sandbox answers it as it is.',
      'x-devart-action': 'sandboxes.terminate',
      security: bearerAuth,
      middleware: [authorize('sandboxes.terminate')],
      request: { params: SandboxIdParams },
      responses: {
        200: { description: 'Terminated', content: sandboxJson },
        ...problemResponses,
        ...notFound,
      },
    }),
    async (c) =>
      c.json(await sandboxes.terminate(c.get('auth').principal!, c.req.valid('param').sandboxId), 200),
  );

  return router;
}
