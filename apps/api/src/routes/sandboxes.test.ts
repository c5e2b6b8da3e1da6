import { randomUUID } from 'node:crypto';
import type { AgentRow } from '@devart/db';
import { OpenAPIHono } from '@hono/zod-openapi';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ConflictError } from '../services/domain-errors';
import type { SandboxService } from '../services/sandboxes';
import type { AppEnv } from './route-kit';
import { sandboxRoutes } from './sandboxes';

const agent: AgentRow = {
  id: randomUUID(),
  name: 'slow agent',
  capabilities: ['shell'],
  status: 'BUSY',
  last_heartbeat_at: null,
  created_by: null,
  created_at: new Date(),
  revoked_at: null,
};

/**
 * The sandbox routes alone, as the calling agent, over a sandbox service whose exec fails with
 * `error` after its 200 has gone out; `lines` is everything logged.
 */
function slowFailingExec(error: Error) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  // Only exec is called; the rest of the service is not needed to answer it.
  const sandboxes = {
    exec: () => new Promise((_, reject) => setTimeout(() => reject(error), 30)),
  } as unknown as SandboxService;
  const app = new OpenAPIHono<AppEnv>();
  app.use(async (c, next) => {
    c.set('requestId', 'req-kept-alive');
    c.set('auth', { principal: { kind: 'agent', agent } });
    await next();
  });
  app.route('/', sandboxRoutes({ sandboxes, logger, slowExecAfterMs: 5 }));
  const exec = async () => {
    const res = await app.request(`/api/sandboxes/${randomUUID()}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: ['sleep', '1'] }),
    });
    expect(res.status).toBe(200);
    return JSON.parse(await res.text()) as { exit_code: number; error?: { type: string; detail: string } };
  };
  return { exec, lines };
}

describe('an exec answered 200 before it ended', () => {
  it('logs an unexpected failure with its stack and request id, as its body says', async () => {
    const { exec, lines } = slowFailingExec(new Error('the provider fell over'));
    const body = await exec();
    expect(body).toMatchObject({
      exit_code: -1,
      error: {
        type: 'urn:devart:problem:internal',
        detail: 'The command’s sandbox failed; it has been logged.',
      },
    });
    expect(lines.filter((line) => line.level === 50)).toMatchObject([
      { request_id: 'req-kept-alive', err: { message: 'the provider fell over' } },
    ]);
  });

  it('logs a refusal it could no longer answer with a status, and carries its problem', async () => {
    const { exec, lines } = slowFailingExec(new ConflictError('The sandbox ended meanwhile.'));
    const body = await exec();
    expect(body).toMatchObject({
      exit_code: -1,
      error: { type: 'urn:devart:problem:conflict', detail: 'The sandbox ended meanwhile.' },
    });
    expect(lines.find((line) => line.level === 40)).toMatchObject({
      request_id: 'req-kept-alive',
      problem: 'conflict',
      detail: 'The sandbox ended meanwhile.',
    });
    expect(lines.filter((line) => line.level === 50)).toEqual([]);
  });
});
