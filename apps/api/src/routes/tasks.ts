import { CreateTaskBody, Task, TaskIdParams, TaskListQuery, TaskPage } from '@devart/contracts';
import type { Db } from '@devart/db';
import { createRoute } from '@hono/zod-openapi';
import { authorize, currentUser } from '../middleware/auth';
import { cancelTaskById, createTask, findTask, listTaskPage } from '../services/tasks';
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

  return router;
}
