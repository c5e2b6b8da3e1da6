import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import type { Metrics } from '../metrics';
import { ProblemError } from '../problem';

/** Equal strings, compared in constant time: hashing first gives both sides one length, so neither the length nor the first difference shows in the timing. */
function sameToken(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * `GET /metrics` in the Prometheus text format. With `token` (METRICS_TOKEN) a scrape must send
 * `Authorization: Bearer <token>` and is answered 401 otherwise; without it the endpoint is open
 * like /health, for an API on a private interface. Not in the OpenAPI document: it is for
 * Prometheus, not for API clients, and takes no user or agent credential.
 * @example app.route('/', metricsRoutes({ metrics, token: config.METRICS_TOKEN }))
 */
export function metricsRoutes({ metrics, token }: { metrics: Metrics; token?: string }) {
  const router = new Hono();
  router.get('/metrics', async (c) => {
    if (token !== undefined) {
      const given = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '')?.[1];
      if (given === undefined || !sameToken(given, token))
        throw new ProblemError(
          'unauthenticated',
          given === undefined
            ? 'GET /metrics requires Authorization: Bearer <METRICS_TOKEN>.'
            : 'The bearer token is not this server’s METRICS_TOKEN.',
          { headers: { 'www-authenticate': 'Bearer realm="metrics"' } },
        );
    }
    return c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType });
  });
  return router;
}
