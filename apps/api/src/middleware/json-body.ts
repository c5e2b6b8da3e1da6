import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { type FieldError, fieldProblem, ProblemError } from '../problem';
import {
  checkStorableText,
  formatJsonPath,
  type JsonIssue,
  JsonSyntaxError,
  parseJsonText,
  unstorableReason,
} from './json-text';

/** 1 MiB (a round bound on one request's memory, not measured): bodies above it are refused with 413 before they are read whole. */
export const MAX_BODY_BYTES = 1024 * 1024;

export const limitBody = ({ maxSize = MAX_BODY_BYTES } = {}) =>
  bodyLimit({
    maxSize,
    onError: () => {
      throw new ProblemError('payload_too_large', `The request body is larger than ${maxSize} bytes.`);
    },
  });

const jsonType = /^application\/([a-z.+-]*\+)?json\s*(;|$)/i;

/** A request that carries a body must say it is JSON: anything else is answered 415, not guessed at. */
export const requireJsonBody = () =>
  async function requireJson(c, next) {
    const hasBody = c.req.header('content-length') !== undefined && c.req.header('content-length') !== '0';
    const chunked = c.req.header('transfer-encoding') !== undefined;
    if ((hasBody || chunked) && ['POST', 'PUT', 'PATCH'].includes(c.req.method)) {
      const type = c.req.header('content-type') ?? '';
      if (!jsonType.test(type)) {
        throw new ProblemError(
          'unsupported_media_type',
          `The request body must be application/json (got ${type ? `"${type}"` : 'no Content-Type'}).`,
        );
      }
    }
    return next();
  } satisfies MiddlewareHandler;

// One decoder for all requests: `fatal` makes invalid UTF-8 an error instead of U+FFFD put in its place.
const utf8 = new TextDecoder('utf-8', { fatal: true });

// Not the headers: a request built in-process (app.request, a proxy) may carry a body without Content-Length.
const hasBody = (c: Context) => c.req.raw.body !== null;

const bodyProblem = (issues: readonly JsonIssue[]) =>
  fieldProblem(
    issues.map((issue) => ({
      location: 'body',
      field: formatJsonPath(issue.path) || 'body',
      message: issue.message,
    })),
  );

const refusedItems = new WeakMap<Context, ReadonlyMap<number, JsonIssue[]>>();

/**
 * Body problems found inside `items[i]` of a batch route declared with `itemsOnTheirOwn`, by item
 * index: the route answers those items 400 and applies the others.
 */
export function bodyIssuesByItem(c: Context): ReadonlyMap<number, JsonIssue[]> {
  return refusedItems.get(c) ?? new Map();
}

export interface ReadJsonBodyOptions {
  /**
   * Fields whose text is escaped rather than refused (`*` matches any key or index): what an agent
   * reports from a real command may hold a NUL, and refusing it would leave the task unfinishable.
   */
  storedEscaped?: readonly string[];
  /** A batch route: problems inside one of `items` refuse that item only (see bodyIssuesByItem). */
  itemsOnTheirOwn?: boolean;
  maxDepth?: number;
}

/**
 * Reads a JSON body strictly before the route's schema sees it: invalid UTF-8, nesting deeper than
 * MAX_JSON_DEPTH, numbers that would change (1e400, digits a double cannot hold), keys given twice,
 * and text PostgreSQL cannot store (NUL, unpaired surrogates) are answered 400 naming the field;
 * `__proto__` keys stay data. The schema then parses the checked (and escaped) text.
 * @example createRoute({ …, middleware: [readJsonBody({ storedEscaped: ['result'] })] })
 */
export const readJsonBody = ({
  storedEscaped = [],
  itemsOnTheirOwn = false,
  maxDepth,
}: ReadJsonBodyOptions = {}) =>
  async function readJson(c, next) {
    // A body of another type is the route's media-type check to refuse (415), not a JSON problem.
    if (!hasBody(c) || !jsonType.test(c.req.header('content-type') ?? '')) return next();
    const bytes = await c.req.arrayBuffer();
    if (bytes.byteLength === 0) return next();
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      throw bodyProblem([{ path: [], message: 'is not valid UTF-8 text' }]);
    }
    if (text.trim() === '') return next();
    let parsed: ReturnType<typeof parseJsonText>;
    try {
      parsed = parseJsonText(text, { maxDepth });
    } catch (error) {
      if (!(error instanceof JsonSyntaxError)) throw error;
      throw new ProblemError('malformed_json', `The request body is not valid JSON: ${error.message}.`, {
        errors: [{ location: 'body', field: 'body', message: 'is not valid JSON' }],
      });
    }
    const stored = checkStorableText(parsed.value, storedEscaped);
    const issues = [...parsed.issues, ...stored.issues];
    const byItem = new Map<number, JsonIssue[]>();
    const whole = issues.filter((issue) => {
      const [key, index] = issue.path;
      if (!itemsOnTheirOwn || key !== 'items' || typeof index !== 'number') return true;
      byItem.set(index, [...(byItem.get(index) ?? []), issue]);
      return false;
    });
    if (whole.length > 0) throw bodyProblem(whole);
    if (byItem.size > 0) refusedItems.set(c, byItem);
    // Hono's json() parses bodyCache.text, so the route's schema now reads the checked, escaped form.
    // The cache holds promises at run time although its type says string.
    c.req.bodyCache.text = Promise.resolve(JSON.stringify(stored.value)) as unknown as string;
    return next();
  } satisfies MiddlewareHandler;

/**
 * For operations that declare no body: an empty body or `{}` is fine (clients send one out of
 * habit), anything else is refused rather than ignored, as unknown fields are everywhere else.
 */
export const refuseBody = () =>
  async function noBody(c, next) {
    if (!hasBody(c) || c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const text = await c.req.text();
    if (/^\s*(\{\s*\})?\s*$/.test(text)) return next();
    throw new ProblemError('validation', 'body: this operation takes no body (send none, or {}).', {
      errors: [{ location: 'body', field: 'body', message: 'is not accepted: this operation takes no body' }],
    });
  } satisfies MiddlewareHandler;

/**
 * Path and query values reach SQL too: a `%00` in them is refused with the parameter named
 * (URL decoding cannot produce an unpaired surrogate, so NUL is the only case).
 */
export const refuseUnstorableParams = () =>
  async function storableParams(c, next) {
    const errors: FieldError[] = [];
    for (const [name, value] of Object.entries(c.req.param() as Record<string, string>)) {
      const reason = unstorableReason(value);
      if (reason) errors.push({ location: 'path', field: name, message: reason });
    }
    for (const [name, values] of Object.entries(c.req.queries())) {
      const reason = unstorableReason(name) ?? values.map(unstorableReason).find(Boolean);
      if (reason)
        errors.push({ location: 'query', field: unstorableReason(name) ? 'query' : name, message: reason });
    }
    if (errors.length > 0) throw fieldProblem(errors);
    return next();
  } satisfies MiddlewareHandler;
