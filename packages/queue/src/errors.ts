/** Base class of every error this package throws, so callers can tell broker trouble apart. */
export class BrokerError extends Error {
  override name = 'BrokerError';
}

/** A capability is not a slug (`^[a-z0-9][a-z0-9_-]{0,63}$`). */
export class InvalidCapabilityError extends BrokerError {
  override name = 'InvalidCapabilityError';
  constructor(readonly capability: unknown) {
    super(
      `Invalid capability ${JSON.stringify(capability)}: use 1-64 characters of a-z, 0-9, '_' or '-', ` +
        'starting with a letter or digit (e.g. "shell", "k8s-deploy")',
    );
  }
}

/** An outgoing message is malformed (no messageId, body not JSON-serialisable, …); nothing was sent. */
export class InvalidMessageError extends BrokerError {
  override name = 'InvalidMessageError';
}

/** The broker could not be reached (or did not confirm) within the operation timeout. */
export class BrokerUnavailableError extends BrokerError {
  override name = 'BrokerUnavailableError';
}

/** The broker was closed; it accepts no more work. */
export class BrokerClosedError extends BrokerError {
  override name = 'BrokerClosedError';
  constructor() {
    super('The broker is closed; create a new one to publish or consume');
  }
}

/** The broker refused some messages of a publish: nacked, or unroutable (returned as `mandatory`). */
export class PublishRejectedError extends BrokerError {
  override name = 'PublishRejectedError';
  constructor(
    readonly nacked: readonly string[],
    readonly unroutable: readonly string[],
  ) {
    const parts: string[] = [];
    if (nacked.length > 0) parts.push(`${nacked.length} nacked by the broker (${sample(nacked)})`);
    if (unroutable.length > 0) parts.push(`${unroutable.length} unroutable (${sample(unroutable)})`);
    super(`Publish rejected: ${parts.join('; ')}. Check the broker's topology and logs, then retry`);
  }
}

/** The queue does not exist (RabbitMQ 404 NOT_FOUND). */
export class QueueNotFoundError extends BrokerError {
  override name = 'QueueNotFoundError';
  constructor(
    readonly queue: string,
    options?: ErrorOptions,
  ) {
    // Read by people running an agent, who never call the broker's API themselves.
    super(
      `Queue "${queue}" does not exist on this broker. The devart API creates the task queues (when it ` +
        'starts, when an agent registers, and again every few seconds): is devart running with AMQP_URL ' +
        'set to this broker and vhost, and with the same AMQP_PREFIX as this queue name?',
      options,
    );
  }
}

/** The credentials lack a permission (RabbitMQ 403 ACCESS_REFUSED). */
export class AccessRefusedError extends BrokerError {
  override name = 'AccessRefusedError';
}

/** Something with the same name exists with other arguments (RabbitMQ 406 PRECONDITION_FAILED). */
export class TopologyConflictError extends BrokerError {
  override name = 'TopologyConflictError';
}

/** A consume-only broker (agent credentials) was asked to publish or declare. */
export class ConsumeOnlyError extends BrokerError {
  override name = 'ConsumeOnlyError';
  constructor(operation: string) {
    super(`${operation} is not available on a consume-only broker (created with consumeOnly: true)`);
  }
}

function sample(ids: readonly string[]): string {
  return ids.length > 3 ? `${ids.slice(0, 3).join(', ')}, …` : ids.join(', ');
}
