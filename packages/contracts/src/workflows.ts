import { z } from 'zod';
import { Capability, DateTime, JsonObject, queryInt, Slug, Uuid } from './common';
import { WorkflowNotify } from './integrations';
import { RetryBackoff } from './tasks';

/** A step's key: what `depends_on` and `{{steps.<key>.result}}` name it by. */
export const StepKey = Slug.meta({ example: 'lint' });

/** A workflow variable's name, as `{{vars.<name>}}` refers to it. */
export const VariableName = z
  .string()
  .regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/, {
    error: 'must be an identifier (letters, digits, "_"; not starting with a digit; at most 64 characters)',
  })
  .meta({ example: 'branch' });

export const WorkflowVariableType = z.enum(['string', 'number', 'boolean', 'object', 'array']);
export type WorkflowVariableType = z.infer<typeof WorkflowVariableType>;

// zod's records skip a "__proto__" key without a word (it would set the prototype); name it instead.
const refuseProtoKey = (value: unknown, ctx: z.core.$RefinementCtx) => {
  if (value && typeof value === 'object' && Object.hasOwn(value, '__proto__')) {
    ctx.addIssue({
      code: 'custom',
      path: ['__proto__'],
      message: 'is reserved and cannot name a variable',
      input: value,
    });
  }
  return value;
};

export const WorkflowVariable = z
  .strictObject({
    type: WorkflowVariableType,
    required: z
      .boolean()
      .optional()
      .meta({ description: 'A trigger without it (and without a default) is refused.' }),
    default: z.unknown().optional().meta({ description: 'Used when the trigger does not give it.' }),
    description: z.string().max(2000).optional(),
  })
  .meta({ id: 'WorkflowVariable' });
export type WorkflowVariable = z.infer<typeof WorkflowVariable>;

export const WorkflowStep = z
  .strictObject({
    key: StepKey,
    title: z.string().trim().min(1).max(500),
    capability: Capability.optional(),
    payload: JsonObject.default({}).meta({
      description:
        'Input for the agent. Strings may hold templates: {{vars.<name>}} and ' +
        '{{steps.<key>.result.<path>}} (the step must be upstream). A string that is exactly one ' +
        'template takes the value with its JSON type; otherwise the value is interpolated as text.',
    }),
    depends_on: z
      .array(StepKey)
      .max(200)
      .default([])
      .meta({ description: 'Keys of the steps that must be DONE before this one starts.' }),
    max_retries: z.int().min(0).max(100).optional().meta({
      description: 'Retries after the first attempt (default 3): a step runs at most max_retries + 1 times.',
    }),
    retry_backoff: RetryBackoff.optional(),
  })
  .meta({ id: 'WorkflowStep' });
export type WorkflowStep = z.infer<typeof WorkflowStep>;

/** The pull_request actions GitHub sends; a trigger naming another is refused rather than never matching. */
export const githubPullRequestActions = [
  'assigned',
  'auto_merge_disabled',
  'auto_merge_enabled',
  'closed',
  'converted_to_draft',
  'demilestoned',
  'dequeued',
  'edited',
  'enqueued',
  'labeled',
  'locked',
  'milestoned',
  'opened',
  'ready_for_review',
  'reopened',
  'review_request_removed',
  'review_requested',
  'synchronize',
  'unassigned',
  'unlabeled',
  'unlocked',
] as const;

/** What a pull_request trigger without `actions` answers to, as GitHub Actions does. */
export const defaultPullRequestActions = ['opened', 'synchronize', 'reopened'] as const;

/**
 * A GitHub delivery that starts the workflow (POST /api/webhooks/github). `branches` filters the
 * pushed branch (push) or the pull request's base branch (pull_request); `*` matches within one
 * path segment, `**` across segments.
 */
export const GithubTrigger = z
  .strictObject({
    event: z.enum(['pull_request', 'push']),
    repository: z
      .string()
      .regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/, {
        error: 'must be "owner/name", as GitHub spells the repository',
      })
      .meta({ example: 'acme/app', description: 'owner/name; compared without regard to case.' }),
    actions: z
      .array(z.enum(githubPullRequestActions))
      .min(1)
      .max(githubPullRequestActions.length)
      .optional()
      .meta({
        description: `pull_request only: the actions that start it (default ${defaultPullRequestActions.join(', ')}).`,
      }),
    branches: z
      .array(
        z
          .string()
          .min(1)
          .max(255)
          .regex(/^[^\s~^:?[\\]+$/, { error: 'must be a branch name or pattern (* and ** allowed)' }),
      )
      .min(1)
      .max(50)
      .optional()
      .meta({
        example: ['main', 'release/*'],
        description: 'Pushed branch (push) or base branch (pull_request); unset = any.',
      }),
    check_run: z.boolean().optional().meta({
      description:
        'Report the run as a check run "devart: <workflow>" on the commit (default true; needs the GitHub App).',
    }),
    comment: z.boolean().optional().meta({
      description:
        'pull_request only: also comment the outcome on the pull request (default false; needs the GitHub App).',
    }),
  })
  .superRefine((trigger, ctx) => {
    if (trigger.event !== 'pull_request') {
      for (const key of ['actions', 'comment'] as const)
        if (trigger[key] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `applies to pull_request triggers only (this one is ${trigger.event})`,
            input: trigger[key],
          });
    }
  })
  .meta({ id: 'GithubTrigger' });
export type GithubTrigger = z.infer<typeof GithubTrigger>;

/** What starts a workflow besides POST /api/workflows/{id}/trigger. */
export const WorkflowTrigger = z.strictObject({ github: GithubTrigger }).meta({ id: 'WorkflowTrigger' });
export type WorkflowTrigger = z.infer<typeof WorkflowTrigger>;

export const WorkflowDefinitionBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    description: z.string().max(4000).optional(),
    variables: z
      .preprocess(refuseProtoKey, z.record(VariableName, WorkflowVariable))
      .optional()
      .meta({ description: 'Variables a trigger may (or must) give, by name.' }),
    steps: z.array(WorkflowStep).min(1).max(200),
    triggers: z.array(WorkflowTrigger).max(20).optional().meta({
      description:
        'Deliveries that start a run by themselves; a GitHub-started run reads the delivery as {{vars.github.…}}.',
    }),
    notify: WorkflowNotify.optional().meta({
      description:
        'Notifications of its runs (Telegram): on_failure (default true) for a failed run or a quarantined step, on_complete (default false) for a completed run.',
    }),
  })
  .meta({ id: 'WorkflowDefinitionBody' });
export type WorkflowDefinitionBody = z.infer<typeof WorkflowDefinitionBody>;

/** Why a definition or a run may not go as its author expects, without refusing it. */
export const WorkflowWarnings = z.array(z.string()).meta({
  description:
    'Things that will not go as expected, for instance a step whose capability no registered agent serves ' +
    '(its task waits in TODO until one is registered). Empty when there are none.',
});

export const Workflow = z
  .object({
    id: z.guid(),
    name: z.string(),
    description: z.string().nullable(),
    definition: z.unknown().meta({
      description: '{ variables?, steps, triggers? }: the body that created it, less name and description.',
    }),
    created_by: z.guid().nullable(),
    created_at: z.string(),
    marketplace_item_id: z
      .guid()
      .nullable()
      .meta({ description: 'The marketplace item it was installed from, if any.' }),
  })
  .meta({ id: 'Workflow' });
export type Workflow = z.infer<typeof Workflow>;

/** What POST /api/workflows answers: the workflow, and what may not go as expected when it runs. */
export const CreatedWorkflow = Workflow.extend({ warnings: WorkflowWarnings }).meta({
  id: 'CreatedWorkflow',
});
export type CreatedWorkflow = z.infer<typeof CreatedWorkflow>;

export const WorkflowPage = z
  .object({ items: z.array(Workflow), next_cursor: z.string().nullable() })
  .meta({ id: 'WorkflowPage' });
export type WorkflowPage = z.infer<typeof WorkflowPage>;

export const WorkflowListQuery = z.strictObject({
  cursor: z.string().max(200).optional(),
  limit: queryInt({ min: 1, max: 200 }).default(50),
});

export const WorkflowIdParams = z.strictObject({ workflowId: Uuid });

export const TriggerWorkflowBody = z
  .strictObject({
    variables: JsonObject.optional().meta({ description: 'Values of the declared variables.' }),
  })
  .meta({ id: 'TriggerWorkflowBody' });

/** Workflow run states; packages/db types its rows with it (the column has no CHECK). */
export const workflowRunStatusValues = ['RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export const WorkflowRunStatus = z.enum(workflowRunStatusValues);
export type WorkflowRunStatus = z.infer<typeof WorkflowRunStatus>;

export const TriggeredRun = z
  .object({ run_id: z.guid(), status: WorkflowRunStatus, warnings: WorkflowWarnings })
  .meta({ id: 'TriggeredRun' });

export const WorkflowRun = z
  .looseObject({
    id: z.guid(),
    workflow_id: z.guid(),
    status: WorkflowRunStatus,
    trigger_context: z.unknown(),
    start_time: z.string(),
    end_time: z.string().nullable(),
    duration_ms: z.number().nullable(),
    total_cost: z
      .string()
      .nullable()
      .meta({ description: 'Exact sum of the steps’ costs, as a decimal string.' }),
  })
  .meta({ id: 'WorkflowRun' });
export type WorkflowRun = z.infer<typeof WorkflowRun>;

/** One step of a run as GET /api/workflow-runs/{runId} shows it: its task, timing and cost. */
export const WorkflowRunStep = z
  .object({
    task_id: z.guid(),
    step_key: z.string(),
    title: z.string(),
    status: z
      .string()
      .meta({ description: 'The step task’s status (PENDING until its dependencies are DONE).' }),
    attempts: z.int(),
    retry_count: z.int(),
    started_at: z.string().nullable(),
    completed_at: z.string().nullable(),
    duration_ms: z
      .number()
      .nullable()
      .meta({ description: 'started_at → completed_at; null until it completed.' }),
    cost: z.string().nullable(),
    last_error: z.string().nullable(),
  })
  .meta({ id: 'WorkflowRunStep' });
export type WorkflowRunStep = z.infer<typeof WorkflowRunStep>;

export const WorkflowRunDetail = WorkflowRun.extend({
  steps: z.array(WorkflowRunStep).meta({ description: 'In the order the definition lists them.' }),
}).meta({ id: 'WorkflowRunDetail' });
export type WorkflowRunDetail = z.infer<typeof WorkflowRunDetail>;

export const WorkflowRunPage = z
  .object({ items: z.array(WorkflowRun), next_cursor: z.string().nullable() })
  .meta({ id: 'WorkflowRunPage' });
export type WorkflowRunPage = z.infer<typeof WorkflowRunPage>;

export const WorkflowRunListQuery = z.strictObject({
  status: WorkflowRunStatus.optional(),
  cursor: z.string().max(200).optional(),
  limit: queryInt({ min: 1, max: 200 }).default(50),
});

export const RunIdParams = z.strictObject({ runId: Uuid });

/** The width of one point of a workflow's statistics over time. */
export const StatsBucket = z.enum(['minute', 'hour', 'day']);
export type StatsBucket = z.infer<typeof StatsBucket>;

export const WorkflowStatsQuery = z.strictObject({
  since: DateTime.optional().meta({
    description: 'Runs started at or after this time (default: all); 1970 to 9999.',
  }),
  bucket: StatsBucket.default('day').meta({
    description: 'Width of the points of over_time (UTC): minute, hour or day (default).',
  }),
});

/** One point of over_time: the runs that started in [start, start + bucket). */
export const WorkflowStatsPoint = z
  .object({
    start: z.string(),
    runs: z.int(),
    completed: z.int(),
    failed: z.int(),
    cancelled: z.int(),
    duration_ms: z
      .object({ p50: z.number().nullable(), p95: z.number().nullable() })
      .meta({ description: 'Over COMPLETED runs (percentile_cont).' }),
    cost: z
      .object({ p50: z.string().nullable(), p95: z.string().nullable(), total: z.string().nullable() })
      .meta({
        description:
          'p50/p95 over COMPLETED runs (percentile_disc: a real run’s exact cost), total over every run; exact decimals.',
      }),
  })
  .meta({ id: 'WorkflowStatsPoint' });
export type WorkflowStatsPoint = z.infer<typeof WorkflowStatsPoint>;

export const WorkflowStats = z
  .object({
    runs: z.int(),
    completed: z.int(),
    failed: z.int(),
    cancelled: z.int(),
    running: z.int(),
    success_rate: z.number().nullable().meta({ description: 'completed / finished runs' }),
    duration_ms: z.object({ p50: z.number().nullable(), p95: z.number().nullable() }),
    cost: z.object({ mean: z.string().nullable(), total: z.string().nullable() }),
    steps: z.array(
      z.object({
        key: z.string(),
        p50_duration_ms: z.number().nullable(),
        failure_rate: z.number().nullable(),
        mean_retries: z.number().nullable(),
      }),
    ),
    over_time: z.object({ bucket: StatsBucket, points: z.array(WorkflowStatsPoint) }).meta({
      description:
        'The same runs by start time, oldest first; only buckets with runs, at most the newest 500.',
    }),
  })
  .meta({ id: 'WorkflowStats' });
export type WorkflowStats = z.infer<typeof WorkflowStats>;
