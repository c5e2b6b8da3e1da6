/**
 * Measures end-to-end throughput (publish → consume → ack) of 2,000 no-op messages over
 * 4 consumers, on the in-process broker and, when AMQP_URL is set, on RabbitMQ.
 * Run: `npx tsx packages/queue/scripts/throughput.ts` (AMQP_URL=amqp://guest:guest@127.0.0.1:5672).
 */
import type { Broker } from '../src/broker';
import { createInProcessBroker } from '../src/in-process';
import { createRabbitBroker } from '../src/rabbitmq/broker';
import { createManagementClient } from '../src/rabbitmq/management';
import { amqpUrl, deletePrefixed, managementUrl, newPrefix } from '../src/rabbitmq/test-support';

const total = Number(process.env.MESSAGES ?? 2_000);
const batchSize = Number(process.env.BATCH ?? 500);
const prefetch = Number(process.env.PREFETCH ?? 100);
const runs = Number(process.env.RUNS ?? 3);

async function measure(broker: Broker): Promise<number> {
  await broker.setup();
  const queue = await broker.ensureTaskQueue('bench');
  let acked = 0;
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const consumers = [];
  for (let c = 0; c < 4; c++) {
    consumers.push(
      await broker.consume(queue, { prefetch }, (d) => {
        d.ack();
        acked += 1;
        if (acked === total) finished();
      }),
    );
  }
  const started = performance.now();
  const publishes: Promise<void>[] = [];
  for (let i = 0; i < total; i += batchSize) {
    const batch = [];
    for (let j = i; j < Math.min(total, i + batchSize); j++) {
      batch.push({
        routingKey: queue,
        messageId: `bench-${j}:1`,
        body: { type: 'devart.task.v1', task_id: `bench-${j}` },
      });
    }
    publishes.push(broker.publish(batch));
  }
  await Promise.all(publishes);
  await done;
  const rate = total / ((performance.now() - started) / 1_000);
  for (const consumer of consumers) await consumer.cancel();
  return rate;
}

async function bench(
  name: string,
  make: () => Broker,
  cleanup: () => Promise<void> = async () => {},
): Promise<void> {
  const rates: number[] = [];
  for (let run = 0; run < runs; run++) {
    const broker = make();
    try {
      rates.push(await measure(broker));
    } finally {
      await broker.close();
      await cleanup();
    }
  }
  const shown = rates.map((r) => Math.round(r).toLocaleString('en')).join(', ');
  console.log(
    `${name}: ${total} messages, batches of ${batchSize}, 4 consumers × prefetch ${prefetch}: ${shown} msg/s`,
  );
}

await bench('in-process', () => createInProcessBroker());
const url = amqpUrl;
if (url) {
  const management = createManagementClient({ url: managementUrl(url) });
  let prefix = newPrefix();
  await bench(
    'rabbitmq  ',
    () => createRabbitBroker({ url, prefix }),
    async () => {
      await deletePrefixed(management, prefix);
      prefix = newPrefix();
    },
  );
} else {
  console.log('rabbitmq: skipped (set AMQP_URL to measure it)');
}
