import { ApiError } from './errors';

export interface ApiClientOptions {
  apiUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
  /** Attempts for a call that failed on the network, with a 5xx or a 429 (default 5). */
  retries?: number;
}

/** Options of one call. */
export interface CallOptions {
  /**
   * Attempts for this call, overriding the client's default: 1 for a request that is not safe to
   * repeat (provisioning, running a command) or whose 5xx would not change on a retry.
   */
  retries?: number;
  /** Abandons the call (and its retries) when aborted; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface ApiResult<T> {
  status: number;
  body: T;
  /** The answer's Retry-After header, if any (a 429 or 503 says when to come back). */
  retryAfter?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Milliseconds a Retry-After header asks for (delta-seconds or an HTTP date), clamped to
 * [0, capMs]; undefined when there is no usable header.
 * @example
 * retryAfterMs('2', 60_000, Date.now()); // 2000
 */
export function retryAfterMs(
  header: string | undefined | null,
  capMs: number,
  now: number,
): number | undefined {
  if (!header) return undefined;
  const seconds = /^\s*\d+\s*$/.test(header) ? Number(header) * 1000 : Date.parse(header) - now;
  return Number.isFinite(seconds) ? Math.min(capMs, Math.max(0, seconds)) : undefined;
}

/**
 * Exponential backoff with jitter: half to all of `min(capMs, baseMs * 2^attempt)`, so agents that
 * lost the API together do not come back in step.
 * @example
 * backoffMs(3, { baseMs: 100, capMs: 2000 }); // between 400 and 800
 */
export function backoffMs(
  attempt: number,
  { baseMs, capMs, random = Math.random }: { baseMs: number; capMs: number; random?: () => number },
): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30)) * (0.5 + random() / 2);
}

/** A body that is not JSON (a proxy's HTML 502, a truncated answer) becomes a problem with its text. */
function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 500) };
  }
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the call was aborted');
}

/** Settles with `promise`, or rejects as soon as `signal` aborts (even if the fetch ignores it). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * The agent-facing HTTP API. Network errors, 5xx and 429 answers are retried with backoff, honouring
 * Retry-After up to 2 s (the calls are idempotent or fenced, so a retry is safe; a call that is not
 * passes `retries: 1`); when the attempts run out a network error or 5xx rejects (an `ApiError`
 * carrying the status and Retry-After), a 429 is returned. Other 4xx answers are returned to the caller.
 * @example
 * const api = createApiClient({ apiUrl, apiKey });
 * const me = await api.call<{ id: string }>('GET', '/api/agents/me');
 * await api.call('POST', `/api/agents/${me.body.id}/request-sandbox`, { task_id }, { retries: 1 });
 */
export function createApiClient({ apiUrl, apiKey, fetch: doFetch = fetch, retries = 5 }: ApiClientOptions) {
  const base = apiUrl.replace(/\/$/, '');
  async function call<T>(
    method: string,
    path: string,
    body?: unknown,
    options: CallOptions = {},
  ): Promise<ApiResult<T>> {
    const attempts = Math.max(1, options.retries ?? retries);
    const { signal } = options;
    let lastError: unknown;
    let wait: number | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0)
        await abortable(sleep(wait ?? backoffMs(attempt, { baseMs: 100, capMs: 2000 })), signal);
      wait = undefined;
      let res: Response;
      let text: string;
      try {
        res = await abortable(
          doFetch(`${base}${path}`, {
            method,
            headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body),
            signal,
          }),
          signal,
        );
        text = await abortable(res.text(), signal);
      } catch (error) {
        if (signal?.aborted) throw abortReason(signal);
        lastError = error;
        continue;
      }
      const parsed = parseBody(text) as T;
      const retryAfter = res.headers.get('retry-after') ?? undefined;
      const lastAttempt = attempt === attempts - 1;
      if (res.status >= 500 || (res.status === 429 && !lastAttempt)) {
        wait = retryAfterMs(retryAfter, 2000, Date.now());
        lastError = new ApiError(
          res.status,
          parsed as never,
          `${method} ${path} answered ${res.status}`,
          retryAfter,
        );
        continue;
      }
      return { status: res.status, body: parsed, ...(retryAfter === undefined ? {} : { retryAfter }) };
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }
  return { call };
}

export type ApiClient = ReturnType<typeof createApiClient>;

/** Raises an ApiError for an unexpected 4xx, with the problem's detail. */
export function expectOk<T>(result: ApiResult<T>, what: string): T {
  if (result.status >= 200 && result.status < 300) return result.body;
  const problem = result.body as { detail?: string; title?: string } | undefined;
  throw new ApiError(
    result.status,
    problem,
    `${what} answered ${result.status}: ${problem?.detail ?? problem?.title ?? ''}`,
  );
}
