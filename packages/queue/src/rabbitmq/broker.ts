import type { ChannelModel } from 'amqplib';
import type {
  Broker,
  BrokerLogger,
  ConsumeOptions,
  Consumer,
  DeliveryHandler,
  OutgoingMessage,
} from '../broker';
import { consoleLogger } from '../broker';
import {
  BrokerClosedError,
  BrokerUnavailableError,
  ConsumeOnlyError,
  PublishRejectedError,
  QueueNotFoundError,
} from '../errors';
import { assertDeliveryLimit, assertPrefetch, DEFAULT_DELIVERY_LIMIT, encodeMessages } from '../message';
import { capabilityOfTaskQueue, type TopologyNames, taskQueueName, topologyNames } from '../topology';
import { amqpCode, redactUrl, toBrokerError } from './amqp-errors';
import type { BackoffOptions } from './backoff';
import { RabbitConnection } from './connection';
import { RabbitConsumer } from './consumer';
import { ConfirmPublisher, type WireMessage } from './publisher';
import { checkQueues, checkTopology, declareTaskQueues, declareTopology } from './topology';

/** Options of {@link createRabbitBroker}. */
export interface RabbitBrokerOptions {
  /** `amqp://user:pass@host:5672/vhost` or `amqps://…`. */
  url: string;
  /** Prefix of every exchange and queue name (default ''); tests use it to stay isolated. */
  prefix?: string;
  /**
   * `x-delivery-limit` of the task queues: returns a message survives before it is dead-lettered
   * (reason `delivery_limit`). Default DEFAULT_DELIVERY_LIMIT (5). All processes must agree:
   * RabbitMQ refuses to redeclare a queue with another value (TopologyConflictError).
   */
  deliveryLimit?: number;
  logger?: BrokerLogger;
  /**
   * For agents, whose RabbitMQ user may only read its task queues: declares nothing (setup() and
   * ensureTaskQueue() only check passively that the topology exists) and refuses to publish.
   * consume() of a queue that does not exist (yet, or any more) waits for the platform to declare
   * it, checking every 0.5 s doubling to 5 s, rather than failing.
   */
  consumeOnly?: boolean;
  /**
   * How long setup(), ensureTaskQueue(), consume() and publish() wait for RabbitMQ (to reconnect,
   * to confirm) before rejecting with BrokerUnavailableError. Default 30 000 ms.
   */
  timeoutMs?: number;
  /** Name shown in the management UI (default 'devart'). */
  connectionName?: string;
  /** Reconnect backoff (exponential, capped, jittered). Default 100 ms doubling up to 10 s. */
  reconnect?: Partial<BackoffOptions>;
}

/**
 * A {@link Broker} on RabbitMQ ≥ 3.10: topic exchange `tasks` (alternate exchange
 * `tasks.unroutable`), quorum task queues with a delivery limit dead-lettering to `tasks.dead`,
 * persistent messages, publisher confirms and `mandatory`. It connects lazily, reconnects by
 * itself, re-declares the topology and re-subscribes consumers with their prefetch.
 * @example
 * const broker = createRabbitBroker({ url: process.env.AMQP_URL!, logger });
 * await broker.setup();
 * await broker.publish([{ routingKey: taskQueueName('shell'), messageId: `${id}:1`, body }]);
 */
export function createRabbitBroker(options: RabbitBrokerOptions): Broker {
  return new RabbitBroker(options);
}

interface Session {
  /** The control connection: topology declarations (and publishing, unless consume-only). */
  readonly model: ChannelModel;
  /** Absent in consume-only mode. */
  readonly publisher: ConfirmPublisher | undefined;
}

class RabbitBroker implements Broker {
  readonly kind = 'rabbitmq';
  readonly topology: TopologyNames;
  private readonly logger: BrokerLogger;
  private readonly deliveryLimit: number;
  private readonly consumeOnly: boolean;
  private readonly timeoutMs: number;
  private readonly backoff: BackoffOptions;
  /**
   * Publishing and consuming use separate connections, as RabbitMQ advises: flow control that
   * throttles a busy publisher must not hold back the acks of consumers. Both connect lazily;
   * a consume-only broker has just the consuming one, which then also does the passive checks.
   */
  private readonly control: RabbitConnection;
  private readonly consuming: RabbitConnection;
  /** Task queues declared (or checked) so far; re-declared on every new connection. */
  private readonly taskQueues = new Set<string>();
  private readonly declaring = new Map<string, Promise<void>>();
  private readonly consumers = new Set<RabbitConsumer>();
  private sessionModel: ChannelModel | undefined;
  private sessionOpening: Promise<Session> | undefined;
  private closed = false;

  constructor(options: RabbitBrokerOptions) {
    const {
      url,
      prefix = '',
      deliveryLimit = DEFAULT_DELIVERY_LIMIT,
      logger = consoleLogger,
      consumeOnly = false,
    } = options;
    if (!isAmqpUrl(url)) {
      throw new TypeError(
        `RabbitMQ URL must be an amqp:// or amqps:// URL, got "${redactUrl(String(url))}" (check AMQP_URL)`,
      );
    }
    assertDeliveryLimit(deliveryLimit);
    this.topology = topologyNames(prefix);
    this.logger = logger;
    this.deliveryLimit = deliveryLimit;
    this.consumeOnly = consumeOnly;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.backoff = {
      initialDelayMs: options.reconnect?.initialDelayMs ?? 100,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
    };
    const name = options.connectionName ?? 'devart';
    const connection = (connectionName: string) =>
      new RabbitConnection({
        url,
        connectionName,
        logger,
        reconnect: this.backoff,
        connectTimeoutMs: Math.min(this.timeoutMs, 10_000),
      });
    this.consuming = connection(consumeOnly ? name : `${name}:consume`);
    this.control = consumeOnly ? this.consuming : connection(name);
  }

  async setup(): Promise<void> {
    this.assertOpen();
    await this.withSession(this.deadline(), async (session, fresh) => {
      // A fresh session has just declared everything; an older one re-declares in case
      // another process deleted something since.
      if (fresh) return;
      if (this.consumeOnly) await checkTopology(session.model, this.topology);
      else await declareTopology(session.model, this.topology, this.taskQueues, this.deliveryLimit);
    });
  }

  async ensureTaskQueue(capability: string | null): Promise<string> {
    this.assertOpen();
    const name = taskQueueName(capability, this.topology.prefix);
    if (!this.taskQueues.has(name)) await this.declareTaskQueues([name], this.deadline());
    return name;
  }

  publish(messages: OutgoingMessage[]): Promise<void> {
    return this.send(this.topology.exchange, messages, true);
  }

  publishDead(messages: OutgoingMessage[]): Promise<void> {
    return this.send(this.topology.deadLetterExchange, messages, false);
  }

  async consume(queue: string, opts: ConsumeOptions, handler: DeliveryHandler): Promise<Consumer> {
    this.assertOpen();
    assertPrefetch(opts?.prefetch);
    if (typeof handler !== 'function') throw new TypeError('consume() needs a handler function');
    const consumer = new RabbitConsumer({
      queue,
      prefetch: opts.prefetch,
      handler,
      logger: this.logger,
      backoff: this.backoff,
      open: (timeoutMs) => this.consumerConnection(Date.now() + timeoutMs),
      onCancelled: (c) => this.consumers.delete(c),
      redeclare: this.consumeOnly ? undefined : () => this.setup(),
    });
    this.consumers.add(consumer);
    const deadline = this.deadline();
    for (;;) {
      const model = await this.consumerConnection(deadline).catch((err: unknown) => {
        consumer.stop();
        throw err;
      });
      try {
        await consumer.subscribe(model);
        return consumer;
      } catch (err) {
        if (this.consumeOnly && err instanceof QueueNotFoundError) {
          // Only the platform may declare it (its reconciler will): wait, as a re-subscribe does.
          await consumer.waitForQueue(err, opts.signal);
          return consumer;
        }
        // A refusal from a live connection is final; a dropped one is waited for.
        if (this.closed || this.consuming.current === model || Date.now() >= deadline) {
          consumer.stop();
          throw this.closed ? new BrokerClosedError() : err;
        }
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Closing the connection requeues every unacked message; consumers must just not come back.
    for (const consumer of [...this.consumers]) consumer.stop();
    await Promise.all([this.consuming.close(), this.control.close()]);
  }

  private assertOpen(): void {
    if (this.closed) throw new BrokerClosedError();
  }

  private deadline(): number {
    return Date.now() + this.timeoutMs;
  }

  /** The consuming connection, once the topology is known to be in place. */
  private async consumerConnection(deadline: number): Promise<ChannelModel> {
    const session = await this.session(deadline);
    if (this.consumeOnly) return session.model;
    return this.consuming.acquire(deadline - Date.now());
  }

  private async send(
    exchange: string,
    messages: OutgoingMessage[],
    declareTaskQueues: boolean,
  ): Promise<void> {
    this.assertOpen();
    if (this.consumeOnly) throw new ConsumeOnlyError('publish');
    const encoded = encodeMessages(messages);
    if (encoded.length === 0) return;
    const deadline = this.deadline();
    if (declareTaskQueues) {
      const missing = new Set<string>();
      for (const { routingKey } of encoded) {
        if (
          !this.taskQueues.has(routingKey) &&
          capabilityOfTaskQueue(routingKey, this.topology.prefix) !== undefined
        ) {
          missing.add(routingKey);
        }
      }
      if (missing.size > 0) await this.declareTaskQueues([...missing], deadline);
    }
    let pending: WireMessage[] = encoded.map((m) => ({ ...m, content: Buffer.from(m.json) }));
    let rebuilt = false;
    for (;;) {
      const session = await this.session(deadline);
      const publisher = session.publisher as ConfirmPublisher;
      const outcome = await withDeadline(
        publisher.send(exchange, pending),
        deadline,
        () =>
          new BrokerUnavailableError(
            `RabbitMQ did not confirm ${pending.length} message(s) within ${this.timeoutMs} ms ` +
              '(is it blocked by a memory or disk alarm?); they may still arrive, so retry the publish',
          ),
      );
      if (outcome.nacked.length > 0 || outcome.unroutable.length > 0) {
        throw new PublishRejectedError(
          outcome.nacked.map((m) => m.messageId),
          outcome.unroutable.map((m) => m.messageId),
        );
      }
      if (outcome.lost.length === 0) return;
      // Unconfirmed when the channel went: send them again (at-least-once; consumers dedupe by messageId).
      pending = outcome.lost;
      if (this.closed) throw new BrokerClosedError();
      if (outcome.channelError && this.control.current === session.model) {
        // The channel died but the connection lives: RabbitMQ refused something.
        if (amqpCode(outcome.channelError) === 403 || rebuilt) {
          throw toBrokerError(outcome.channelError, `publish to "${exchange}"`);
        }
        // Maybe someone deleted the exchange: a new session re-declares the topology, once.
        rebuilt = true;
        if (this.sessionModel === session.model) this.sessionOpening = undefined;
      }
    }
  }

  private async declareTaskQueues(names: readonly string[], deadline: number): Promise<void> {
    const todo = names.filter((name) => !this.taskQueues.has(name) && !this.declaring.has(name));
    if (todo.length > 0) {
      const declaring = this.withSession(deadline, async (session) => {
        if (this.consumeOnly) await checkQueues(session.model, todo);
        else await declareTaskQueues(session.model, this.topology, todo, this.deliveryLimit);
        for (const name of todo) this.taskQueues.add(name);
      }).finally(() => {
        for (const name of todo) this.declaring.delete(name);
      });
      for (const name of todo) this.declaring.set(name, declaring);
    }
    await Promise.all(names.map((name) => this.declaring.get(name)));
  }

  /**
   * Runs `work` on a session; if the connection drops underneath, runs it again on the next one
   * (until the deadline). Refusals from a live connection are final.
   */
  private async withSession<T>(
    deadline: number,
    work: (session: Session, fresh: boolean) => Promise<T>,
  ): Promise<T> {
    for (;;) {
      const before = this.sessionOpening;
      const session = await this.session(deadline);
      try {
        return await withDeadline(work(session, this.sessionOpening !== before), deadline, () =>
          this.control.unavailable(this.timeoutMs),
        );
      } catch (err) {
        if (this.closed) throw new BrokerClosedError();
        if (this.control.current === session.model || Date.now() >= deadline) throw err;
      }
    }
  }

  /** The session of the live control connection, opening it (topology, publisher) if needed. */
  private async session(deadline: number): Promise<Session> {
    for (;;) {
      const model = await this.control.acquire(deadline - Date.now());
      if (this.sessionModel !== model || !this.sessionOpening) {
        this.sessionModel = model;
        this.sessionOpening = this.openSession(model);
        this.sessionOpening.catch(() => {});
      }
      const opening = this.sessionOpening;
      try {
        return await withDeadline(opening, deadline, () => this.control.unavailable(this.timeoutMs));
      } catch (err) {
        if (this.sessionOpening === opening) this.sessionOpening = undefined;
        if (this.closed) throw new BrokerClosedError();
        if (this.control.current === model || Date.now() >= deadline) throw err;
      }
    }
  }

  private async openSession(model: ChannelModel): Promise<Session> {
    if (this.consumeOnly) {
      await checkTopology(model, this.topology);
      return { model, publisher: undefined };
    }
    await declareTopology(model, this.topology, this.taskQueues, this.deliveryLimit);
    return { model, publisher: new ConfirmPublisher(model) };
  }
}

/** `promise`, or the error of `onTimeout()` if `deadline` (epoch ms; may be Infinity) passes first. */
function withDeadline<T>(promise: Promise<T>, deadline: number, onTimeout: () => Error): Promise<T> {
  if (!Number.isFinite(deadline)) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), Math.max(0, deadline - Date.now()));
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function isAmqpUrl(url: unknown): url is string {
  if (typeof url !== 'string') return false;
  try {
    const { protocol, hostname } = new URL(url);
    return (protocol === 'amqp:' || protocol === 'amqps:') && hostname !== '';
  } catch {
    return false;
  }
}
