import type { OutgoingMessage } from './broker';
import { InvalidMessageError } from './errors';

/** An outgoing message checked and serialised once, before anything is sent. */
export interface EncodedMessage {
  readonly messageId: string;
  readonly routingKey: string;
  readonly json: string;
  readonly headers: Record<string, string | number>;
}

/**
 * Validates and JSON-serialises a batch; throws {@link InvalidMessageError} for the first bad
 * message so a batch is sent whole or not at all.
 */
export function encodeMessages(messages: readonly OutgoingMessage[]): EncodedMessage[] {
  if (!Array.isArray(messages)) throw new InvalidMessageError('publish() takes an array of messages');
  return messages.map((message, index) => {
    const where = `message #${index}`;
    if (typeof message?.messageId !== 'string' || message.messageId === '') {
      throw new InvalidMessageError(
        `${where} has no messageId (a non-empty string, e.g. "<task_id>:<attempt>")`,
      );
    }
    if (typeof message.routingKey !== 'string' || message.routingKey === '') {
      throw new InvalidMessageError(`${where} (${message.messageId}) has no routingKey`);
    }
    let json: string | undefined;
    try {
      json = JSON.stringify(message.body);
    } catch (cause) {
      throw new InvalidMessageError(
        `${where} (${message.messageId}) has a body that is not JSON-serialisable`,
        {
          cause,
        },
      );
    }
    if (json === undefined) {
      throw new InvalidMessageError(
        `${where} (${message.messageId}) has a body that is not JSON-serialisable`,
      );
    }
    const headers = message.headers ?? {};
    for (const [key, value] of Object.entries(headers)) {
      if (typeof value !== 'string' && typeof value !== 'number') {
        throw new InvalidMessageError(
          `${where} (${message.messageId}) header "${key}" is not a string or number`,
        );
      }
    }
    return { messageId: message.messageId, routingKey: message.routingKey, json, headers };
  });
}

/** Throws unless `prefetch` is a positive integer. */
export function assertPrefetch(prefetch: unknown): asserts prefetch is number {
  if (typeof prefetch !== 'number' || !Number.isInteger(prefetch) || prefetch < 1 || prefetch > 65_535) {
    throw new RangeError(`prefetch must be an integer from 1 to 65535, got ${String(prefetch)}`);
  }
}

/**
 * Redeliveries of one message before the broker dead-letters it, when nobody says otherwise: both
 * brokers, the conformance suite and the API's DELIVERY_LIMIT default read this one value.
 */
export const DEFAULT_DELIVERY_LIMIT = 5;

/** Throws unless `limit` is a usable delivery limit. */
export function assertDeliveryLimit(limit: unknown): asserts limit is number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0) {
    throw new RangeError(`deliveryLimit must be a non-negative integer, got ${String(limit)}`);
  }
}
