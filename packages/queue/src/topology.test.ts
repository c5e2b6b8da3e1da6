import { describe, expect, it } from 'vitest';
import { InvalidCapabilityError } from './errors';
import { capabilityOfTaskQueue, isCapability, taskQueueName, topologyNames } from './topology';

describe('task topology names', () => {
  it('names task queues after their capability, optionally prefixed', () => {
    expect(taskQueueName(null)).toBe('tasks.todo');
    expect(taskQueueName('shell')).toBe('tasks.todo.shell');
    expect(taskQueueName('k8s-deploy', 't1.')).toBe('t1.tasks.todo.k8s-deploy');
  });

  it('accepts only capability slugs', () => {
    for (const ok of ['a', '0', 'shell', 'k8s_deploy-2', 'a'.repeat(64)]) expect(isCapability(ok)).toBe(true);
    for (const bad of ['', 'Shell', '-x', '_x', 'a.b', 'a*', 'a#', 'a b', 'a'.repeat(65), 42, null]) {
      expect(isCapability(bad)).toBe(false);
    }
    expect(() => taskQueueName('tasks.#')).toThrow(InvalidCapabilityError);
    expect(() => taskQueueName('Shell')).toThrow(/Invalid capability "Shell"/);
  });

  it('reads the capability back from a task queue name, and nothing from other names', () => {
    expect(capabilityOfTaskQueue('tasks.todo')).toBeNull();
    expect(capabilityOfTaskQueue('tasks.todo.shell')).toBe('shell');
    expect(capabilityOfTaskQueue('t1.tasks.todo.shell', 't1.')).toBe('shell');
    expect(capabilityOfTaskQueue('t1.tasks.todo.shell')).toBeUndefined();
    expect(capabilityOfTaskQueue('tasks.todo.Shell')).toBeUndefined();
    expect(capabilityOfTaskQueue('tasks.todo.a.b')).toBeUndefined();
    expect(capabilityOfTaskQueue('tasks.dead')).toBeUndefined();
    expect(capabilityOfTaskQueue('tasks.todox')).toBeUndefined();
  });

  it('derives every exchange and queue name from the prefix', () => {
    expect(topologyNames('p.')).toEqual({
      prefix: 'p.',
      exchange: 'p.tasks',
      deadLetterExchange: 'p.tasks.dlx',
      deadQueue: 'p.tasks.dead',
      unroutableExchange: 'p.tasks.unroutable',
      unroutableQueue: 'p.tasks.unroutable',
      defaultTaskQueue: 'p.tasks.todo',
    });
    expect(topologyNames().exchange).toBe('tasks');
  });

  it('rejects prefixes RabbitMQ or topic routing would choke on', () => {
    for (const bad of ['a*', 'a#', 'a b', 'amq.x', 'x'.repeat(65)])
      expect(() => topologyNames(bad)).toThrow(RangeError);
  });
});
