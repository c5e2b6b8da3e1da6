import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';

/** What requestLog leaves on the context: the id a log line about this request should carry. */
export interface RequestLogEnv {
  Variables: { requestId: string };
}

/** Gives every request an id (echoed as X-Request-Id) and logs one line when it ends. */
export const requestLog = ({ logger }: { logger: Logger }) =>
  async function logRequest(c, next) {
    const requestId = c.req.header('x-request-id') ?? randomUUID();
    c.set('requestId', requestId);
    const started = performance.now();
    await next();
    c.header('x-request-id', requestId);
    logger.info(
      {
        request_id: requestId,
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
      },
      'request',
    );
  } satisfies MiddlewareHandler<RequestLogEnv>;
