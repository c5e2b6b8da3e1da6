// One agent process of the chaos test (test/chaos/run.ts starts, kills and replaces these).
// It is a plain SDK agent with default batched reporting; the only additions are what the test
// needs to judge it: every effect is appended to a log, and calls go to whichever API process is up.
//
// Environment: CHAOS_API_URLS (comma-separated), CHAOS_API_KEY, CHAOS_AMQP_URL, CHAOS_EFFECTS (log
// file), CHAOS_CONCURRENCY.
import { appendFileSync } from 'node:fs';
import { createAgent } from '@devart/sdk';
import pino from 'pino';
import type { Effect } from './effects';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const apiUrls = env('CHAOS_API_URLS').split(',');
const effectsFile = env('CHAOS_EFFECTS');
const pid = process.pid;

type Unstamped<T> = T extends unknown ? Omit<T, 'pid' | 't'> : never;

// Synchronous on purpose: a kill -9 must not eat an effect that already happened.
function record(effect: Unstamped<Effect>): void {
  appendFileSync(effectsFile, `${JSON.stringify({ ...effect, pid, t: Date.now() })}\n`);
}

interface ItemAnswer {
  status: number;
}

/** What the platform answered about each task of a start or completion, taken from the HTTP traffic. */
function recordAnswers(path: string, requestBody: unknown, responseStatus: number, responseBody: unknown) {
  const single = /^\/api\/tasks\/([^/]+)\/(start|complete)$/.exec(path);
  const batch = /^\/api\/tasks\/(start|complete)-batch$/.exec(path);
  if (!single && !batch) return;
  const kind = (single?.[2] ?? batch?.[1]) as 'start' | 'complete';
  const requested = single
    ? [{ task_id: single[1]!, attempt: (requestBody as { attempt?: number }).attempt }]
    : (requestBody as { items: { task_id: string; attempt?: number }[] }).items;
  const answers: ItemAnswer[] = single
    ? [{ status: responseStatus }]
    : responseStatus === 200
      ? (responseBody as { items: ItemAnswer[] }).items
      : requested.map(() => ({ status: responseStatus }));
  requested.forEach((item, i) => {
    const status = answers[i]?.status ?? 0;
    const attempt = item.attempt ?? 0;
    if (kind === 'start' && status === 200) record({ e: 'started', task: item.task_id, attempt });
    if (kind === 'complete')
      record(
        status === 200
          ? { e: 'confirmed', task: item.task_id, attempt }
          : { e: 'refused', task: item.task_id, attempt, status },
      );
  });
}

let next = 0;
/**
 * Stands in for the load balancer an operator puts in front of API replicas: round robin, and a
 * request that cannot reach one process (killed, restarting) goes to the other.
 */
const balancedFetch: typeof fetch = async (input, init) => {
  const url = new URL(String(input));
  const first = next++ % apiUrls.length;
  let lastError: unknown;
  for (let i = 0; i < apiUrls.length; i++) {
    const target = new URL(url.pathname + url.search, apiUrls[(first + i) % apiUrls.length]);
    let res: Response;
    try {
      res = await fetch(target, init);
    } catch (error) {
      if (init?.signal?.aborted) throw error;
      lastError = error;
      continue;
    }
    if (init?.method === 'POST' && res.status < 500) {
      const text = await res.text();
      // A 5xx of a batch means nothing was written; anything else is the platform's answer.
      recordAnswers(
        url.pathname,
        JSON.parse(typeof init.body === 'string' ? init.body : '{}'),
        res.status,
        text ? JSON.parse(text) : undefined,
      );
      return new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers });
    }
    return res;
  }
  throw lastError;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const logger = pino({ level: 'warn', base: { service: 'chaos-agent', pid } });

const agent = createAgent({
  apiUrl: 'http://api.chaos',
  apiKey: env('CHAOS_API_KEY'),
  amqpUrl: env('CHAOS_AMQP_URL'),
  capabilities: ['chaos', 'wf'],
  concurrency: Number(process.env.CHAOS_CONCURRENCY ?? 4),
  fetch: balancedFetch,
  handleSignals: true,
  shutdownGraceMs: 5000,
  logger,
});

await agent.startConsuming(async (task) => {
  record({ e: 'begin', task: task.task_id, attempt: task.attempt });
  // Long enough that a kill -9 often lands mid-task.
  await sleep(10 + Math.random() * 190);
  record({ e: 'finish', task: task.task_id, attempt: task.attempt });
  return { result: { pid, step: task.title }, cost: (task.payload as { cost?: string }).cost };
});
console.log(`chaos agent ${pid} consuming`);
