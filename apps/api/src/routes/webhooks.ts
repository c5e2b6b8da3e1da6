import type { Db } from '@devart/db';
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { fieldProblem, ProblemError } from '../problem';
import {
  logDeliveryOutcome,
  type RunStartedHook,
  receiveGithubDelivery,
  signatureValid,
} from '../services/github-webhooks';
import type { AppEnv } from './route-kit';

export interface WebhookRoutesDeps {
  db: Db;
  logger: Logger;
  /** GITHUB_WEBHOOK_SECRET; unset = the route answers 404 saying how to enable it. */
  githubWebhookSecret?: string;
  /** What else a started run records in the delivery's transaction (the GitHub App's check run). */
  onGithubRunStarted?: RunStartedHook;
}

// GitHub's ids are GUIDs; anything printable and short is accepted, anything else is not an id.
const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,200}$/;
const EVENT_NAME = /^[a-z_]{1,100}$/;

/**
 * `POST /api/webhooks/github`: no bearer token — GitHub signs the body with the webhook secret
 * (X-Hub-Signature-256) instead, so the route is outside the OpenAPI document and the RBAC matrix.
 * The body is capped by the API's limit (413 above 1 MiB, before it is read whole).
 *
 * Answers: 202 `{ delivery_id, run_ids }` with the runs it started (none when nothing matched);
 * 200 `{ delivery_id, replayed: true, run_ids }` for a delivery already received; 401 for a
 * missing or wrong signature (nothing stored); 404 when no secret is configured.
 */
export function webhookRoutes({ db, logger, githubWebhookSecret, onGithubRunStarted }: WebhookRoutesDeps) {
  const router = new Hono<AppEnv>();

  router.post('/api/webhooks/github', async (c) => {
    if (!githubWebhookSecret) {
      throw new ProblemError(
        'not_found',
        'GitHub webhooks are not enabled on this server: set GITHUB_WEBHOOK_SECRET to the secret of the GitHub webhook and restart.',
      );
    }
    // The API refuses other types already when a Content-Length says there is a body; this covers the rest.
    const type = c.req.header('content-type') ?? '';
    if (!/^application\/json\s*(;|$)/i.test(type)) {
      throw new ProblemError(
        'unsupported_media_type',
        `The webhook must send application/json (got ${type ? `"${type}"` : 'no Content-Type'}): choose "application/json" as the webhook's content type on GitHub.`,
      );
    }
    // Decoded leniently: bytes that are not UTF-8 change the text, and the signature check fails.
    const body = new TextDecoder().decode(await c.req.arrayBuffer());
    if (!(await signatureValid(githubWebhookSecret, body, c.req.header('x-hub-signature-256')))) {
      throw new ProblemError(
        'unauthenticated',
        'The X-Hub-Signature-256 header is missing or is not the HMAC-SHA256 of the body under GITHUB_WEBHOOK_SECRET.',
      );
    }
    const deliveryId = c.req.header('x-github-delivery') ?? '';
    const event = c.req.header('x-github-event') ?? '';
    const errors = [
      ...(DELIVERY_ID.test(deliveryId)
        ? []
        : [
            {
              location: 'header',
              field: 'X-GitHub-Delivery',
              message: 'must be the delivery id GitHub sends',
            },
          ]),
      ...(EVENT_NAME.test(event)
        ? []
        : [{ location: 'header', field: 'X-GitHub-Event', message: 'must be the event name GitHub sends' }]),
    ];
    if (errors.length > 0) throw fieldProblem(errors);
    let payload: unknown;
    try {
      payload = JSON.parse(body);
    } catch {
      throw new ProblemError('malformed_json', 'The request body is not valid JSON.', {
        errors: [{ location: 'body', field: 'body', message: 'is not valid JSON' }],
      });
    }
    const outcome = await receiveGithubDelivery(
      db,
      { deliveryId, event, payload },
      { onRunStarted: onGithubRunStarted },
    );
    logDeliveryOutcome(outcome, logger, {
      request_id: c.get('requestId'),
      delivery_id: deliveryId,
      event,
    });
    if (outcome.outcome === 'replayed') {
      return c.json({ delivery_id: deliveryId, replayed: true, run_ids: outcome.run_ids }, 200);
    }
    return c.json(
      {
        delivery_id: deliveryId,
        replayed: false,
        run_ids: outcome.outcome === 'started' ? outcome.runs.map((r) => r.run_id) : [],
      },
      202,
    );
  });

  return router;
}
