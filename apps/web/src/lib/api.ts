import type { Problem } from '@devart/contracts';
import { clearToken, readToken } from './auth-token';

/**
 * An answer of the API that was not 2xx, carrying its problem+json (RFC 9457) when there was one.
 * DataState shows `problem.title` and `problem.detail`.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    // Many details already start with the title ("Authentication required: …"): say it once.
    const { title, detail } = problem;
    super(!detail ? title : detail.startsWith(title) ? detail : `${title}: ${detail}`);
  }
}

/** Listeners told when the API refuses the token (401): the auth layer signs out with the reason. */
const unauthorizedListeners = new Set<(reason: string) => void>();

/** Called with the problem's detail whenever a request comes back 401; returns the unsubscribe. */
export function onUnauthorized(listener: (reason: string) => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

/** Reads a non-2xx answer into a Problem, whether or not the server sent problem+json. */
export async function readProblem(res: Response): Promise<Problem> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as Partial<Problem>;
    if (typeof body.title === 'string')
      return { status: res.status, type: 'about:blank', ...body } as Problem;
  } catch {
    // Not JSON: a proxy's error page, an empty body.
  }
  return {
    type: 'about:blank',
    title: res.statusText || `HTTP ${res.status}`,
    status: res.status,
    detail: text.slice(0, 300) || undefined,
  };
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Sent as JSON. */
  body?: unknown;
  /** Appended as a query string; undefined and '' values are left out. */
  query?: Record<string, string | number | boolean | undefined | null>;
  signal?: AbortSignal;
  /** Use this token instead of the stored one (the sign-in page checks a pasted token). */
  token?: string;
}

/** `/api/tasks` + `{ status: 'TODO', cursor: undefined }` → `/api/tasks?status=TODO`. */
export function buildPath(path: string, query?: RequestOptions['query']): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Calls the API with the signed-in token; resolves the parsed JSON (undefined for 204) or throws
 * ApiError. A 401 also signs the browser out (see onUnauthorized), unless an explicit token was given.
 * @example const page = await api<TaskPage>('/api/tasks', { query: { status: 'TODO' } });
 */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const token = options.token ?? readToken();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(buildPath(path, options.query), {
    method: options.method ?? 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
  });
  if (!res.ok) {
    const problem = await readProblem(res);
    if (res.status === 401 && options.token === undefined) {
      clearToken();
      for (const listener of unauthorizedListeners) listener(problem.detail ?? problem.title);
    }
    throw new ApiError(res.status, problem);
  }
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}
