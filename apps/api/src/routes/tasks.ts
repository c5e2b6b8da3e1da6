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
import { createRoute } from '@hono/zod-openapi';
import { authorize, currentUser } from '../middleware/auth';
import { requeueQuarantined, taskAttempts } from '../services/failures';
import { cancelTaskById, createTask, createTasks, findTask, listTaskPage } from '../services/tasks';
import { bearerAuth, conflict, createRouter, notFound, problemResponses } from './route-kit';

export function taskRoutes({ db }: { db: Db }) {
  const router = createRouter();
  const taskJson = { 'application/json': { schema: Task } };

  router.openapi(
    createRoute({
      method: 'post',
      path: '/api/tasks',
      tags: ['tasks'],
      summary: 'Create a task',
      'x-devart-action': 'tasks.create',
      security: bearerAuth,
      middleware: [authorize('tasks.create')],
      request: { body: { required: true, content: { 'application/json': { schema: CreateTaskBody } } } },
      responses: { 201: { description: 'Created', content: taskJson }, ...problemResponses },
    }),
    async (c) => {
      const task = await createTask(db, c.req.valid('json'), currentUser(c.get('auth')).sub);
      return c.json(task, 201);
    },
  );

  router.openapi(
    createRoute({
      method: 'post',
      path: '/api/tasks/batch',
      tags: ['tasks'],
      summary: 'Create up to 1,000 tasks in one transaction (all or none)',
      'x-devart-action': 'tasks.create',
      security: bearerAuth,
      middleware: [authorize('tasks.create')],
      request: { body: { required: true, content: { 'application/json': { schema: CreateTaskBatchBody } } } },
      responses: {
        201: {
          description: 'Created, in the order given',
          content: { 'application/json': { schema: TaskList } },
        },
        ...problemResponses,
      },
    }),
    async (c) => {
      const items = await createTasks(db, c.req.valid('json').tasks, currentUser(c.get('auth')).sub);
      return c.json({ items }, 201);
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/api/tasks',
      tags: ['tasks'],
      summary: 'List tasks, newest first, with cursor pagination',
      'x-devart-action': 'tasks.list',
      security: bearerAuth,
      middleware: [authorize('tasks.list')],
      request: { query: TaskListQuery },
      responses: {
        200: { description: 'A page of tasks', content: { 'application/json': { schema: TaskPage } } },
        ...problemResponses,
      },
    }),
    async (c) => c.json(await listTaskPage(db, c.req.valid('query')), 200),
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/api/tasks/{taskId}',
      tags: ['tasks'],
      summary: 'Get a task',
      'x-devart-action': 'tasks.read',
      security: bearerAuth,
      middleware: [authorize('tasks.read')],
      request: { params: TaskIdParams },
      responses: { 200: { description: 'The task', content: taskJson }, ...problemResponses, ...notFound },
    }),
    async (c) => c.json(await findTask(db, c.req.valid('param').taskId), 200),
  );

  router.openapi(
    createRoute({
      method: 'post',
      path: '/api/tasks/{taskId}/cancel',
      tags: ['tasks'],
      summary: 'Cancel a task that has not finished',
      'x-devart-action': 'tasks.cancel',
      security: bearerAuth,
      middleware: [authorize('tasks.cancel')],
      request: { params: TaskIdParams },
      responses: {
        200: { description: 'Cancelled', content: taskJson },
        ...problemResponses,
        ...notFound,
        ...conflict,
      },
    }),
    async (c) => c.json(await cancelTaskById(db, c.req.valid('param').taskId), 200),
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/api/tasks/{taskId}/attempts',
      tags: ['tasks'],
      summary: 'Every attempt of a task: agent, start, end, outcome, error',
      'x-devart-action': 'tasks.read',
      security: bearerAuth,
      middleware: [authorize('tasks.read')],
      request: { params: TaskIdParams },
      responses: {
        200: {
          description: 'Attempts, oldest first',
          content: { 'application/json': { schema: TaskAttemptList } },
        },
        ...problemResponses,
        ...notFound,
      },
    }),
    async (c) => c.json({ items: await taskAttempts(db, c.req.valid('param').taskId) }, 200),
  );

  router.openapi(
    createRoute({
      method: 'post',
      path: '/api/tasks/{taskId}/requeue',
      tags: ['tasks'],
      summary:
        'Give a QUARANTINED task a fresh start: counters reset, history kept, optionally a new payload',
      'x-devart-action': 'tasks.requeue',
      security: bearerAuth,
      middleware: [authorize('tasks.requeue')],
      request: {
        params: TaskIdParams,
        body: { required: false, content: { 'application/json': { schema: RequeueTaskBody } } },
      },
      responses: {
        200: { description: 'Requeued', content: taskJson },
        ...problemResponses,
        ...notFound,
        ...conflict,
      },
    }),
    async (c) => {
      const body = (c.req.valid('json') ?? {}) as { payload?: Record<string, unknown> };
      return c.json(await requeueQuarantined(db, c.req.valid('param').taskId, body.payload), 200);
    },
  );

  return router;
}
