import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, CreatedAgent, Task, TaskPage } from '@devart/contracts';
import { insertAgent, insertTasks } from '@devart/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { countRows, expectProblem } from '../../../test/http';
import { hashApiKey } from './auth/api-keys';

let api: TestApi;
let supervisor: string;
let viewer: string;
let admin: string;
const supervisorSub = randomUUID();

beforeAll(async () => {
  api = await createTestApi();
  supervisor = await api.token('supervisor', { sub: supervisorSub });
  viewer = await api.token('viewer');
  admin = await api.token('admin');
});

afterAll(async () => {
  await api?.drop();
});

async function createTask(body: Record<string, unknown>): Promise<Task> {
  const res = await api.call('POST', '/api/tasks', { auth: supervisor, body });
  expect(res.status, await res.clone().text()).toBe(201);
  return Task.parse(await res.json());
}

async function statusOf(taskId: string): Promise<string> {
  const { rows } = await api.db.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [taskId]);
  return rows[0]!.status;
}

async function agentStatus(agentId: string): Promise<string> {
  const { rows } = await api.db.query<{ status: string }>('SELECT status FROM agents WHERE id = $1', [
    agentId,
  ]);
  return rows[0]!.status;
}

/** A task IN_PROGRESS held by a BUSY agent, as `startTask` leaves it. */
async function taskInProgress(): Promise<{ taskId: string; agentId: string }> {
  const agent = await insertAgent(api.db, {
    name: 'worker',
    capabilities: ['shell'],
    apiKeyHash: randomBytes(32).toString('hex'),
    createdBy: null,
  });
  const [task] = await insertTasks(api.db, [
    { title: 'long job', capability: 'shell', created_by: supervisorSub },
  ]);
  await api.db.query(
    `WITH started AS (
       UPDATE tasks SET status = 'IN_PROGRESS', agent_id = $2, started_at = now() WHERE id = $1 RETURNING agent_id
     ) UPDATE agents SET status = 'BUSY' WHERE id IN (SELECT agent_id FROM started)`,
    [task!.id, agent.id],
  );
  return { taskId: task!.id, agentId: agent.id };
}

/** What an agent's `complete` does: one statement guarded on the state and the holder. Returns true when it won. */
async function completeTask(taskId: string, agentId: string): Promise<boolean> {
  const { rows } = await api.db.query<{ n: number }>(
    `WITH done AS (
       UPDATE tasks SET status = 'DONE', completed_at = now(), updated_at = now()
       WHERE id = $1 AND status = 'IN_PROGRESS' AND agent_id = $2 RETURNING agent_id
     ), freed AS (
       UPDATE agents SET status = 'IDLE' WHERE id IN (SELECT agent_id FROM done)
     ) SELECT count(*)::int AS n FROM done`,
    [taskId, agentId],
  );
  return rows[0]!.n === 1;
}

async function listAll(query: string, auth = viewer): Promise<Task[]> {
  const res = await api.call('GET', `/api/tasks?${query}`, { auth });
  expect(res.status).toBe(200);
  const page = TaskPage.parse(await res.json());
  expect(page.next_cursor).toBeNull();
  return page.items;
}

describe(`tasks over HTTP on ${backend}`, () => {
  it('creates a task with the documented defaults, owned by the token subject', async () => {
    const before = await countRows(api.db);
    const task = await createTask({ title: '  Deploy the staging stack  ' });
    expect(task).toMatchObject({
      title: 'Deploy the staging stack',
      description: null,
      capability: null,
      payload: {},
      priority: 0,
      status: 'TODO',
      agent_id: null,
      result: null,
      cost: null,
      retry_count: 0,
      max_retries: 3,
      last_error: null,
      workflow_run_id: null,
      created_by: supervisorSub,
      started_at: null,
      completed_at: null,
    });
    expect(await countRows(api.db)).toEqual({ ...before, tasks: before.tasks + 1 });
    const { rows } = await api.db.query<{ status: string; created_by: string; retry_count: number }>(
      'SELECT status, created_by, retry_count FROM tasks WHERE id = $1',
      [task.id],
    );
    expect(rows).toEqual([{ status: 'TODO', created_by: supervisorSub, retry_count: 0 }]);
  });

  it('keeps every field it is given', async () => {
    const task = await createTask({
      title: 'Rotate keys',
      description: 'All of them',
      capability: 'shell',
      payload: { hosts: ['a', 'b'], dry_run: true },
      priority: -5,
      max_retries: 0,
    });
    expect(task).toMatchObject({
      description: 'All of them',
      capability: 'shell',
      payload: { hosts: ['a', 'b'], dry_run: true },
      priority: -5,
      max_retries: 0,
    });
  });

  it('gets a task by id, the same as it was created', async () => {
    const created = await createTask({ title: 'Look me up' });
    const res = await api.call('GET', `/api/tasks/${created.id}`, { auth: viewer });
    expect(res.status).toBe(200);
    expect(Task.parse(await res.json())).toEqual(created);
  });

  it('answers 404 problem+json for a task that does not exist', async () => {
    const missing = randomUUID();
    const get = await expectProblem(
      await api.call('GET', `/api/tasks/${missing}`, { auth: viewer }),
      404,
      'not_found',
    );
    expect(get.detail).toContain(missing);
    const cancel = await api.call('POST', `/api/tasks/${missing}/cancel`, { auth: supervisor });
    expect((await expectProblem(cancel, 404, 'not_found')).detail).toContain(missing);
  });

  describe('listing', () => {
    it('filters by status, capability and workflow run', async () => {
      const a = await createTask({ title: 'filter a', capability: 'filter-a' });
      const b = await createTask({ title: 'filter b', capability: 'filter-b' });
      const quarantined = await createTask({ title: 'filter q', capability: 'filter-a' });
      await api.db.query("UPDATE tasks SET status = 'QUARANTINED' WHERE id = $1", [quarantined.id]);
      const { rows } = await api.db.query<{ id: string }>(
        `WITH w AS (INSERT INTO workflows (name) VALUES ('nightly') RETURNING id)
         INSERT INTO workflow_runs (workflow_id) SELECT id FROM w RETURNING id`,
      );
      const runId = rows[0]!.id;
      await api.db.query('UPDATE tasks SET workflow_run_id = $2 WHERE id = $1', [b.id, runId]);

      expect((await listAll('capability=filter-a')).map((t) => t.id).sort()).toEqual(
        [a.id, quarantined.id].sort(),
      );
      expect((await listAll('status=QUARANTINED')).map((t) => t.id)).toEqual([quarantined.id]);
      expect((await listAll('status=TODO&capability=filter-a')).map((t) => t.id)).toEqual([a.id]);
      const inRun = await listAll(`workflow_run_id=${runId}`);
      expect(inRun.map((t) => [t.id, t.workflow_run_id])).toEqual([[b.id, runId]]);
      expect(await listAll(`workflow_run_id=${randomUUID()}`)).toEqual([]);
      expect(await listAll('capability=nobody-has-this')).toEqual([]);
    });

    it('pages newest first through tasks created in one statement, each exactly once', async () => {
      const older = await insertTasks(
        api.db,
        Array.from({ length: 3 }, (_, i) => ({ title: `older ${i}`, created_by: supervisorSub })),
      );
      await api.db.query("UPDATE tasks SET created_at = created_at - interval '1 hour' WHERE id = ANY($1)", [
        older.map((t) => t.id),
      ]);
      const batch = await insertTasks(
        api.db,
        Array.from({ length: 25 }, (_, i) => ({ title: `batch ${i}`, created_by: supervisorSub })),
      );
      const { rows: stamps } = await api.db.query<{ n: number }>(
        'SELECT count(DISTINCT created_at)::int AS n FROM tasks WHERE id = ANY($1)',
        [batch.map((t) => t.id)],
      );
      // The batch shares one created_at, so only the id breaks ties between its rows.
      expect(stamps[0]!.n).toBe(1);

      const { rows: all } = await api.db.query<{ id: string; us: number }>(
        'SELECT id::text, (extract(epoch FROM created_at) * 1000000)::float8 AS us FROM tasks',
      );
      const newestFirst = all
        .sort((x, y) => y.us - x.us || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0))
        .map((row) => row.id);
      expect(newestFirst.length).toBeGreaterThanOrEqual(28);

      const pages: string[][] = [];
      let cursor: string | null = null;
      do {
        const query: string = cursor ? `limit=7&cursor=${encodeURIComponent(cursor)}` : 'limit=7';
        const res = await api.call('GET', `/api/tasks?${query}`, { auth: viewer });
        expect(res.status).toBe(200);
        const page = TaskPage.parse(await res.json());
        pages.push(page.items.map((t) => t.id));
        cursor = page.next_cursor;
        expect(pages.length).toBeLessThanOrEqual(Math.ceil(newestFirst.length / 7));
      } while (cursor);

      expect(pages.flat()).toEqual(newestFirst);
      expect(new Set(pages.flat()).size).toBe(newestFirst.length);
      expect(pages.slice(0, -1).every((page) => page.length === 7)).toBe(true);
      expect(pages.at(-1)!.length).toBe(newestFirst.length - 7 * (pages.length - 1));
      // The older tasks come after the whole batch.
      const order = pages.flat();
      expect(Math.min(...older.map((t) => order.indexOf(t.id)))).toBeGreaterThan(
        Math.max(...batch.map((t) => order.indexOf(t.id))),
      );
    });

    it('ends with a null cursor when the last page is exactly full', async () => {
      const cap = 'exact-pages';
      await insertTasks(
        api.db,
        Array.from({ length: 4 }, (_, i) => ({ title: `exact ${i}`, capability: cap, created_by: null })),
      );
      const first = TaskPage.parse(
        await (await api.call('GET', `/api/tasks?capability=${cap}&limit=2`, { auth: viewer })).json(),
      );
      expect(first.items).toHaveLength(2);
      expect(first.next_cursor).toEqual(expect.any(String));
      const second = TaskPage.parse(
        await (
          await api.call('GET', `/api/tasks?capability=${cap}&limit=2&cursor=${first.next_cursor}`, {
            auth: viewer,
          })
        ).json(),
      );
      expect(second.items).toHaveLength(2);
      expect(second.next_cursor).toBeNull();
      expect(new Set([...first.items, ...second.items].map((t) => t.id)).size).toBe(4);
    });
  });

  describe('cancelling', () => {
    it('cancels a TODO task, then refuses a second cancel with 409 naming the status', async () => {
      const task = await createTask({ title: 'cancel me' });
      const res = await api.call('POST', `/api/tasks/${task.id}/cancel`, { auth: supervisor });
      expect(res.status).toBe(200);
      const cancelled = Task.parse(await res.json());
      expect(cancelled).toMatchObject({ id: task.id, status: 'CANCELLED', agent_id: null });
      expect(cancelled.completed_at).not.toBeNull();
      expect(await statusOf(task.id)).toBe('CANCELLED');

      const again = await api.call('POST', `/api/tasks/${task.id}/cancel`, { auth: supervisor });
      const problem = await expectProblem(again, 409, 'conflict');
      expect(problem.detail).toContain('CANCELLED');
      expect(await statusOf(task.id)).toBe('CANCELLED');
    });

    it('refuses to cancel a DONE or QUARANTINED task and leaves it as it was', async () => {
      for (const status of ['DONE', 'QUARANTINED']) {
        const task = await createTask({ title: `finished ${status}` });
        await api.db.query('UPDATE tasks SET status = $2 WHERE id = $1', [task.id, status]);
        const res = await api.call('POST', `/api/tasks/${task.id}/cancel`, { auth: supervisor });
        expect((await expectProblem(res, 409, 'conflict')).detail).toContain(status);
        expect(await statusOf(task.id)).toBe(status);
      }
    });

    it('cancels an IN_PROGRESS task and sets the agent that held it back to IDLE', async () => {
      const { taskId, agentId } = await taskInProgress();
      expect(await agentStatus(agentId)).toBe('BUSY');
      const res = await api.call('POST', `/api/tasks/${taskId}/cancel`, { auth: supervisor });
      expect(res.status).toBe(200);
      expect(Task.parse(await res.json())).toMatchObject({ status: 'CANCELLED', agent_id: null });
      expect(await statusOf(taskId)).toBe('CANCELLED');
      expect(await agentStatus(agentId)).toBe('IDLE');
      // The agent lost the task: its late completion changes nothing.
      expect(await completeTask(taskId, agentId)).toBe(false);
      expect(await statusOf(taskId)).toBe('CANCELLED');
    });

    it('never reports a task that was completed at the same moment as cancelled', async () => {
      const outcomes = new Set<number>();
      // One side or the other is held back a little longer each time, so that the completion lands
      // before, during and after the cancel request's own statement.
      const delays = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55];
      const after = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
      for (let i = 0; i < 20; i++) {
        const { taskId, agentId } = await taskInProgress();
        const delay = delays[Math.floor(i / 2)]!;
        const [cancelDelay, completeDelay] = i % 2 === 0 ? [0, delay] : [delay, 0];
        const [res, completed] = await Promise.all([
          after(cancelDelay).then(() =>
            api.call('POST', `/api/tasks/${taskId}/cancel`, { auth: supervisor }),
          ),
          after(completeDelay).then(() => completeTask(taskId, agentId)),
        ]);
        const final = await statusOf(taskId);
        if (res.status === 200) {
          expect(Task.parse(await res.json()).status).toBe('CANCELLED');
          expect([final, completed]).toEqual(['CANCELLED', false]);
        } else {
          expect((await expectProblem(res, 409, 'conflict')).detail).toContain('DONE');
          expect([final, completed]).toEqual(['DONE', true]);
        }
        expect(await agentStatus(agentId)).toBe('IDLE');
        outcomes.add(res.status);
      }
      // Both sides won at least once: the race was really run.
      expect([...outcomes].sort()).toEqual([200, 409]);
    });
  });
});

describe(`agents over HTTP on ${backend}`, () => {
  async function register(name: string, capabilities: string[] = ['shell']) {
    const res = await api.call('POST', '/api/agents', { auth: admin, body: { name, capabilities } });
    expect(res.status).toBe(201);
    return CreatedAgent.parse(await res.json());
  }

  it('returns the API key once, at registration, and stores only its hash', async () => {
    const agent = await register('builder', ['shell', 'docker', 'shell']);
    expect(agent.api_key).toMatch(/^dva_[A-Za-z0-9_-]{43}$/);
    expect(agent).toMatchObject({ name: 'builder', capabilities: ['shell', 'docker'], status: 'IDLE' });
    const { rows } = await api.db.query<{ api_key_hash: string }>(
      'SELECT api_key_hash FROM agents WHERE id = $1',
      [agent.id],
    );
    expect(rows[0]!.api_key_hash).not.toBe(agent.api_key);
    expect(rows[0]!.api_key_hash).not.toContain(agent.api_key.slice(4));
    expect(rows[0]!.api_key_hash).toBe(hashApiKey(agent.api_key));

    const again = await api.call('GET', '/api/agents?include_revoked=true', { auth: admin });
    const text = await again.text();
    expect(text).toContain(agent.id);
    expect(text).not.toContain(agent.api_key);
    expect(text).not.toContain(rows[0]!.api_key_hash);
  });

  it('never lists api_key or api_key_hash', async () => {
    await register('lister');
    for (const query of ['', '?include_revoked=true']) {
      const res = await api.call('GET', `/api/agents${query}`, { auth: viewer });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { items: Record<string, unknown>[] };
      expect(body.items.length).toBeGreaterThan(0);
      for (const item of body.items) {
        expect(Object.keys(item)).not.toContain('api_key');
        expect(Object.keys(item)).not.toContain('api_key_hash');
        Agent.parse(item);
      }
    }
  });

  it('hides revoked agents unless include_revoked=true', async () => {
    const kept = await register('kept');
    const gone = await register('gone');
    expect((await api.call('DELETE', `/api/agents/${gone.id}`, { auth: admin })).status).toBe(204);
    const ids = async (query: string) =>
      (
        (await (await api.call('GET', `/api/agents${query}`, { auth: viewer })).json()) as { items: Agent[] }
      ).items.map((a) => a.id);
    expect(await ids('')).toContain(kept.id);
    expect(await ids('')).not.toContain(gone.id);
    expect(await ids('?include_revoked=false')).not.toContain(gone.id);
    expect(await ids('?include_revoked=true')).toEqual(expect.arrayContaining([kept.id, gone.id]));
  });

  it('answers 404 when revoking an agent that does not exist, and writes nothing', async () => {
    const before = await countRows(api.db);
    const missing = randomUUID();
    const res = await api.call('DELETE', `/api/agents/${missing}`, { auth: admin });
    expect((await expectProblem(res, 404, 'not_found')).detail).toContain(missing);
    expect(await countRows(api.db)).toEqual(before);
  });

  it('revokes idempotently: 204 both times, and the first revocation time is kept', async () => {
    const agent = await register('twice');
    const revokedAt = async () =>
      (
        await api.db.query<{ revoked_at: string | null; status: string }>(
          'SELECT revoked_at::text, status FROM agents WHERE id = $1',
          [agent.id],
        )
      ).rows[0]!;
    const first = await api.call('DELETE', `/api/agents/${agent.id}`, { auth: admin });
    expect(first.status).toBe(204);
    expect(await first.text()).toBe('');
    const afterFirst = await revokedAt();
    expect(afterFirst.revoked_at).not.toBeNull();
    expect(afterFirst.status).toBe('OFFLINE');
    const second = await api.call('DELETE', `/api/agents/${agent.id}`, { auth: admin });
    expect(second.status).toBe(204);
    expect(await revokedAt()).toEqual(afterFirst);
  });
});
