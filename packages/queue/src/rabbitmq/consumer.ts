import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { BrokerLogger, Consumer, Delivery, DeliveryHandler } from '../broker';
import { AccessRefusedError, BrokerClosedError, QueueNotFoundError, TopologyConflictError } from '../errors';
import { invokeHandler } from '../handler';
import { amqpCode, toBrokerError } from './amqp-errors';
import type { BackoffOptions } from './backoff';
import { backoffDelay } from './backoff';

/**
 * Polling for a queue the platform has yet to declare: its reconciler does so every
 * RECONCILE_INTERVAL_SECONDS (10 s by default), so checking more than every 5 s gains nothing.
 */
const queueWait: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 5_000 };

/** A consume() waiting for its queue: settled once consuming, stopped, or refused for good. */
interface PendingStart {
  resolve(): void;
  reject(err: unknown): void;
}

/** What a {@link RabbitConsumer} needs from its broker. */
export interface RabbitConsumerDeps {
  queue: string;
  prefetch: number;
  handler: DeliveryHandler;
  logger: BrokerLogger;
  backoff: BackoffOptions;
  /** A live connection with the topology in place; waits for a reconnect (may be forever). */
  open(timeoutMs: number): Promise<ChannelModel>;
  onCancelled(consumer: RabbitConsumer): void;
  /**
   * Declares the topology again, where this broker may (not in consume-only mode): a queue
   * someone deleted comes back here rather than waiting for the next setup(). Without it a
   * missing queue is waited for, polling every {@link queueWait}, until the platform declares it.
   */
  redeclare?(): Promise<void>;
}

/**
 * A consumer on its own channel (so its prefetch is its own and a refusal closes only it). When
 * the channel goes — connection lost, queue deleted, channel error — it re-subscribes with the
 * same prefetch, backing off while that fails. A queue missing at the start and one deleted later
 * take the same path: {@link waitForQueue} joins the re-subscribe loop.
 */
export class RabbitConsumer implements Consumer {
  private channel: Channel | undefined;
  private cancelled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Failed (re-)subscribes since the consumer last consumed. */
  private failures = 0;
  /** The last failure was a queue we wait for the platform to declare. */
  private queueMissing = false;
  /** What this outage has warned about already: each once, however long it lasts. */
  private readonly warned = new Set<'queue' | 'other'>();
  private pending: PendingStart | undefined;

  constructor(private readonly deps: RabbitConsumerDeps) {}

  /** Opens a channel on `model` and starts consuming; rejects if RabbitMQ refuses. */
  async subscribe(model: ChannelModel): Promise<void> {
    const { queue, prefetch } = this.deps;
    const ch = await model.createChannel();
    let channelError: Error | undefined;
    let established = false;
    let closed = false;
    ch.on('error', (err: Error) => {
      channelError = err;
    });
    ch.on('close', () => {
      closed = true;
      if (established) this.channelClosed(ch, channelError);
    });
    try {
      await ch.prefetch(prefetch);
      await ch.consume(queue, (raw) => (raw ? this.deliver(ch, raw) : this.cancelledByServer(ch)), {
        noAck: false,
      });
    } catch (err) {
      await ch.close().catch(() => {});
      if (amqpCode(err) === 404) throw new QueueNotFoundError(queue, { cause: err });
      throw toBrokerError(err, `consume queue "${queue}"`);
    }
    established = true;
    this.channel = ch;
    // It may have closed between consume-ok and here, with nobody yet to notice.
    if (closed) this.channelClosed(ch, channelError);
    else if (this.cancelled) await this.closeChannel();
  }

  async cancel(): Promise<void> {
    this.stop();
    // Closing the channel hands its unacked messages back to the queue.
    await this.closeChannel();
  }

  /**
   * After the first subscribe found no queue (consume-only): waits, as a re-subscribe does, until
   * the queue is there and consumed. Rejects with the signal's reason if it aborts, with
   * {@link BrokerClosedError} if the consumer is stopped, and with a refusal that waiting cannot
   * cure (no read permission); in each case the consumer is stopped.
   */
  waitForQueue(missing: QueueNotFoundError, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => this.stop(signal?.reason);
      this.pending = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.noteFailure(missing);
      this.scheduleResubscribe();
    });
  }

  /**
   * Stops re-subscribing without touching the channel (the broker is closing the connection).
   * A {@link waitForQueue} still waiting rejects with `reason`.
   */
  stop(reason: unknown = new BrokerClosedError()): void {
    if (this.cancelled) return;
    this.cancelled = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.settlePending(reason);
    this.deps.onCancelled(this);
  }

  private async closeChannel(): Promise<void> {
    const ch = this.channel;
    this.channel = undefined;
    await ch?.close().catch(() => {});
  }

  private deliver(ch: Channel, raw: ConsumeMessage): void {
    const { queue, handler, logger } = this.deps;
    let body: unknown;
    try {
      body = JSON.parse(raw.content.toString('utf8'));
    } catch (err) {
      logger.error(
        { err, queue, messageId: raw.properties.messageId },
        'Message body is not JSON; dead-lettering it',
      );
      settle(ch, raw, 'reject');
      return;
    }
    invokeHandler(handler, new RabbitDelivery(ch, raw, body), logger, queue);
  }

  private cancelledByServer(ch: Channel): void {
    this.deps.logger.warn(
      { queue: this.deps.queue },
      'RabbitMQ cancelled the consumer (queue deleted?); re-subscribing',
    );
    void ch.close().catch(() => {});
  }

  private channelClosed(ch: Channel, err: Error | undefined): void {
    if (this.channel !== ch) return;
    this.channel = undefined;
    if (this.cancelled) return;
    // Only RabbitMQ closing this channel alone carries an error; a lost connection closes every
    // channel without one and is logged once, by the connection.
    if (err) {
      this.deps.logger.warn(
        { queue: this.deps.queue, err: err.message },
        'Consumer channel closed; re-subscribing',
      );
    }
    this.scheduleResubscribe();
  }

  private scheduleResubscribe(): void {
    if (this.cancelled || this.retryTimer) return;
    const backoff = this.queueMissing ? queueWait : this.deps.backoff;
    const delay = this.failures === 0 ? 0 : backoffDelay(this.failures, backoff);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.resubscribe();
    }, delay);
  }

  private async resubscribe(): Promise<void> {
    const { queue, logger } = this.deps;
    try {
      const model = await this.deps.open(Number.POSITIVE_INFINITY);
      if (this.cancelled) return;
      await this.subscribe(model);
      if (this.cancelled) return;
    } catch (err) {
      if (this.cancelled || err instanceof BrokerClosedError) return;
      if (this.pending && (err instanceof AccessRefusedError || err instanceof TopologyConflictError)) {
        // Nobody will grant the permission while we wait: the caller of consume() hears it now.
        this.stop(err);
        return;
      }
      if (err instanceof QueueNotFoundError && this.deps.redeclare) {
        // Failing here too is fine: the next attempt, after the backoff, tries again.
        await this.deps.redeclare().catch(() => {});
      }
      this.noteFailure(err);
      this.scheduleResubscribe();
      return;
    }
    if (this.warned.has('queue')) {
      logger.info({ queue }, `queue ${queue} exists now; consuming it`);
    } else if (this.failures > 0) {
      logger.info({ queue }, 'Consumer re-established');
    }
    this.failures = 0;
    this.queueMissing = false;
    this.warned.clear();
    this.settlePending();
  }

  /** Counts a failed (re-)subscribe and warns once per kind of trouble per outage. */
  private noteFailure(err: unknown): void {
    const { queue, logger } = this.deps;
    this.failures += 1;
    // Only a broker that may not declare waits for someone else to; others re-declare.
    this.queueMissing = err instanceof QueueNotFoundError && !this.deps.redeclare;
    const kind = this.queueMissing ? 'queue' : 'other';
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    if (this.queueMissing) {
      logger.warn({ queue }, `queue ${queue} does not exist yet; waiting for the devart API to declare it`);
    } else {
      logger.warn(
        { queue, err: (err as Error).message },
        'Cannot re-subscribe consumer yet; retrying with backoff',
      );
    }
  }

  /** Settles a waiting consume(): consuming if `err` is absent. */
  private settlePending(err?: unknown): void {
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return;
    if (err === undefined) pending.resolve();
    else pending.reject(err);
  }
}

class RabbitDelivery implements Delivery {
  readonly messageId: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  readonly deliveryCount: number;
  readonly headers: Readonly<Record<string, unknown>>;
  private done = false;

  constructor(
    private readonly ch: Channel,
    private readonly raw: ConsumeMessage,
    readonly body: unknown,
  ) {
    const headers: Record<string, unknown> = raw.properties.headers ?? {};
    this.headers = headers;
    this.messageId = (raw.properties.messageId as string | undefined) ?? '';
    this.routingKey = raw.fields.routingKey;
    this.redelivered = raw.fields.redelivered;
    // Quorum queues count returns in x-delivery-count and leave it out on the first delivery.
    const count = Number(headers['x-delivery-count'] ?? 0);
    this.deliveryCount = Number.isFinite(count) ? count : 0;
  }

  get settled(): boolean {
    return this.done;
  }

  ack(): void {
    if (this.done) return;
    this.done = true;
    settle(this.ch, this.raw, 'ack');
  }

  nack(opts?: { requeue?: boolean }): void {
    if (this.done) return;
    this.done = true;
    settle(this.ch, this.raw, opts?.requeue === false ? 'reject' : 'requeue');
  }
}

/** A no-op once the channel is gone: RabbitMQ has put the message back already. */
function settle(ch: Channel, raw: ConsumeMessage, outcome: 'ack' | 'requeue' | 'reject'): void {
  try {
    if (outcome === 'ack') ch.ack(raw);
    else ch.nack(raw, false, outcome === 'requeue');
  } catch {
    // The channel closed: the message is back in its queue already.
  }
}
