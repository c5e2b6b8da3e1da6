/**
 * GitHub triggers of workflows, pure: what a delivery says (its context, as templates read it under
 * `{{vars.github.…}}`), whether a workflow's trigger matches it, and the definition rules that come
 * with declaring one. No I/O; the webhook service (github-webhooks.ts) calls these.
 */
import {
  defaultPullRequestActions,
  type GithubTrigger,
  type WorkflowDefinitionBody,
} from '@devart/contracts';
import { z } from 'zod';
import { escapeUnstorable } from '../middleware/json-text';
import type { FieldError } from './domain-errors';

/** The variable a GitHub-started run carries the delivery in; reserved in workflows that declare GitHub triggers. */
export const GITHUB_VARIABLE = 'github';

/** What a run started by a delivery knows about it: `trigger_context.github`, `{{vars.github.<field>}}` in templates. */
export interface GithubContext {
  event: 'pull_request' | 'push';
  /** pull_request: the action (opened, synchronize…); push: null. */
  action: string | null;
  delivery_id: string;
  /** owner/name as GitHub spells it. */
  repository: string;
  repository_url: string | null;
  /** The ref the run is about: the pushed ref, or refs/pull/<number>/head (fetchable from the base repository, forks included). */
  ref: string;
  /** The pushed branch or the pull request's head branch; null for a tag push. */
  branch: string | null;
  /** pull_request: the branch it would merge into; push: null. */
  base_branch: string | null;
  /** The commit the run checks (the pull request's head, or the push's after). */
  head_sha: string;
  pull_request: { number: number; title: string; url: string; draft: boolean; author: string | null } | null;
  /** Who caused the delivery (login). */
  sender: string | null;
}

// PostgreSQL's jsonb holds neither NUL nor unpaired surrogates: a title carrying one is stored escaped.
const Text = z.string().transform(escapeUnstorable);

// Only the fields read here; GitHub sends many more, and a field it adds changes nothing.
const Repository = z.looseObject({ full_name: Text.pipe(z.string().min(1)), html_url: Text.nullish() });
const Sender = z.looseObject({ login: Text }).nullish();
const PullRequestPayload = z.looseObject({
  action: Text,
  repository: Repository,
  sender: Sender,
  pull_request: z.looseObject({
    number: z.int(),
    title: Text,
    html_url: Text,
    draft: z.boolean().nullish(),
    user: z.looseObject({ login: Text }).nullish(),
    head: z.looseObject({ ref: Text, sha: Text }),
    base: z.looseObject({ ref: Text }),
  }),
});
const PushPayload = z.looseObject({
  ref: Text,
  after: Text,
  deleted: z.boolean().nullish(),
  repository: Repository,
  sender: Sender,
});

/** Why a delivery starts nothing before any workflow is looked at. */
export type DeliveryReading =
  | { startable: true; context: GithubContext }
  | { startable: false; reason: string; action: string | null; repository: string | null };

const refPrefix = 'refs/heads/';

/**
 * Reads a delivery into the context a run gets, or says why it can start nothing (an event no
 * trigger names, a branch deletion, a payload without the fields these events carry).
 * @example readDelivery('push', 'd-1', payload) // { startable: true, context: { event: 'push', ref: 'refs/heads/main', … } }
 */
export function readDelivery(event: string, deliveryId: string, payload: unknown): DeliveryReading {
  const loose = payload as { action?: unknown; repository?: { full_name?: unknown } } | null;
  const action = typeof loose?.action === 'string' ? loose.action : null;
  const repository = typeof loose?.repository?.full_name === 'string' ? loose.repository.full_name : null;
  const refuse = (reason: string): DeliveryReading => ({ startable: false, reason, action, repository });
  if (event === 'pull_request') {
    const parsed = PullRequestPayload.safeParse(payload);
    if (!parsed.success) return refuse('the pull_request payload lacks the fields it should have');
    const { pull_request: pr, ...p } = parsed.data;
    return {
      startable: true,
      context: {
        event,
        action: p.action,
        delivery_id: deliveryId,
        repository: p.repository.full_name,
        repository_url: p.repository.html_url ?? null,
        ref: `refs/pull/${pr.number}/head`,
        branch: pr.head.ref,
        base_branch: pr.base.ref,
        head_sha: pr.head.sha,
        pull_request: {
          number: pr.number,
          title: pr.title,
          url: pr.html_url,
          draft: pr.draft ?? false,
          author: pr.user?.login ?? null,
        },
        sender: p.sender?.login ?? null,
      },
    };
  }
  if (event === 'push') {
    const parsed = PushPayload.safeParse(payload);
    if (!parsed.success) return refuse('the push payload lacks the fields it should have');
    const p = parsed.data;
    // A deleted branch has no commit to run on (after is all zeros).
    if (p.deleted || /^0+$/.test(p.after)) return refuse('the push deleted a ref');
    return {
      startable: true,
      context: {
        event,
        action: null,
        delivery_id: deliveryId,
        repository: p.repository.full_name,
        repository_url: p.repository.html_url ?? null,
        ref: p.ref,
        branch: p.ref.startsWith(refPrefix) ? p.ref.slice(refPrefix.length) : null,
        base_branch: null,
        head_sha: p.after,
        pull_request: null,
        sender: p.sender?.login ?? null,
      },
    };
  }
  return refuse(`no trigger takes "${event}" events (only pull_request and push)`);
}

/**
 * Whether a branch name matches a trigger's pattern: `*` matches within one path segment (not
 * `/`), `**` matches anything, everything else matches itself.
 * @example branchMatches('release/*', 'release/1.2') // true
 */
export function branchMatches(pattern: string, branch: string): boolean {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (ch === '*') source += '[^/]*';
    else source += ch.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`).test(branch);
}

/**
 * Whether one trigger answers this delivery: same event, same repository (GitHub's names ignore
 * case), one of its actions (pull_request; default opened, synchronize, reopened), and one of its
 * branches when it names some (the pushed branch, or the pull request's base).
 */
export function triggerMatches(trigger: GithubTrigger, context: GithubContext): boolean {
  if (trigger.event !== context.event) return false;
  if (trigger.repository.toLowerCase() !== context.repository.toLowerCase()) return false;
  if (context.event === 'pull_request') {
    const actions: readonly string[] = trigger.actions ?? defaultPullRequestActions;
    if (!context.action || !actions.includes(context.action)) return false;
  }
  if (trigger.branches) {
    const branch = context.event === 'pull_request' ? context.base_branch : context.branch;
    if (branch === null || !trigger.branches.some((pattern) => branchMatches(pattern, branch))) return false;
  }
  return true;
}

/** The GitHub triggers of a stored definition (or a body), skipping anything that is not one. */
export function githubTriggersOf(definition: unknown): GithubTrigger[] {
  const triggers = (definition as { triggers?: unknown } | null)?.triggers;
  if (!Array.isArray(triggers)) return [];
  return triggers
    .map((t) => (t as { github?: GithubTrigger } | null)?.github)
    .filter((t): t is GithubTrigger => typeof t === 'object' && t !== null);
}

/** The first of a definition's triggers that answers this delivery, if any: it decides check run and comment. */
export function matchingTrigger(definition: unknown, context: GithubContext): GithubTrigger | undefined {
  return githubTriggersOf(definition).find((trigger) => triggerMatches(trigger, context));
}

/**
 * The definition as its templates are checked: a workflow with GitHub triggers has the variable
 * `github` (an object, filled by the delivery) without declaring it.
 */
export function withGithubVariable(body: WorkflowDefinitionBody): WorkflowDefinitionBody {
  if (githubTriggersOf(body).length === 0) return body;
  return { ...body, variables: { ...body.variables, [GITHUB_VARIABLE]: { type: 'object' } } };
}

/**
 * What a workflow with GitHub triggers may not have: a variable of its own named `github`, or a
 * required variable without a default (a delivery gives no variables, so its runs could never start).
 */
export function githubTriggerProblems(body: WorkflowDefinitionBody): FieldError[] {
  if (githubTriggersOf(body).length === 0) return [];
  const problems: FieldError[] = [];
  for (const [name, declaration] of Object.entries(body.variables ?? {})) {
    if (name === GITHUB_VARIABLE)
      problems.push({
        location: 'body',
        field: `variables.${name}`,
        message:
          'is reserved in a workflow with GitHub triggers: its runs read the delivery as {{vars.github.…}}',
      });
    else if (declaration.required && declaration.default === undefined)
      problems.push({
        location: 'body',
        field: `variables.${name}`,
        message:
          'is required without a default, but a GitHub delivery gives no variables: add a default or make it optional',
      });
  }
  return problems;
}
