import type { ChannelModel, ConfirmChannel, Message } from 'amqplib';
import { IllegalOperationError } from 'amqplib';
import { InvalidMessageError } from '../errors';
import type { EncodedMessage } from '../message';

/** A message ready for the wire. */
export interface WireMessage extends EncodedMessage {
  readonly content: Buffer;
}

/** What became of each message of one {@link ConfirmPublisher.send}. */
export interface SendOutcome {
  nacked: WireMessage[];
  /** Returned by RabbitMQ as `mandatory` and unroutable (even the alternate exchange failed). */
  unroutable: WireMessage[];
  /** Unconfirmed when the channel closed: they may or may not have arrived, so send them again. */
  lost: WireMessage[];
  /** The channel-level error that closed the channel, if that is what happened. */
  channelError: Error | undefined;
}

/**
 * Publishes on one confirm channel of a connection: writes a whole batch (respecting the
 * socket's back-pressure), then waits once for all the confirms — a round trip per batch, not
 * per message.
 */
export class ConfirmPublisher {
  private channel: Promise<ConfirmChannel> | undefined;
  private channelError: Error | undefined;
  // One wait for 'drain' shared by every concurrent send(), rather than a listener each.
  private drain: Promise<void> | undefined;
  // Returned messages by id: RabbitMQ sends basic.return before the basic.ack of the same message.
  private readonly returned = new Map<string, number>();

  constructor(private readonly model: ChannelModel) {}

  async send(exchange: string, messages: readonly WireMessage[]): Promise<SendOutcome> {
    const outcome: SendOutcome = { nacked: [], unroutable: [], lost: [], channelError: undefined };
    let ch: ConfirmChannel;
    try {
      ch = await this.open();
    } catch (err) {
      outcome.lost.push(...messages);
      outcome.channelError = err instanceof Error ? err : new Error(String(err));
      return outcome;
    }
    let pending = messages.length;
    let allSettled: () => void = () => {};
    const settled = new Promise<void>((resolve) => {
      allSettled = resolve;
    });
    const settle = (): void => {
      pending -= 1;
      if (pending === 0) allSettled();
    };
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i] as WireMessage;
      let writable: boolean;
      try {
        writable = ch.publish(
          exchange,
          message.routingKey,
          message.content,
          {
            persistent: true,
            mandatory: true,
            messageId: message.messageId,
            contentType: 'application/json',
            headers: message.headers,
          },
          (err: Error | null) => {
            if (!err) {
              if (this.takeReturned(message.messageId)) outcome.unroutable.push(message);
            } else if (err.message === 'message nacked') {
              outcome.nacked.push(message);
            } else {
              outcome.lost.push(message);
            }
            settle();
          },
        );
      } catch (err) {
        if (!(err instanceof IllegalOperationError)) {
          throw new InvalidMessageError(
            `Cannot encode message ${message.messageId}: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
        // The channel closed under us: the rest was never written.
        for (const rest of messages.slice(i)) {
          outcome.lost.push(rest);
          settle();
        }
        break;
      }
      if (!writable) await this.drained(ch);
    }
    await settled;
    outcome.channelError = outcome.lost.length > 0 ? this.channelError : undefined;
    return outcome;
  }

  private open(): Promise<ConfirmChannel> {
    if (this.channel) return this.channel;
    const opening = this.model.createConfirmChannel().then((ch) => {
      this.channelError = undefined;
      ch.on('error', (err: Error) => {
        this.channelError = err;
      });
      ch.on('return', (returned: Message) => {
        const id = returned.properties.messageId as string | undefined;
        if (id !== undefined) this.returned.set(id, (this.returned.get(id) ?? 0) + 1);
      });
      ch.on('close', () => {
        if (this.channel === opening) this.channel = undefined;
      });
      return ch;
    });
    this.channel = opening;
    opening.catch(() => {
      if (this.channel === opening) this.channel = undefined;
    });
    return opening;
  }

  private drained(ch: ConfirmChannel): Promise<void> {
    if (!this.drain) {
      this.drain = new Promise<void>((resolve) => {
        const done = (): void => {
          ch.off('drain', done);
          ch.off('close', done);
          this.drain = undefined;
          resolve();
        };
        ch.on('drain', done);
        ch.on('close', done);
      });
    }
    return this.drain;
  }

  private takeReturned(messageId: string): boolean {
    const count = this.returned.get(messageId);
    if (count === undefined) return false;
    if (count <= 1) this.returned.delete(messageId);
    else this.returned.set(messageId, count - 1);
    return true;
  }
}
