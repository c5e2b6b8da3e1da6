import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ProblemError } from '../problem';

/** 1 MiB: bodies above it are refused with 413 before they are read whole. */
export const MAX_BODY_BYTES = 1024 * 1024;

export const limitBody = ({ maxSize = MAX_BODY_BYTES } = {}) =>
  bodyLimit({
    maxSize,
    onError: () => {
      throw new ProblemError('payload_too_large', `The request body is larger than ${maxSize} bytes.`);
    },
  });

/** A request that carries a body must say it is JSON: anything else is answered 415, not guessed at. */
export const requireJsonBody = () =>
  async function requireJson(c, next) {
    const hasBody = c.req.header('content-length') !== undefined && c.req.header('content-length') !== '0';
    const chunked = c.req.header('transfer-encoding') !== undefined;
    if ((hasBody || chunked) && ['POST', 'PUT', 'PATCH'].includes(c.req.method)) {
      const type = c.req.header('content-type') ?? '';
      if (!/^application\/([a-z.+-]*\+)?json\s*(;|$)/i.test(type)) {
        throw new ProblemError(
          'unsupported_media_type',
          `The request body must be application/json (got ${type ? `"${type}"` : 'no Content-Type'}).`,
        );
      }
    }
    return next();
  } satisfies MiddlewareHandler;
