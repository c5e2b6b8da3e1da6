import type { TaskMessage } from '@devart/contracts';
import {
  AccessRefusedError,
  type Broker,
  type BrokerLogger,
  type Consumer,
  createRabbitBroker,
  type Delivery,
  QueueNotFoundError,
  taskQueueName,
} from '@devart/queue';
import { createBatcher } from './batcher';
import { type ApiClient, createApiClient, expectOk } from './client';
import { NonRetryableError } from './errors';
import { checkTaskMessage } from './message';
import { createReporter, type Report } from './reports';
import { createTaskSandboxes, type SandboxHandle, type SandboxOptions } from './sandbox';

export type { TaskMessage };

/** What a callback gets for one task. */
export interface TaskContext extends TaskMessage {
  /** Aborted when the agent lost the task (its lease lapsed) or is shutting down past its grace period. */
  signal: AbortSignal;
  /** Extends the lease now; the SDK also does it on a timer while the callback runs. */
  heartbeat(): Promise<void>;
  logger: BrokerLogger;
  /**
   * Provisions a sandbox for this task through the API (`POST /api/agents/{id}/request-sandbox`):
   * bubblewrap on the API's host or a Kubernetes Pod, with no network unless `egress` allows it.
   * Every sandbox the callback opened is terminated when it returns or throws, before the outcome
   * is reported; `terminate()` ends one earlier. Rejects with a `SandboxUnavailableError`
   * (non-retryable, with the server's reason) when the server cannot provide sandboxes.
   * @example
   * await agent.startConsuming(async (task) => {
   *   const box = await task.sandbox({ resources: { cpu: 500, memory: 256 }, ttlSeconds: 300 });
   *   await box.exec(['sh', '-c', 'echo hello > greeting']);
   *   const { exitCode, stdout } = await box.exec(['cat', 'greeting']);
   *   return exitCode === 0 ? { result: stdout } : { status: 'failed', error: `cat exited with ${exitCode}` };
   * });
   */
  sandbox(options?: SandboxOptions): Promise<SandboxHandle>;
}

/** A callback's answer: done (with a result and cost), or failed explicitly. */
export type TaskOutcome =
  | { status?: 'done'; result?: unknown; cost?: number | string }
  | { status: 'failed'; error: string; retryable?: boolean; details?: Record<string, unknown> }
  | undefined
  // biome-ignore lint/suspicious/noConfusingVoidType: a callback may simply return nothing.
  | void;

export type TaskCallback = (task: TaskContext) => Promise<TaskOutcome> | TaskOutcome;

export interface AgentOptions {
  /** Base URL of the devart API, e.g. http://127.0.0.1:8787 */
  apiUrl: string;
  /** The agent's API key (dva_…). */
  apiKey: string;
  /** RabbitMQ URL with this agent's own credentials (from POST /api/agents). */
  amqpUrl?: string;
  /** An already connected broker instead of amqpUrl (the in-process broker of embedded mode). */
  broker?: Broker;
  /**
   * This agent's id, if known; otherwise the SDK asks `GET /api/agents/me` once, when a callback
   * first opens a sandbox.
   */
  agentId?: string;
  /** Capabilities to consume; the agent always takes tasks without a capability too. */
  capabilities: string[];
  /** Tasks worked at once (and the broker prefetch). Default 1. */
  concurrency?: number;
  /**
   * Topology prefix: the API's AMQP_PREFIX, which `POST /api/agents` answers as `broker.amqp_prefix`
   * (default ''). Without it an agent of a prefixed devart looks for queues its user may not read.
   */
  prefix?: string;
  /** On stop, how long in-flight tasks may still run before they are reported as failed (ms, default 30 000). */
  shutdownGraceMs?: number;
  /**
   * On stop, after the callbacks ended (or their grace ran out), how long the agent still tries to
   * report the outcomes it holds before it gives them up (ms, default 30 000). A task whose outcome
   * was given up runs again once its lease lapses.
   */
  reportGraceMs?: number;
  /**
   * Send starts and completions in batches (`/api/tasks/start-batch`, `/complete-batch`) when many are
   * pending at once: one request and one commit for many tasks. Default true; false calls the per-task
   * endpoints.
   */
  batchReports?: boolean;
  /**
   * While consuming, how often the agent tells the platform it is alive even with no task
   * (`GET /api/agents/me`), so an idle agent is not marked OFFLINE after the server's
   * `AGENT_OFFLINE_SECONDS` (default 120). Default 30 000 ms; 0 turns it off.
   */
  presenceIntervalMs?: number;
  /** Stop gracefully on SIGTERM and SIGINT (default false; `devart agent` turns it on). */
  handleSignals?: boolean;
  fetch?: typeof fetch;
  logger?: BrokerLogger;
}

export interface Agent {
  /**
   * Subscribes to the task queues and runs `callback` for each task until stop(). Resolves once
   * every queue is consumed. A queue that does not exist yet (deleted, and the API's reconciler has
   * not declared it again) is waited for, with one warning naming it, while the other queues are
   * consumed already; stop() ends the wait and startConsuming() then resolves. Permanent refusals
   * (wrong credentials, no permission on a queue) reject.
   */
  startConsuming(callback: TaskCallback): Promise<void>;
  /**
   * Stops taking work, lets in-flight tasks finish within `shutdownGraceMs` (the rest are aborted and
   * reported as failed), then waits up to `reportGraceMs` for every held outcome to be confirmed.
   */
  stop(): Promise<void>;
  /** Tasks running now, or finished with their outcome not confirmed yet. */
  readonly inFlight: number;
  /** Finished outcomes the platform has not confirmed yet. */
  readonly pendingReports: number;
}

const silentLogger: BrokerLogger = { info() {}, warn() {}, error() {} };

const shutdownFailure = (taskId: string, attempt: number): Report => ({
  kind: 'failure',
  taskId,
  attempt,
  error: 'agent shut down before the task finished',
  retryable: true,
});

/**
 * The broker refused to let this agent read `queue`: most often a prefix that is not the API's
 * AMQP_PREFIX, or a capability the agent was not registered with. Says which prefix and queues it
 * used, since RabbitMQ's own message names only the one queue.
 */
function accessRefused(
  queue: string,
  prefix: string,
  capabilities: (string | null)[],
  cause: AccessRefusedError,
): AccessRefusedError {
  const tried = capabilities.map((capability) => taskQueueName(capability, prefix));
  return new AccessRefusedError(
    `The broker refused this agent access to queue "${queue}" (${prefix ? `prefix "${prefix}"` : 'no prefix'}; ` +
      `queues tried: ${tried.join(', ')}). An agent's broker user may read only the queues POST /api/agents ` +
      'answered (broker.queues): set the prefix option to its broker.amqp_prefix (devart agent --prefix, ' +
      `DEVART_AMQP_PREFIX) and consume only the capabilities it was registered with. The broker said: ${cause.message}`,
    { cause },
  );
}

function trimStack(error: Error): string | undefined {
  return error.stack?.split('\n').slice(0, 12).join('\n').slice(0, 4000);
}

/**
 * An agent: consumes its task queues, calls `start` (the fenced claim) for every message and acks
 * once `start` answered, runs the callback with heartbeats, then reports `complete` or
 * `report-failure`. Delivery is at-least-once; the API's fence makes effects exactly-once.
 *
 * A finished outcome is never dropped while the agent runs: the report is retried (network errors,
 * 5xx, 429, 503 after its Retry-After; at most 5 s apart, jittered) and the task heartbeated so its
 * lease holds, until the platform confirms it or answers that the attempt is no longer this
 * agent's (409/404), or refuses the agent's key (401: the agent stops taking tasks). A result the
 * platform refuses (400) is reported as a non-retryable failure with the server's detail. Its slot
 * stays taken meanwhile, so an agent that cannot report takes no new work. `stop()` waits up to
 * `reportGraceMs` for held outcomes. The start of a task is retried 5 times, then its message goes
 * back to the queue; a start applied whose answer was lost leaves the task to its lease.
 * @example
 * const agent = createAgent({ apiUrl, apiKey, amqpUrl, capabilities: ['echo'], concurrency: 4 });
 * await agent.startConsuming(async (task) => ({ result: task.payload, cost: 0 }));
 */
export function createAgent(options: AgentOptions): Agent {
  const logger = options.logger ?? silentLogger;
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new RangeError('concurrency must be a positive integer');
  if (!options.broker && !options.amqpUrl) throw new Error('createAgent needs amqpUrl (RabbitMQ) or broker');
  const api: ApiClient = createApiClient({
    apiUrl: options.apiUrl,
    apiKey: options.apiKey,
    fetch: options.fetch,
  });
  // The agent's id, learned once (sandboxes are requested under it); a failed lookup is retried next time.
  let agentId: Promise<string> | undefined = options.agentId ? Promise.resolve(options.agentId) : undefined;
  const whoAmI = () => {
    agentId ??= api
      .call<{ id: string }>('GET', '/api/agents/me')
      .then((res) => expectOk(res, 'GET /api/agents/me').id)
      .catch((error) => {
        agentId = undefined;
        throw error;
      });
    return agentId;
  };
  // Starts and completions travel in batches under load: one request and one commit for many tasks.
  const batched =
    <I extends { task_id: string }>(path: string) =>
    async (
      items: I[],
    ): Promise<{ status: number; body: { lease_expires_at: string | null; detail?: string } }[]> => {
      const res = await api.call<{
        items: { status: number; lease_expires_at?: string | null; detail?: string }[];
      }>('POST', path, { items });
      // A refusal of the whole request (e.g. 401 for a revoked key) is every item's answer.
      if (res.status !== 200) return items.map(() => ({ status: res.status, body: res.body as never }));
      return res.body.items.map((item) => ({
        status: item.status,
        body: { lease_expires_at: item.lease_expires_at ?? null, detail: item.detail },
      }));
    };
  const starts = createBatcher(batched<{ task_id: string; attempt: number }>('/api/tasks/start-batch'));
  const reporter = createReporter({
    api,
    batch: options.batchReports !== false,
    logger,
    onRevoked: () => void refuseWork(),
  });
  const ownsBroker = !options.broker;
  const broker =
    options.broker ??
    createRabbitBroker({
      url: options.amqpUrl!,
      consumeOnly: true,
      prefix: options.prefix,
      logger,
      connectionName: 'devart-agent',
    });

  const consumers: Consumer[] = [];
  interface Running {
    controller: AbortController;
    done: Promise<void>;
    attempt: number;
    /** 'starting' until start answered, 'working' while the callback runs, then 'reporting'. */
    phase: 'starting' | 'working' | 'reporting';
    /** Resolves when the phase leaves 'starting'/'working' (the callback ended, or never ran). */
    callbackEnded: Promise<void>;
    endCallback: () => void;
    /** stop() gave the task up past its grace and reported it failed: work() reports nothing more. */
    abandoned: boolean;
  }
  const running = new Map<string, Running>();
  let waiters: (() => void)[] = [];
  let stopping = false;
  let presence: NodeJS.Timeout | undefined;
  /** Aborts startConsuming()'s wait for queues that do not exist yet. */
  const starting = new AbortController();
  let stopped: Promise<void> | undefined;

  const slotFree = () => running.size < concurrency;
  const waitForSlot = async () => {
    while (!slotFree()) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  const releaseSlot = () => {
    const current = waiters;
    waiters = [];
    for (const wake of current) wake();
  };
  /** The API refused this agent's key: stop consuming; the unacked messages go back to other agents. */
  async function refuseWork() {
    if (stopping) return;
    stopping = true;
    starting.abort(new Error('the agent was revoked'));
    releaseSlot();
    await Promise.all(consumers.map((c) => c.cancel().catch(() => {})));
  }

  async function work(
    message: TaskMessage,
    task: { lease_expires_at: string | null },
    callback: TaskCallback,
    entry: Running,
  ) {
    const { controller } = entry;
    const path = `/api/tasks/${message.task_id}`;
    let lost = false;
    const heartbeat = async () => {
      const res = await api.call<{ detail?: string }>('POST', `${path}/heartbeat`);
      if (res.status === 409 || res.status === 404) {
        const reason = `the task was taken away (${res.body?.detail ?? 'lease lapsed or cancelled'})`;
        if (!lost && reporter.holds(message.task_id, message.attempt))
          logger.warn(
            { task_id: message.task_id, status: res.status },
            `${reason}; its held outcome is dropped`,
          );
        lost = true;
        clearInterval(timer);
        controller.abort(new Error(reason));
        reporter.drop(message.task_id, message.attempt, reason);
      }
    };
    // The timer runs until the outcome is settled: a held outcome keeps its lease. One heartbeat at a
    // time, so a slow or unreachable API does not pile them up.
    let beating = false;
    const beat = () => {
      if (beating || lost) return;
      beating = true;
      void heartbeat()
        .catch(() => {})
        .finally(() => {
          beating = false;
        });
    };
    const leaseMs = task.lease_expires_at ? Date.parse(task.lease_expires_at) - Date.now() : 60_000;
    const timer = setInterval(beat, Math.max(50, leaseMs / 3));
    let outcome: TaskOutcome;
    let failure: { error: string; retryable: boolean; details?: Record<string, unknown> } | undefined;
    const sandboxes = createTaskSandboxes({
      api,
      taskId: message.task_id,
      agentId: whoAmI,
      signal: controller.signal,
      logger,
    });
    const startedAt = performance.now();
    try {
      outcome = await callback({
        ...message,
        signal: controller.signal,
        heartbeat,
        logger,
        sandbox: (sandboxOptions) => sandboxes.open(sandboxOptions),
      });
      if (outcome && outcome.status === 'failed') {
        failure = { error: outcome.error, retryable: outcome.retryable ?? true, details: outcome.details };
      }
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      failure = {
        error: err.message || err.name,
        retryable: !(err instanceof NonRetryableError),
        details: { name: err.name, stack: trimStack(err) },
      };
    } finally {
      // Before the outcome is reported: a finished task leaves nothing running (the lease is still
      // extended meanwhile). Failures are logged; the platform's sweep ends what is left.
      await sandboxes.closeAll();
    }
    try {
      if (lost) {
        logger.warn({ task_id: message.task_id }, 'task lost before it finished; its result is dropped');
        return;
      }
      // stop() gave up waiting for this callback and reported the attempt failed already.
      if (entry.abandoned) return;
      entry.phase = 'reporting';
      entry.endCallback();
      const report: Report = failure
        ? { kind: 'failure', taskId: message.task_id, attempt: message.attempt, ...failure }
        : {
            kind: 'complete',
            taskId: message.task_id,
            attempt: message.attempt,
            result: outcome && outcome.status !== 'failed' ? outcome.result : undefined,
            cost: outcome && outcome.status !== 'failed' ? outcome.cost : undefined,
          };
      await reporter.report(report);
      // One line per task, so an agent's log reads as what it did.
      const durationMs = Math.round(performance.now() - startedAt);
      const what = `"${message.title}"${message.capability ? ` (${message.capability})` : ''} attempt ${message.attempt} in ${durationMs}ms`;
      const fields = {
        task_id: message.task_id,
        attempt: message.attempt,
        capability: message.capability,
        duration_ms: durationMs,
      };
      if (failure)
        logger.info(
          { ...fields, outcome: 'failed', retryable: failure.retryable },
          `task failed: ${what}: ${failure.error.split('\n')[0]!.slice(0, 200)}`,
        );
      else logger.info({ ...fields, outcome: 'done' }, `task done: ${what}`);
    } finally {
      clearInterval(timer);
    }
  }

  async function onDelivery(delivery: Delivery, callback: TaskCallback) {
    const verdict = checkTaskMessage(delivery.body);
    if (!verdict.valid) {
      logger.error(
        { message_id: delivery.messageId, reason: verdict.reason },
        'not a devart.task.v1 message; dead-lettering it',
      );
      delivery.nack({ requeue: false });
      return;
    }
    const message = verdict.message;
    await waitForSlot();
    if (stopping) {
      delivery.nack({ requeue: true });
      return;
    }
    // Holding the slot from here keeps prefetch and concurrency honest while `start` is in flight.
    let endCallback!: () => void;
    const callbackEnded = new Promise<void>((resolve) => {
      endCallback = resolve;
    });
    const entry: Running = {
      controller: new AbortController(),
      done: Promise.resolve(),
      attempt: message.attempt,
      phase: 'starting',
      callbackEnded,
      endCallback,
      abandoned: false,
    };
    running.set(message.task_id, entry);
    let started: { status: number; body: { lease_expires_at: string | null } };
    try {
      started =
        options.batchReports === false
          ? await api.call('POST', `/api/tasks/${message.task_id}/start`, { attempt: message.attempt })
          : await starts.submit({ task_id: message.task_id, attempt: message.attempt });
    } catch (error) {
      running.delete(message.task_id);
      entry.endCallback();
      releaseSlot();
      logger.warn({ task_id: message.task_id, err: error }, 'start failed; message returned to the queue');
      delivery.nack({ requeue: true });
      return;
    }
    if (started.status === 401 || started.status === 403) {
      // Not an answer about the task but about this agent (its key revoked, or a capability it
      // lacks): dropping the message would leave the task TODO with nothing left to deliver it.
      running.delete(message.task_id);
      entry.endCallback();
      releaseSlot();
      if (started.status === 401) {
        if (!stopping)
          logger.error(
            { task_id: message.task_id },
            'the API refused this agent’s key (revoked?); it stops taking tasks',
          );
        // Cancelling first returns this message with the other unacked ones, to the other agents.
        await refuseWork();
      } else {
        logger.warn(
          { task_id: message.task_id, body: started.body },
          'start forbidden for this agent; message returned to the queue',
        );
      }
      delivery.nack({ requeue: true });
      return;
    }
    // The database's lease guards the task from here on, so the message is settled at once.
    delivery.ack();
    if (started.status !== 200) {
      running.delete(message.task_id);
      entry.endCallback();
      releaseSlot();
      if (started.status !== 409 && started.status !== 404) {
        logger.warn(
          { task_id: message.task_id, status: started.status, body: started.body },
          'start refused',
        );
      }
      return;
    }
    if (entry.abandoned) {
      // stop() ran out of grace while start was in flight: the task is ours now, so say it failed.
      running.delete(message.task_id);
      entry.endCallback();
      releaseSlot();
      void reporter.report(shutdownFailure(message.task_id, message.attempt));
      return;
    }
    entry.phase = 'working';
    entry.done = work(message, started.body, callback, entry)
      .catch((error) => logger.error({ task_id: message.task_id, err: error }, 'task report failed'))
      .finally(() => {
        running.delete(message.task_id);
        entry.endCallback();
        releaseSlot();
      });
  }

  const agent: Agent = {
    get inFlight() {
      return running.size;
    },
    get pendingReports() {
      return reporter.pending;
    },
    async startConsuming(callback) {
      // Before any wait, so that a signal during it stops the agent cleanly.
      if (options.handleSignals) {
        const onSignal = () => void agent.stop().then(() => process.exit(0));
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
      }
      await broker.setup();
      const wanted = [null, ...new Set(options.capabilities)];
      const subscribe = async (capability: string | null): Promise<string> => {
        // Declares the queue where the broker lets us (in-process); an agent's RabbitMQ user only
        // checks it exists, and consume() waits for a missing one until the API declares it.
        const queue = await broker
          .ensureTaskQueue(capability)
          .catch((error: unknown) =>
            error instanceof QueueNotFoundError ? error.queue : Promise.reject(error),
          );
        const consumer = await broker
          .consume(queue, { prefetch: concurrency, signal: starting.signal }, (d) => onDelivery(d, callback))
          .catch((error: unknown) =>
            Promise.reject(
              error instanceof AccessRefusedError
                ? accessRefused(queue, options.prefix ?? '', wanted, error)
                : error,
            ),
          );
        // stop() may have come between consume-ok and here, after cancelling the others.
        if (stopping) await consumer.cancel();
        else consumers.push(consumer);
        return queue;
      };
      // All at once: a queue still missing must not hold back the others.
      let queues: string[] = [];
      try {
        queues = await Promise.all(wanted.map(subscribe));
      } catch (error) {
        // A refusal ends the other waits (the start has failed); stop() ends them all cleanly.
        starting.abort(error);
        if (!stopping) throw error;
      }
      if (stopping) {
        logger.info({}, 'agent stopped before it consumed all its queues');
        return;
      }
      const presenceMs = options.presenceIntervalMs ?? 30_000;
      if (presenceMs > 0) {
        // Best effort: a missed ping only risks an OFFLINE mark, undone by the agent's next call.
        presence = setInterval(
          () => void api.call('GET', '/api/agents/me', undefined, { retries: 1 }).catch(() => {}),
          presenceMs,
        );
        presence.unref();
      }
      logger.info({ queues, concurrency }, 'agent consuming');
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        clearInterval(presence);
        starting.abort(new Error('the agent is stopping'));
        releaseSlot();
        await Promise.all(consumers.map((c) => c.cancel().catch(() => {})));
        // First the callbacks, within their grace; those still running are aborted and reported failed.
        const grace = options.shutdownGraceMs ?? 30_000;
        const callbacks = Promise.all([...running.values()].map((r) => r.callbackEnded));
        let graceTimer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          callbacks.then(() => false),
          new Promise<boolean>((r) => {
            graceTimer = setTimeout(() => r(true), grace);
          }),
        ]);
        clearTimeout(graceTimer);
        if (timedOut) {
          for (const [taskId, entry] of running) {
            if (entry.phase === 'reporting' || entry.abandoned) continue;
            entry.abandoned = true;
            entry.controller.abort(new Error('agent shutting down'));
            // A start still in flight reports for itself once it knows the task is ours.
            if (entry.phase === 'working') void reporter.report(shutdownFailure(taskId, entry.attempt));
          }
        }
        // Then the outcomes held: bounded, so a platform that never comes back cannot hold the agent.
        const left = await reporter.drain(options.reportGraceMs ?? 30_000);
        if (left > 0) {
          logger.error(
            { held: left },
            `stopping with ${left} outcome(s) the platform never confirmed; their tasks run again when their leases lapse`,
          );
          reporter.abandonAll('agent stopped');
        }
        if (ownsBroker) await broker.close();
      })();
      return stopped;
    },
  };
  return agent;
}
