import { ApiError } from './errors';

export interface ApiClientOptions {
  apiUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
  /** Attempts for a call that failed on the network or with a 5xx (default 5). */
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
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
 * The agent-facing HTTP API. Network errors and 5xx answers are retried with backoff (the
 * calls are idempotent or fenced, so a retry is safe; a call that is not passes `retries: 1`);
 * 4xx answers are returned to the caller.
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
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0)
        await abortable(sleep(Math.min(2000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2)), signal);
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
      const parsed = text ? (JSON.parse(text) as T) : (undefined as T);
      if (res.status >= 500) {
        lastError = new ApiError(
          res.status,
          parsed as never,
          `${method} ${path} answered ${res.status}`,
          res.headers.get('retry-after') ?? undefined,
        );
        continue;
      }
      return { status: res.status, body: parsed };
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
