import {
  CreatedWorkflow,
  PublishMarketplaceItemBody,
  Workflow,
  WorkflowDefinitionBody,
  WorkflowExportQuery,
  WorkflowIdParams,
  WorkflowListQuery,
  WorkflowPage,
} from '@devart/contracts';
import type { Db } from '@devart/db';
import type { Logger } from 'pino';
import { currentUser } from '../middleware/auth';
import {
  capabilityWarnings,
  createWorkflow,
  exportWorkflow,
  findWorkflow,
  listWorkflowPage,
} from '../services/workflows';
import { createRouter, protectedRoute } from './route-kit';

export function workflowRoutes({ db, logger }: { db: Db; logger?: Logger }) {
  const router = createRouter();
  const workflowJson = { 'application/json': { schema: Workflow } };

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/workflows',
      tags: ['workflows'],
      summary: 'Define a workflow: steps with dependencies (a DAG) and templated payloads',
      description:
        'Refused with 400 naming the problem: a dependency cycle (named), unknown or duplicate step keys, ' +
        'templates that read a step that is not upstream, or variables that are not declared. ' +
        '`warnings` names each step whose capability no registered agent serves (the workflow is created anyway).',
      action: 'workflows.create',
      request: {
        body: { required: true, content: { 'application/json': { schema: WorkflowDefinitionBody } } },
      },
      responses: {
        201: { description: 'Created', content: { 'application/json': { schema: CreatedWorkflow } } },
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const workflow = await createWorkflow(db, body, currentUser(c.get('auth')).sub);
      const warnings = await capabilityWarnings(db, body.steps);
      if (warnings.length > 0)
        logger?.warn({ workflow_id: workflow.id, warnings }, 'workflow created with warnings');
      return c.json({ ...workflow, warnings }, 201);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/workflows',
      tags: ['workflows'],
      summary: 'List workflows, newest first, with cursor pagination',
      action: 'workflows.read',
      request: { query: WorkflowListQuery },
      responses: {
        200: {
          description: 'A page of workflows',
          content: { 'application/json': { schema: WorkflowPage } },
        },
      },
    }),
    async (c) => c.json(await listWorkflowPage(db, c.req.valid('query')), 200),
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/workflows/{workflowId}',
      tags: ['workflows'],
      summary: 'Get a workflow definition',
      action: 'workflows.read',
      request: { params: WorkflowIdParams },
      responses: {
        200: { description: 'The workflow', content: workflowJson },
      },
      problems: [404],
    }),
    async (c) => c.json(await findWorkflow(db, c.req.valid('param').workflowId), 200),
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/workflows/{workflowId}/export',
      tags: ['workflows'],
      summary: 'A workflow as the body of POST /api/marketplace that publishes it as-is',
      description:
        'The definition becomes the manifest (name and description included). The marketplace name defaults to ' +
        'the workflow’s name as a slug ("Release Check" → release-check) and the version to 1.0.0; ' +
        '?name= and ?version= set them.',
      action: 'workflows.read',
      request: { params: WorkflowIdParams, query: WorkflowExportQuery },
      responses: {
        200: {
          description: 'A publish body',
          content: { 'application/json': { schema: PublishMarketplaceItemBody } },
        },
      },
      problems: [404],
    }),
    async (c) => c.json(await exportWorkflow(db, c.req.valid('param').workflowId, c.req.valid('query')), 200),
  );

  return router;
}
