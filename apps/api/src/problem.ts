import { DatabaseUnavailableError } from '@devart/db';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import type { z } from 'zod';

export interface FieldError {
  location: string;
  field: string;
  message: string;
}

const titles: Record<string, string> = {
  validation: 'Invalid request',
  malformed_json: 'Malformed JSON',
  unsupported_media_type: 'Unsupported media type',
  payload_too_large: 'Payload too large',
  unauthenticated: 'Authentication required',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  conflict: 'Conflict',
  gone: 'Gone',
  not_ready: 'Not ready',
  unavailable: 'Service unavailable',
  internal: 'Internal server error',
};

const statuses: Record<string, ContentfulStatusCode> = {
  validation: 400,
  malformed_json: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  internal: 500,
  not_ready: 503,
  unavailable: 503,
};

export type ProblemCode = keyof typeof statuses;

/**
 * A domain error with a stable code; `onError` is the one place that turns it into an
 * `application/problem+json` response.
 * @example throw new ProblemError('conflict', 'Task 7d… is DONE and can no longer be cancelled')
 */
export class ProblemError extends Error {
  override name = 'ProblemError';
  constructor(
    readonly code: ProblemCode,
    readonly detail: string,
    readonly extra: { errors?: FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
  }
}

export function problemResponse(c: Context, error: ProblemError): Response {
  const status = statuses[error.code] ?? 500;
  const body = {
    type: `urn:devart:problem:${error.code}`,
    title: titles[error.code] ?? 'Error',
    status,
    detail: error.detail,
    instance: c.req.path,
    ...(error.extra.errors ? { errors: error.extra.errors } : {}),
  };
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/problem+json', ...error.extra.headers },
  });
}

/** Turns zod issues into field errors that name the field, e.g. `body.capabilities[2]`. */
export function fieldErrors(location: string, issues: readonly z.core.$ZodIssue[]): FieldError[] {
  return issues.flatMap((issue) => {
    const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
    const base = path.replace(/^\./, '');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        location,
        field: base ? `${base}.${key}` : key,
        message: 'is not a known field',
      }));
    }
    return [{ location, field: base || location, message: issue.message }];
  });
}

// Hono names validation targets after the parser; people know them as the body, the path and the query.
const locations: Record<string, string> = { json: 'body', param: 'path', query: 'query', header: 'header' };

export function validationProblem(target: string, issues: readonly z.core.$ZodIssue[]): ProblemError {
  const errors = fieldErrors(locations[target] ?? target, issues);
  const detail = errors.map(
    (e) => `${e.location === e.field ? e.field : `${e.location}.${e.field}`}: ${e.message}`,
  );
  return new ProblemError('validation', detail.join('; '), { errors });
}

/** Seconds a client should wait before trying again while the database is unreachable. */
export const DATABASE_RETRY_AFTER_SECONDS = 2;

export function databaseUnavailable(error: DatabaseUnavailableError): ProblemError {
  const detail = error.commitUnknown
    ? 'The database connection broke while the change was being committed, so it may or may not have been applied. Read the resource before trying again.'
    : 'The database is unreachable right now; nothing was changed. Try again shortly.';
  return new ProblemError('unavailable', detail, {
    headers: { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) },
  });
}

/** The single error handler: domain problems, Hono's own exceptions, then anything else as a bare 500. */
export function onError(logger: Logger) {
  return function handleError(error: Error, c: Context): Response {
    if (error instanceof ProblemError) return problemResponse(c, error);
    // Not logged here: the database's availability tracker logs one warning per outage, not one per request.
    if (error instanceof DatabaseUnavailableError) return problemResponse(c, databaseUnavailable(error));
    if (error instanceof HTTPException) {
      if (/malformed json/i.test(error.message)) {
        return problemResponse(
          c,
          new ProblemError('malformed_json', 'The request body is not valid JSON.', {
            errors: [{ location: 'body', field: 'body', message: 'is not valid JSON' }],
          }),
        );
      }
      const code = Object.entries(statuses).find(([, s]) => s === error.status)?.[0] ?? 'internal';
      return problemResponse(c, new ProblemError(code, error.message || titles[code] || 'Error'));
    }
    logger.error(
      { err: error, request_id: c.get('requestId' as never), path: c.req.path },
      'unhandled error',
    );
    return problemResponse(
      c,
      new ProblemError('internal', 'Something went wrong on our side; it has been logged.'),
    );
  };
}
