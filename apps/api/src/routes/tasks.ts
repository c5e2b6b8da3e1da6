import {
  CreateTaskBatchBody,
  CreateTaskBody,
  RequeueTaskBody,
  Task,
  TaskAttemptList,
  TaskIdParams,
  TaskList,
  TaskListQuery,
  TaskPage,
} from '@devart/contracts';
import type { Db } from '@devart/db';
import { currentUser } from '../middleware/auth';
import { requeueQuarantined, taskAttempts } from '../services/failures';
import { cancelTaskById, createTask, createTasks, findTask, listTaskPage } from '../services/tasks';
import { createRouter, protectedRoute } from './route-kit';

export function taskRoutes({ db }: { db: Db }) {
  const router = createRouter();
  const taskJson = { 'application/json': { schema: Task } };

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/tasks',
      tags: ['tasks'],
      summary: 'Create a task',
      action: 'tasks.create',
      request: { body: { required: true, content: { 'application/json': { schema: CreateTaskBody } } } },
      responses: { 201: { description: 'Created', content: taskJson } },
    }),
    async (c) => {
      const task = await createTask(db, c.req.valid('json'), currentUser(c.get('auth')).sub);
      return c.json(task, 201);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/tasks/batch',
      tags: ['tasks'],
      summary: 'Create up to 1,000 tasks in one transaction (all or none)',
      action: 'tasks.create',
      request: { body: { required: true, content: { 'application/json': { schema: CreateTaskBatchBody } } } },
      responses: {
        201: {
          description: 'Created, in the order given',
          content: { 'application/json': { schema: TaskList } },
        },
      },
    }),
    async (c) => {
      const items = await createTasks(db, c.req.valid('json').tasks, currentUser(c.get('auth')).sub);
      return c.json({ items }, 201);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/tasks',
      tags: ['tasks'],
      summary: 'List tasks, newest first, with cursor pagination',
      action: 'tasks.list',
      request: { query: TaskListQuery },
      responses: {
        200: { description: 'A page of tasks', content: { 'application/json': { schema: TaskPage } } },
      },
    }),
    async (c) => c.json(await listTaskPage(db, c.req.valid('query')), 200),
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/tasks/{taskId}',
      tags: ['tasks'],
      summary: 'Get a task',
      action: 'tasks.read',
      request: { params: TaskIdParams },
      responses: { 200: { description: 'The task', content: taskJson } },
      problems: [404],
    }),
    async (c) => c.json(await findTask(db, c.req.valid('param').taskId), 200),
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/tasks/{taskId}/cancel',
      tags: ['tasks'],
      summary: 'Cancel a task that has not finished',
      action: 'tasks.cancel',
      request: { params: TaskIdParams },
      responses: {
        200: { description: 'Cancelled', content: taskJson },
      },
      problems: [404, 409],
    }),
    async (c) => c.json(await cancelTaskById(db, c.req.valid('param').taskId), 200),
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/tasks/{taskId}/attempts',
      tags: ['tasks'],
      summary: 'Every attempt of a task: agent, start, end, outcome, error',
      action: 'tasks.read',
      request: { params: TaskIdParams },
      responses: {
        200: {
          description: 'Attempts, oldest first',
          content: { 'application/json': { schema: TaskAttemptList } },
        },
      },
      problems: [404],
    }),
    async (c) => c.json({ items: await taskAttempts(db, c.req.valid('param').taskId) }, 200),
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/tasks/{taskId}/requeue',
      tags: ['tasks'],
      summary:
        'Give a QUARANTINED task a fresh start: counters reset, history kept, optionally a new payload',
      action: 'tasks.requeue',
      request: {
        params: TaskIdParams,
        body: { required: false, content: { 'application/json': { schema: RequeueTaskBody } } },
      },
      responses: {
        200: { description: 'Requeued', content: taskJson },
      },
      problems: [404, 409],
    }),
    async (c) => {
      const body = (c.req.valid('json') ?? {}) as { payload?: Record<string, unknown> };
      return c.json(await requeueQuarantined(db, c.req.valid('param').taskId, body.payload), 200);
    },
  );

  return router;
}
