import type { ChannelModel, RecoveringChannelModel } from 'amqplib';
import { connect } from 'amqplib';
import type { BrokerLogger } from '../broker';
import { BrokerClosedError, BrokerUnavailableError } from '../errors';
import { redactUrl } from './amqp-errors';
import { type BackoffOptions, backoffDelay } from './backoff';

/** Options of {@link RabbitConnection}. */
export interface RabbitConnectionOptions {
  url: string;
  /** Shown as the connection's name in the management UI. */
  connectionName: string;
  logger: BrokerLogger;
  reconnect: BackoffOptions;
  /** TCP/TLS connect timeout of one attempt (ms). */
  connectTimeoutMs: number;
}

interface Waiter {
  resolve(model: ChannelModel): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * One AMQP connection that reconnects by itself (amqplib's recovery, with our backoff) and
 * lets callers wait, with a timeout, for it to be up. Connects lazily on first use. Logs a lost
 * connection once and its return once, however many operations are waiting.
 */
export class RabbitConnection {
  private readonly safeUrl: string;
  private recovering: RecoveringChannelModel | undefined;
  private starting: Promise<void> | undefined;
  private live: ChannelModel | undefined;
  private readonly waiters = new Set<Waiter>();
  private lastError: Error | undefined;
  private closed = false;
  private everConnected = false;
  private outageSince: number | undefined;

  constructor(private readonly options: RabbitConnectionOptions) {
    this.safeUrl = redactUrl(options.url);
  }

  /** The connection if it is up right now. */
  get current(): ChannelModel | undefined {
    return this.live;
  }

  /** Resolves with the live connection, waiting up to `timeoutMs` (may be Infinity) for it. */
  acquire(timeoutMs: number): Promise<ChannelModel> {
    if (this.closed) return Promise.reject(new BrokerClosedError());
    if (this.live) return Promise.resolve(this.live);
    this.start();
    return new Promise<ChannelModel>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined };
      if (Number.isFinite(timeoutMs)) {
        waiter.timer = setTimeout(
          () => {
            this.waiters.delete(waiter);
            reject(this.unavailable(timeoutMs));
          },
          Math.max(0, timeoutMs),
        );
      }
      this.waiters.add(waiter);
    });
  }

  /** The error to report when RabbitMQ stayed out of reach for `waitedMs`. */
  unavailable(waitedMs: number): BrokerUnavailableError {
    const last = this.lastError ? `last error: ${this.lastError.message}` : 'no answer yet';
    return new BrokerUnavailableError(
      `RabbitMQ at ${this.safeUrl} is not reachable (waited ${waitedMs} ms; ${last}). ` +
        'Check AMQP_URL, the credentials, and that RabbitMQ is running',
      { cause: this.lastError },
    );
  }

  /** Closes for good: no reconnect, waiting callers get {@link BrokerClosedError}. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.live = undefined;
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new BrokerClosedError());
    }
    this.waiters.clear();
    await this.starting;
    await this.recovering?.close().catch(() => {});
  }

  private context(): { url: string; connection: string } {
    return { url: this.safeUrl, connection: this.options.connectionName };
  }

  private start(): void {
    if (this.starting) return;
    this.starting = this.open().catch((err: unknown) => {
      // connect() only fails here for a malformed URL or options; report it to every waiter.
      this.lastError = err instanceof Error ? err : new Error(String(err));
      for (const waiter of this.waiters) waiter.reject(this.lastError);
      this.waiters.clear();
      this.starting = undefined;
    });
  }

  private async open(): Promise<void> {
    const { url, connectionName, connectTimeoutMs, reconnect } = this.options;
    const recovering = await connect(url, {
      clientProperties: { connection_name: connectionName },
      timeout: connectTimeoutMs,
      recovery: {
        // Listeners go on before the first attempt, which then runs in the background.
        waitForConnect: false,
        calculateDelay: (attempt: number) => backoffDelay(attempt, reconnect),
      },
    });
    if (this.closed) {
      await recovering.close();
      return;
    }
    this.recovering = recovering;
    recovering.on('connect', (model: ChannelModel) => this.onConnect(model));
    recovering.on('disconnect', (err: Error) => this.onDisconnect(err));
    recovering.on('connect-failed', (err: Error) => this.onConnectFailed(err));
    recovering.on('error', (err: Error) => {
      this.lastError = err;
    });
    recovering.on('blocked', (reason: string) =>
      this.options.logger.warn(
        { ...this.context(), reason },
        'RabbitMQ blocked this connection; publishes wait',
      ),
    );
    recovering.on('unblocked', () =>
      this.options.logger.info(this.context(), 'RabbitMQ unblocked this connection'),
    );
  }

  private onConnect(model: ChannelModel): void {
    if (this.closed) return;
    this.live = model;
    this.lastError = undefined;
    const { logger } = this.options;
    if (this.outageSince !== undefined) {
      logger.info(
        { ...this.context(), downMs: Date.now() - this.outageSince },
        this.everConnected ? 'RabbitMQ connection re-established' : 'RabbitMQ connection established',
      );
      this.outageSince = undefined;
    } else {
      logger.debug?.(this.context(), 'RabbitMQ connection established');
    }
    this.everConnected = true;
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(model);
    }
    this.waiters.clear();
  }

  private onDisconnect(err: Error): void {
    this.live = undefined;
    this.lastError = err;
    if (this.closed || this.outageSince !== undefined) return;
    this.outageSince = Date.now();
    this.options.logger.warn(
      { ...this.context(), err: err.message },
      'RabbitMQ connection lost; reconnecting in the background',
    );
  }

  private onConnectFailed(err: Error): void {
    this.lastError = err;
    if (this.closed || this.outageSince !== undefined) return;
    // Only the very first failure gets here (later ones happen during a logged outage).
    this.outageSince = Date.now();
    this.options.logger.warn(
      { ...this.context(), err: err.message },
      'Cannot reach RabbitMQ; retrying in the background',
    );
  }
}
