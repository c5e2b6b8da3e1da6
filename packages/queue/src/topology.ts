import { InvalidCapabilityError } from './errors';

const capabilityPattern = /^[a-z0-9][a-z0-9_-]{0,63}$/;
// Topic-exchange wildcards and anything RabbitMQ would reject stay out of prefixes.
const prefixPattern = /^[A-Za-z0-9_.-]{0,64}$/;
const todo = 'tasks.todo';

/** The names of every exchange and queue of the task topology (DESIGN §4), for one prefix. */
export interface TopologyNames {
  readonly prefix: string;
  /** Topic exchange every task message is published to. */
  readonly exchange: string;
  /** Fanout exchange the task queues dead-letter into. */
  readonly deadLetterExchange: string;
  /** Quorum queue of quarantined and poison messages. */
  readonly deadQueue: string;
  /** Fanout alternate exchange of `exchange`: what matches no binding goes here, not to /dev/null. */
  readonly unroutableExchange: string;
  readonly unroutableQueue: string;
  /** Queue of tasks without a capability. */
  readonly defaultTaskQueue: string;
}

/** Whether `value` is a valid capability slug. */
export function isCapability(value: unknown): value is string {
  return typeof value === 'string' && capabilityPattern.test(value);
}

/**
 * Throws {@link InvalidCapabilityError} unless `value` is a capability slug.
 * @example assertCapability('k8s-deploy') // ok; assertCapability('Shell') throws
 */
export function assertCapability(value: unknown): asserts value is string {
  if (!isCapability(value)) throw new InvalidCapabilityError(value);
}

/**
 * The queue (and routing key) of tasks needing `capability`; `null` means no capability.
 * @example taskQueueName('shell') // 'tasks.todo.shell'
 * @example taskQueueName(null, 't1.') // 't1.tasks.todo'
 */
export function taskQueueName(capability: string | null, prefix = ''): string {
  assertPrefix(prefix);
  if (capability === null) return `${prefix}${todo}`;
  assertCapability(capability);
  return `${prefix}${todo}.${capability}`;
}

/**
 * The capability a task queue name stands for: a slug, `null` for the default queue, or
 * `undefined` when `name` is not a task queue of this prefix.
 * @example capabilityOfTaskQueue('tasks.todo.shell') // 'shell'
 */
export function capabilityOfTaskQueue(name: string, prefix = ''): string | null | undefined {
  const base = `${prefix}${todo}`;
  if (name === base) return null;
  if (!name.startsWith(`${base}.`)) return undefined;
  const capability = name.slice(base.length + 1);
  return isCapability(capability) ? capability : undefined;
}

/**
 * All topology names for a prefix (default '': the production names).
 * @example topologyNames('t42.').deadQueue // 't42.tasks.dead'
 */
export function topologyNames(prefix = ''): TopologyNames {
  assertPrefix(prefix);
  return {
    prefix,
    exchange: `${prefix}tasks`,
    deadLetterExchange: `${prefix}tasks.dlx`,
    deadQueue: `${prefix}tasks.dead`,
    unroutableExchange: `${prefix}tasks.unroutable`,
    unroutableQueue: `${prefix}tasks.unroutable`,
    defaultTaskQueue: `${prefix}${todo}`,
  };
}

function assertPrefix(prefix: string): void {
  if (!prefixPattern.test(prefix) || prefix.startsWith('amq.')) {
    throw new RangeError(
      `Invalid topology prefix ${JSON.stringify(prefix)}: use up to 64 characters of A-Z, a-z, 0-9, '_', '.', '-' and do not start with "amq."`,
    );
  }
}
