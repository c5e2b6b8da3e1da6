import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { brokerKind, createTestPlatform, type TestPlatform } from '../../../test/platform';

let platform: TestPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

describe(`workflow warnings on ${backend} + ${brokerKind}`, () => {
  it('warns, in the answer and the log, of steps whose capability no registered agent serves, and still runs', async () => {
    const lines: { level: number; msg: string; warnings?: string[] }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    platform = await createTestPlatform({ logger });
    const p = platform;
    const admin = await p.token('admin');
    const suffix = randomUUID().slice(0, 8);
    const served = `served-${suffix}`;
    const nobody = `nobody-${suffix}`;
    const revoked = `revoked-${suffix}`;
    await p.registerAgent([served]);
    const gone = await p.registerAgent([revoked]);
    expect((await p.call('DELETE', `/api/agents/${gone.id}`, { auth: admin })).status).toBe(204);

    const created = await p.call('POST', '/api/workflows', {
      auth: admin,
      body: {
        name: `warned-${suffix}`,
        steps: [
          { key: 'build', title: 'Build', capability: served },
          { key: 'checkout', title: 'Checkout', capability: nobody },
          { key: 'deploy', title: 'Deploy', capability: revoked, depends_on: ['build'] },
          { key: 'report', title: 'Report', depends_on: ['checkout', 'deploy'] },
        ],
      },
    });
    expect(created.status).toBe(201);
    const workflow = (await created.json()) as { id: string; warnings: string[] };
    expect(workflow.warnings).toEqual([
      `Step "checkout" needs capability "${nobody}", which no registered agent serves: its task will wait in TODO until an agent with it is registered (POST /api/agents).`,
      `Step "deploy" needs capability "${revoked}", which no registered agent serves: its task will wait in TODO until an agent with it is registered (POST /api/agents).`,
    ]);
    expect(lines.find((l) => l.msg === 'workflow created with warnings')?.warnings).toEqual(
      workflow.warnings,
    );

    const triggered = await p.call('POST', `/api/workflows/${workflow.id}/trigger`, { auth: admin });
    expect(triggered.status).toBe(201);
    const run = (await triggered.json()) as { run_id: string; status: string; warnings: string[] };
    expect(run.status).toBe('RUNNING');
    expect(run.warnings).toEqual(workflow.warnings);
    expect(lines.find((l) => l.msg === 'workflow run started with warnings')?.warnings).toEqual(run.warnings);
    const detail = (await (
      await p.call('GET', `/api/workflow-runs/${run.run_id}`, { auth: admin })
    ).json()) as {
      steps: { step_key: string; status: string }[];
    };
    expect(detail.steps.find((s) => s.step_key === 'checkout')?.status).toBe('TODO');

    // Once agents serve them, the same workflow triggers without a word.
    await p.registerAgent([nobody, revoked]);
    const quiet = (await (
      await p.call('POST', `/api/workflows/${workflow.id}/trigger`, { auth: admin })
    ).json()) as { warnings: string[] };
    expect(quiet.warnings).toEqual([]);
  });
});
