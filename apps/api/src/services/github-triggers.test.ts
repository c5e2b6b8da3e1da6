import { describe, expect, it } from 'vitest';
import { pullRequestPayload, pushPayload } from '../../../../test/github';
import { branchMatches, type GithubContext, readDelivery, triggerMatches } from './github-triggers';

function contextOf(event: string, payload: unknown): GithubContext {
  const reading = readDelivery(event, 'd-1', payload);
  if (!reading.startable) throw new Error(reading.reason);
  return reading.context;
}

describe('branchMatches', () => {
  it.each([
    ['main', 'main', true],
    ['main', 'main2', false],
    ['release/*', 'release/1.2', true],
    ['release/*', 'release/1.2/hotfix', false],
    ['release/**', 'release/1.2/hotfix', true],
    ['*', 'feature/x', false],
    ['**', 'feature/x', true],
    ['v1.0', 'v1x0', false],
    ['feat+(x)', 'feat+(x)', true],
  ])('%s against %s is %s', (pattern, branch, expected) => {
    expect(branchMatches(pattern, branch)).toBe(expected);
  });
});

describe('readDelivery', () => {
  it('reads a pull request into the run context', () => {
    expect(contextOf('pull_request', pullRequestPayload({ number: 9, action: 'synchronize' }))).toMatchObject(
      {
        event: 'pull_request',
        action: 'synchronize',
        ref: 'refs/pull/9/head',
        branch: 'feature/thing',
        base_branch: 'main',
        pull_request: { number: 9, url: 'https://github.com/acme/app/pull/9' },
      },
    );
  });

  it('reads a push: the branch, or none for a tag', () => {
    expect(contextOf('push', pushPayload({ ref: 'refs/heads/release/2' })).branch).toBe('release/2');
    expect(contextOf('push', pushPayload({ ref: 'refs/tags/v2' })).branch).toBeNull();
  });

  it('says why a delivery can start nothing', () => {
    expect(readDelivery('push', 'd', pushPayload({ deleted: true, after: '0'.repeat(40) }))).toMatchObject({
      startable: false,
      reason: 'the push deleted a ref',
      repository: 'acme/app',
    });
    expect(readDelivery('pull_request', 'd', { action: 'opened' })).toMatchObject({
      startable: false,
      action: 'opened',
    });
    expect(readDelivery('release', 'd', null)).toMatchObject({
      startable: false,
      action: null,
      repository: null,
    });
  });

  it('keeps text PostgreSQL cannot store, escaped', () => {
    const context = contextOf('pull_request', pullRequestPayload({ title: 'bad\u0000title\ud800' }));
    expect(context.pull_request!.title).toBe('bad\\u0000title\\ud800');
  });
});

describe('triggerMatches', () => {
  const pr = contextOf('pull_request', pullRequestPayload({ baseRef: 'develop' }));

  it('answers the event, repository (any case), actions and base branch it names', () => {
    expect(triggerMatches({ event: 'pull_request', repository: 'ACME/App' }, pr)).toBe(true);
    expect(triggerMatches({ event: 'push', repository: 'acme/app' }, pr)).toBe(false);
    expect(triggerMatches({ event: 'pull_request', repository: 'acme/other' }, pr)).toBe(false);
    expect(triggerMatches({ event: 'pull_request', repository: 'acme/app', actions: ['closed'] }, pr)).toBe(
      false,
    );
    expect(triggerMatches({ event: 'pull_request', repository: 'acme/app', branches: ['main'] }, pr)).toBe(
      false,
    );
    expect(triggerMatches({ event: 'pull_request', repository: 'acme/app', branches: ['dev*'] }, pr)).toBe(
      true,
    );
  });

  it('gives a tag push to triggers without branches only', () => {
    const tag = contextOf('push', pushPayload({ ref: 'refs/tags/v1' }));
    expect(triggerMatches({ event: 'push', repository: 'acme/app' }, tag)).toBe(true);
    expect(triggerMatches({ event: 'push', repository: 'acme/app', branches: ['**'] }, tag)).toBe(false);
  });
});
