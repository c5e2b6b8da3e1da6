import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { countRows, expectProblem } from '../../../test/http';
import { MAX_BODY_BYTES } from './middleware/json-body';

let api: TestApi;
let supervisor: string;
let admin: string;
let rowsBefore: { tasks: number; agents: number };

beforeAll(async () => {
  api = await createTestApi();
  supervisor = await api.token('supervisor');
  admin = await api.token('admin');
  // Something to page through, so a bad query is refused rather than answered with an empty list.
  expect((await api.call('POST', '/api/tasks', { auth: supervisor, body: { title: 'seed' } })).status).toBe(
    201,
  );
});

afterAll(async () => {
  await api?.drop();
});

// Every request in this file is refused: none may leave a row behind.
beforeEach(async () => {
  rowsBefore = await countRows(api.db);
});
afterEach(async () => {
  expect(await countRows(api.db)).toEqual(rowsBefore);
});

/** Expects a 400 validation problem whose errors name exactly `fields` (in `location`) and whose detail names each. */
async function expectFieldErrors(res: Response, location: string, fields: string[]) {
  const problem = await expectProblem(res, 400, 'validation');
  expect(problem.errors?.map((e) => e.field).sort()).toEqual([...fields].sort());
  for (const error of problem.errors!) {
    expect(error.location).toBe(location);
    expect(error.message.length).toBeGreaterThan(0);
  }
  for (const field of fields) expect(problem.detail).toContain(`${location}.${field}`);
  return problem;
}

describe(`request validation on ${backend}`, () => {
  describe.each([
    ['/api/tasks', () => supervisor],
    ['/api/agents', () => admin],
  ])('POST %s', (path, auth) => {
    it('answers malformed JSON with 400 malformed_json', async () => {
      for (const body of ['{"title": "x"', '{title: x}', '', 'null null']) {
        const res = await api.call('POST', path, { auth: auth(), body });
        const problem = await expectProblem(res, 400, 'malformed_json');
        expect(problem.errors).toEqual([{ location: 'body', field: 'body', message: 'is not valid JSON' }]);
      }
    });

    it('answers a body over 1 MiB with 413, declared or not', async () => {
      const big = JSON.stringify({
        title: 'big',
        name: 'big',
        payload: { blob: 'x'.repeat(MAX_BODY_BYTES) },
      });
      const undeclared = await api.call('POST', path, { auth: auth(), body: big });
      expect((await expectProblem(undeclared, 413, 'payload_too_large')).detail).toContain(
        String(MAX_BODY_BYTES),
      );
      const declared = await api.call('POST', path, {
        auth: auth(),
        body: big,
        headers: { 'content-length': String(Buffer.byteLength(big)) },
      });
      await expectProblem(declared, 413, 'payload_too_large');
    });

    it('answers a non-JSON body with 415, whether its length is declared or not', async () => {
      for (const [type, body] of [
        ['text/plain', '{"title":"x","name":"x"}'],
        ['application/x-www-form-urlencoded', 'title=x&name=x'],
        [
          'multipart/form-data; boundary=b',
          '--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nx\r\n--b--',
        ],
      ]) {
        for (const headers of [
          { 'content-type': type! } as Record<string, string>,
          { 'content-type': type!, 'content-length': String(Buffer.byteLength(body!)) },
        ]) {
          const res = await api.call('POST', path, { auth: auth(), body, headers });
          const problem = await expectProblem(res, 415, 'unsupported_media_type');
          // Real HTTP clients always frame a body; the middleware then says what to send instead.
          if ('content-length' in headers) expect(problem.detail).toContain('application/json');
        }
      }
    });

    it('names unknown fields', async () => {
      const valid = path === '/api/tasks' ? { title: 'ok' } : { name: 'ok' };
      const res = await api.call('POST', path, {
        auth: auth(),
        body: { ...valid, colour: 'red', owner_id: 'me' },
      });
      await expectFieldErrors(res, 'body', ['colour', 'owner_id']);
    });

    it('refuses a JSON body that is not an object', async () => {
      for (const body of [[], 'a string', 42, null]) {
        const res = await api.call('POST', path, { auth: auth(), body: JSON.stringify(body) });
        await expectProblem(res, 400, 'validation');
      }
    });
  });

  describe('POST /api/tasks', () => {
    it('names every field of the wrong type or out of range', async () => {
      const res = await api.call('POST', '/api/tasks', {
        auth: supervisor,
        body: { title: 5, priority: 'high', max_retries: -1, capability: 'Bad Cap!', payload: [1, 2] },
      });
      await expectFieldErrors(res, 'body', ['title', 'priority', 'max_retries', 'capability', 'payload']);
    });

    it('names title when the body is empty or lacks it', async () => {
      for (const body of [undefined, {}, { description: 'no title' }, { title: '   ' }]) {
        const res = await api.call('POST', '/api/tasks', { auth: supervisor, body });
        await expectFieldErrors(res, 'body', ['title']);
      }
    });

    it('names the bounds it enforces', async () => {
      const res = await api.call('POST', '/api/tasks', {
        auth: supervisor,
        body: { title: 't'.repeat(501), priority: 1.5, max_retries: 101, description: 7 },
      });
      await expectFieldErrors(res, 'body', ['title', 'priority', 'max_retries', 'description']);
    });
  });

  describe('POST /api/agents', () => {
    it('names every field of the wrong type, down to the array item', async () => {
      const res = await api.call('POST', '/api/agents', {
        auth: admin,
        body: { name: 5, capabilities: ['shell', 'Bad Cap!'] },
      });
      await expectFieldErrors(res, 'body', ['name', 'capabilities[1]']);
    });

    it('names name when the body is empty or lacks it', async () => {
      for (const body of [undefined, {}, { capabilities: ['shell'] }, { name: '' }]) {
        const res = await api.call('POST', '/api/agents', { auth: admin, body });
        await expectFieldErrors(res, 'body', ['name']);
      }
    });

    it('refuses capabilities that are not an array', async () => {
      const res = await api.call('POST', '/api/agents', {
        auth: admin,
        body: { name: 'a', capabilities: 'shell' },
      });
      await expectFieldErrors(res, 'body', ['capabilities']);
    });
  });

  describe('path parameters', () => {
    it.each([
      ['GET', '/api/tasks/not-a-uuid', 'taskId', () => supervisor],
      ['GET', '/api/tasks/123', 'taskId', () => supervisor],
      ['POST', '/api/tasks/not-a-uuid/cancel', 'taskId', () => supervisor],
      ['DELETE', '/api/agents/not-a-uuid', 'agentId', () => admin],
      ['DELETE', "/api/agents/1'%20OR%20'1'='1", 'agentId', () => admin],
    ])('%s %s is refused naming %s', async (method, path, field, auth) => {
      const res = await api.call(method, path, { auth: auth() });
      await expectFieldErrors(res, 'path', [field]);
    });
  });

  describe('query parameters', () => {
    it.each([
      ['/api/tasks?limit=0', ['limit']],
      ['/api/tasks?limit=1000', ['limit']],
      ['/api/tasks?limit=abc', ['limit']],
      ['/api/tasks?status=NOPE', ['status']],
      ['/api/tasks?status=todo', ['status']],
      ['/api/tasks?sort=title', ['sort']],
      ['/api/tasks?cursor=garbage', ['cursor']],
      [`/api/tasks?cursor=${Buffer.from('["yesterday","x"]').toString('base64url')}`, ['cursor']],
      ['/api/tasks?capability=Bad%20Cap!', ['capability']],
      ['/api/tasks?workflow_run_id=nope', ['workflow_run_id']],
      ['/api/tasks?limit=0&status=NOPE&page=2', ['limit', 'status', 'page']],
      ['/api/agents?include_revoked=yes', ['include_revoked']],
      ['/api/agents?all=true', ['all']],
    ])('GET %s is refused naming %j', async (path, fields) => {
      const res = await api.call('GET', path, { auth: supervisor });
      await expectFieldErrors(res, 'query', fields);
    });

    it('accepts the bounds themselves', async () => {
      for (const path of [
        '/api/tasks?limit=1',
        '/api/tasks?limit=200',
        '/api/agents?include_revoked=false',
      ]) {
        expect((await api.call('GET', path, { auth: supervisor })).status, path).toBe(200);
      }
    });
  });
});
