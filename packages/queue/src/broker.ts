import type { TopologyNames } from './topology';

/** A message to publish. `body` is sent as JSON; messages are persistent. */
export interface OutgoingMessage {
  /** For task messages the task queue name, e.g. `tasks.todo.shell` (see `taskQueueName`). */
  routingKey: string;
  /** Deduplication key; for tasks `<task_id>:<attempt>` (DESIGN §4). */
  messageId: string;
  body: unknown;
  headers?: Record<string, string | number>;
}

/** One delivery of a message to a consumer. Settle it exactly once; later calls are ignored. */
export interface Delivery {
  body: unknown;
  messageId: string;
  routingKey: string;
  /** True when this message was delivered before (nacked, or its consumer went away unacked). */
  redelivered: boolean;
  /** How many times the message was delivered before this delivery (0 the first time). */
  deliveryCount: number;
  /** Publisher headers plus the broker's (`x-first-death-reason`, `x-death` on dead-lettered messages). */
  headers: Readonly<Record<string, unknown>>;
  ack(): void;
  /** Returns the message: `requeue` (default true) puts it back at the head of its queue, otherwise it is dead-lettered. */
  nack(opts?: { requeue?: boolean }): void;
}

/** A running subscription. */
export interface Consumer {
  /** Stops deliveries; unacked messages go back to the queue (redelivered, deliveryCount + 1). */
  cancel(): Promise<void>;
}

/** Called once per delivery. If it throws or rejects before settling, the delivery is nacked with requeue. */
export type DeliveryHandler = (delivery: Delivery) => void | Promise<void>;

/** Options of {@link Broker.consume}. */
export interface ConsumeOptions {
  /** Most unacked deliveries this consumer holds at once (positive integer). */
  prefetch: number;
  /**
   * Ends the wait of a consume-only RabbitMQ broker for a missing queue: consume() then rejects
   * with the signal's reason. No other broker waits, so they ignore it.
   */
  signal?: AbortSignal;
}

/**
 * The message broker port: the outbox relay publishes with it, agents consume with it.
 * Implementations: `createInProcessBroker` (embedded mode) and `createRabbitBroker`.
 */
export interface Broker {
  readonly kind: 'in-process' | 'rabbitmq';
  /** Names of the exchanges and queues this broker uses (they depend on its prefix). */
  readonly topology: TopologyNames;
  /** Declares the topology idempotently; safe to call many times and from many processes. */
  setup(): Promise<void>;
  /** Declares (idempotently, cached) the queue for a capability (null = no capability) and returns its name. */
  ensureTaskQueue(capability: string | null): Promise<string>;
  /**
   * Publishes persistent messages to the `tasks` exchange and resolves once the broker confirmed
   * every one; rejects if any was nacked or unroutable. A routing key that names a task queue
   * declares that queue first, so its messages wait there until a consumer appears; any other
   * key goes wherever the exchange routes it (the unroutable queue at worst).
   */
  publish(messages: OutgoingMessage[]): Promise<void>;
  /** Publishes straight to the dead-letter queue (quarantined tasks), keeping each routing key. */
  publishDead(messages: OutgoingMessage[]): Promise<void>;
  /**
   * Subscribes to `queue` and resolves once consuming. A queue that does not exist is an error
   * (`QueueNotFoundError`), except on a consume-only RabbitMQ broker: it cannot declare the
   * queue, so it waits with backoff for the platform to declare it (until `opts.signal` aborts or
   * the broker closes). A refusal (no read permission) rejects at once either way.
   */
  consume(queue: string, opts: ConsumeOptions, handler: DeliveryHandler): Promise<Consumer>;
  /** Stops every consumer (their unacked messages are requeued) and releases all resources. */
  close(): Promise<void>;
}

/** The subset of a pino logger the brokers use; a pino logger fits as is. */
export interface BrokerLogger {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Default logger: warnings and errors on stderr, nothing else. Pass a pino logger in services. */
export const consoleLogger: BrokerLogger = {
  info() {},
  warn(obj, msg) {
    console.warn(`[devart/queue] ${msg ?? ''}`, obj);
  },
  error(obj, msg) {
    console.error(`[devart/queue] ${msg ?? ''}`, obj);
  },
};
