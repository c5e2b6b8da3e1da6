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
import { ProblemError } from '../problem';
import type { SandboxService } from '../services/sandboxes';
import { bearerAuth, conflict, createRouter, notFound, problemResponses, unavailable } from './route-kit';

/** Resolves true once `promise` has settled (either way) within `ms`, false when it has not yet. */
function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(true);
      },
    );
  });
}

/**
 * A 200 whose JSON body comes when the command ends. HTTP clients give up on an answer whose
 * headers or body stay silent for long (Node's fetch after 300 s), so the headers go out now and
 * a space every 15 s keeps the body alive; JSON allows leading whitespace. A failure after this
 * point can no longer change the status: the body then carries `error`, a problem object.
 */
function keptAlive(running: Promise<Record<string, unknown>>): Response {
  const encoder = new TextEncoder();
  let timer: ReturnType<typeof setInterval> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(' '));
      timer = setInterval(() => controller.enqueue(encoder.encode(' ')), 15_000);
      running
        .then(
          (result) => JSON.stringify(result),
          (error: unknown) =>
            JSON.stringify({
              exit_code: -1,
              stdout: '',
              stderr: '',
              truncated: false,
              timed_out: false,
              duration_ms: 0,
              error:
                error instanceof ProblemError
                  ? { type: `urn:devart:problem:${error.code}`, detail: error.detail }
                  : {
                      type: 'urn:devart:problem:internal',
                      detail: 'The command’s sandbox failed; it has been logged.',
                    },
            }),
        )
        .then((json) => {
          clearInterval(timer);
          controller.enqueue(encoder.encode(json));
          controller.close();
        });
    },
    cancel() {
      clearInterval(timer);
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
}

export function sandboxRoutes({
  sandboxes,
  slowExecAfterMs = 20_000,
}: {
  sandboxes: SandboxService;
  /** An exec still running after this long is answered 200 at once, its body kept alive until it ends. */
  slowExecAfterMs?: number;
}) {
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
        '(exit_code 124). Only the agent that owns the sandbox. A command still running after 20 s is ' +
        'answered 200 at once and its JSON body (preceded by spaces that keep the connection alive) comes ' +
        'when it ends; a failure of the sandbox after that point makes the body carry `error` ' +
        '({ type, detail }) with exit_code -1.',
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
    async (c) => {
      const running = sandboxes.exec(
        c.get('auth').principal!,
        c.req.valid('param').sandboxId,
        c.req.valid('json'),
      );
      const early = await settledWithin(running, slowExecAfterMs);
      if (early) return c.json(await running, 200);
      return keptAlive(running) as never;
    },
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
