import {
  AgentIdParams,
  RequestSandboxBody,
  Sandbox,
  SandboxExecBody,
  SandboxExecResult,
  SandboxIdParams,
} from '@devart/contracts';
import type { Context, TypedResponse } from 'hono';
import type { JSONParsed } from 'hono/utils/types';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { currentPrincipal } from '../middleware/auth';
import { asProblem } from '../problem';
import type { SandboxService } from '../services/sandboxes';
import { type AppEnv, createRouter, protectedRoute } from './route-kit';

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

type ExecResult = z.infer<typeof SandboxExecResult>;

/** What the exec route answers 200 with, whether at once or kept alive. */
type ExecAnswer = Response & TypedResponse<JSONParsed<ExecResult>, 200, 'json'>;

/**
 * A 200 whose JSON body comes when the command ends. HTTP clients give up on an answer whose
 * headers or body stay silent for long (Node's fetch after 300 s), so the headers go out now and
 * a space every 15 s keeps the body alive; JSON allows leading whitespace. A failure after this
 * point can no longer change the status: the body then carries `error`, the problem the request
 * would have been answered with, and the failure is logged here because the request's own log
 * line says 200 and `onError` never sees it.
 */
function keptAlive(c: Context<AppEnv>, running: Promise<ExecResult>, logger: Logger): ExecAnswer {
  const encoder = new TextEncoder();
  let timer: ReturnType<typeof setInterval> | undefined;
  let cancelled = false;
  const failed = (error: unknown): ExecResult => {
    const problem = asProblem(error);
    const where = { request_id: c.get('requestId'), path: c.req.path };
    if (problem) {
      logger.warn(
        { ...where, problem: problem.code, detail: problem.detail },
        'sandbox exec refused after its 200',
      );
    } else {
      logger.error({ ...where, err: error }, 'sandbox exec failed after its 200');
    }
    return {
      exit_code: -1,
      stdout: '',
      stderr: '',
      truncated: false,
      timed_out: false,
      duration_ms: 0,
      error: problem
        ? { type: `urn:devart:problem:${problem.code}`, detail: problem.detail }
        : {
            type: 'urn:devart:problem:internal',
            detail: 'The command’s sandbox failed; it has been logged.',
          },
    };
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(' '));
      timer = setInterval(() => controller.enqueue(encoder.encode(' ')), 15_000);
      running.catch(failed).then((result) => {
        clearInterval(timer);
        // A client that went away cancelled the stream; enqueueing then would throw.
        if (cancelled) return;
        controller.enqueue(encoder.encode(JSON.stringify(result)));
        controller.close();
      });
    },
    cancel() {
      cancelled = true;
      clearInterval(timer);
    },
  });
  // The body is a SandboxExecResult's JSON, only later than c.json would send it.
  return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } }) as ExecAnswer;
}

export function sandboxRoutes({
  sandboxes,
  logger,
  slowExecAfterMs = 20_000,
}: {
  sandboxes: SandboxService;
  /** Where a failure of a kept-alive exec is logged: its 200 has gone out by then. */
  logger: Logger;
  /** An exec still running after this long is answered 200 at once, its body kept alive until it ends. */
  slowExecAfterMs?: number;
}) {
  const router = createRouter();
  const sandboxJson = { 'application/json': { schema: Sandbox } };

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/agents/{agentId}/request-sandbox',
      tags: ['sandboxes'],
      summary: 'Provision a sandbox for a task this agent holds IN_PROGRESS',
      description:
        'No network unless the egress allows it, resource limits from `resources`, terminated when the task ' +
        'leaves IN_PROGRESS or `ttl_seconds` pass. Another agent’s task or one not IN_PROGRESS → 409; ' +
        'no provider on this server → 503. The operator’s sandbox policy (per capability of the task) bounds ' +
        '`image`, `egress`, `resources`, `ttl_seconds` and the live sandboxes per task: a request outside it → 403 ' +
        'naming the field (`body.egress.allow[0].cidr: …`) and the limit, before anything is provisioned.',
      action: 'sandboxes.request',
      request: {
        params: AgentIdParams,
        body: { required: true, content: { 'application/json': { schema: RequestSandboxBody } } },
      },
      responses: {
        201: { description: 'Provisioned and running', content: sandboxJson },
      },
      problems: [404, 409, 503],
    }),
    async (c) =>
      c.json(
        await sandboxes.request(
          currentPrincipal(c.get('auth')),
          c.req.valid('param').agentId,
          c.req.valid('json'),
        ),
        201,
      ),
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/sandboxes/{sandboxId}',
      tags: ['sandboxes'],
      summary: 'A sandbox: status, spec, expiry, and why it ended',
      description: 'People with any role read every sandbox; an agent reads its own.',
      action: 'sandboxes.read',
      request: { params: SandboxIdParams },
      responses: {
        200: { description: 'The sandbox', content: sandboxJson },
      },
      problems: [404],
    }),
    async (c) =>
      c.json(await sandboxes.read(currentPrincipal(c.get('auth')), c.req.valid('param').sandboxId), 200),
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/sandboxes/{sandboxId}/exec',
      tags: ['sandboxes'],
      summary: 'Run a command (argv) in the sandbox and wait for it',
      description:
        'stdout and stderr are each capped (truncated says so); timeout_ms kills the whole process tree ' +
        '(exit_code 124). Only the agent that owns the sandbox. A command still running after 20 s is ' +
        'answered 200 at once and its JSON body (preceded by spaces that keep the connection alive) comes ' +
        'when it ends; a failure of the sandbox after that point makes the body carry `error` ' +
        '({ type, detail }) with exit_code -1. A sandbox runs at most SANDBOX_MAX_CONCURRENT_EXECS ' +
        'commands at once (default 4); one more → 429 with Retry-After.',
      action: 'sandboxes.exec',
      request: {
        params: SandboxIdParams,
        body: { required: true, content: { 'application/json': { schema: SandboxExecBody } } },
      },
      responses: {
        200: {
          description: 'The command finished',
          content: { 'application/json': { schema: SandboxExecResult } },
        },
      },
      problems: [404, 409, 429, 503],
    }),
    async (c) => {
      const running = sandboxes.exec(
        currentPrincipal(c.get('auth')),
        c.req.valid('param').sandboxId,
        c.req.valid('json'),
      );
      const early = await settledWithin(running, slowExecAfterMs);
      if (early) return c.json(await running, 200);
      return keptAlive(c, running, logger);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'delete',
      path: '/api/sandboxes/{sandboxId}',
      tags: ['sandboxes'],
      summary: 'Terminate a sandbox (idempotent): everything it runs is killed and its workspace removed',
      description: 'Its agent, a supervisor or an admin. Terminating an ended sandbox answers it as it is.',
      action: 'sandboxes.terminate',
      request: { params: SandboxIdParams },
      responses: {
        200: { description: 'Terminated', content: sandboxJson },
      },
      problems: [404],
    }),
    async (c) =>
      c.json(await sandboxes.terminate(currentPrincipal(c.get('auth')), c.req.valid('param').sandboxId), 200),
  );

  return router;
}
