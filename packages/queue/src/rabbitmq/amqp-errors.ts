import { AccessRefusedError, TopologyConflictError } from '../errors';

/** The AMQP reply code of an amqplib error (404, 403, 406, 320…), if it has one. */
export function amqpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Turns RabbitMQ's permission and equivalence refusals into this package's errors; others pass. */
export function toBrokerError(err: unknown, doing: string): unknown {
  const message = err instanceof Error ? err.message : String(err);
  switch (amqpCode(err)) {
    case 403:
      return new AccessRefusedError(
        `RabbitMQ refused to ${doing}: ${message}. The user lacks the permission (agents may only read their own task queues)`,
        { cause: err },
      );
    case 406:
      return new TopologyConflictError(
        `RabbitMQ refused to ${doing}: ${message}. Something with that name exists with other arguments: ` +
          'delete it or use the same options (e.g. deliveryLimit) everywhere',
        { cause: err },
      );
    default:
      return err;
  }
}

/** The URL without its password, for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid URL>';
  }
}
