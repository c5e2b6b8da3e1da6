import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';

/** What requestLog leaves on the context: the id a log line about this request should carry. */
export interface RequestLogEnv {
  Variables: { requestId: string };
}

/** Latencies kept per window for the percentiles; past this, the count still grows. */
const MAX_SAMPLES = 10_000;

/** The p-th percentile (nearest rank) of sorted values; 0 for none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export interface AccessSummary {
  /** Counts one finished request; the first of a window schedules the window's summary line. */
  record(status: number, ms: number): void;
}

/**
 * Counts requests and logs one `info` line per window (a minute) that saw any: how many, by
 * status class, and p50/p95 latency. A timer runs only while a window is open, so an idle API
 * logs nothing and keeps no timer; it is unref'd, so it never holds a process open.
 * @example
 * const summary = createAccessSummary({ logger });
 * summary.record(200, 12); // a minute later: {"requests":1,"status":{"2xx":1},"p50_ms":12,"p95_ms":12}
 */
export function createAccessSummary({
  logger,
  windowMs = 60_000,
  schedule = (fn, ms) => setTimeout(fn, ms).unref(),
}: {
  logger: Logger;
  windowMs?: number;
  schedule?: (fn: () => void, ms: number) => unknown;
}): AccessSummary {
  let window: { requests: number; byClass: Record<string, number>; latencies: number[] } | undefined;
  const flush = () => {
    const done = window!;
    window = undefined;
    const sorted = done.latencies.sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    const p95 = percentile(sorted, 95);
    const classes = Object.entries(done.byClass)
      .sort()
      .map(([k, n]) => `${n} ${k}`)
      .join(', ');
    logger.info(
      {
        requests: done.requests,
        status: done.byClass,
        p50_ms: p50,
        p95_ms: p95,
        window_s: windowMs / 1000,
      },
      `${done.requests} requests in the last ${windowMs / 1000}s (${classes}); p50 ${p50}ms, p95 ${p95}ms`,
    );
  };
  return {
    record(status, ms) {
      if (!window) {
        window = { requests: 0, byClass: {}, latencies: [] };
        schedule(flush, windowMs);
      }
      window.requests++;
      const statusClass = `${Math.floor(status / 100)}xx`;
      window.byClass[statusClass] = (window.byClass[statusClass] ?? 0) + 1;
      if (window.latencies.length < MAX_SAMPLES) window.latencies.push(ms);
    },
  };
}

/**
 * Gives every request an id (echoed as X-Request-Id) and logs one access line when it ends, at
 * `debug`: at `info` the log tells what the platform did, and the per-minute summary says how
 * the HTTP side is doing (LOG_LEVEL=debug shows every request).
 */
export const requestLog = ({
  logger,
  summary = createAccessSummary({ logger }),
}: {
  logger: Logger;
  summary?: AccessSummary;
}) =>
  async function logRequest(c, next) {
    const requestId = c.req.header('x-request-id') ?? randomUUID();
    c.set('requestId', requestId);
    const started = performance.now();
    await next();
    c.header('x-request-id', requestId);
    const ms = Math.round(performance.now() - started);
    summary.record(c.res.status, ms);
    logger.debug(
      {
        request_id: requestId,
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms,
      },
      'request',
    );
  } satisfies MiddlewareHandler<RequestLogEnv>;
