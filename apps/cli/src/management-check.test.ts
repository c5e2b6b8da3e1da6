import { describe, expect, it } from 'vitest';
import { managementApiProblem, maskedUrl } from './management-check';

const answering = (status: number, body: unknown) =>
  (async () => new Response(JSON.stringify(body), { status })) as unknown as typeof fetch;

describe('the start-up check of the RabbitMQ management API', () => {
  it('passes for an administrator, whichever way RabbitMQ lists the tags', async () => {
    for (const tags of [['administrator'], 'administrator', 'monitoring,administrator']) {
      expect(
        await managementApiProblem('http://a:b@rabbit:15672', 'RABBITMQ_MANAGEMENT_URL', {
          fetch: answering(200, { name: 'a', tags }),
        }),
      ).toBeUndefined();
    }
  });

  it('names the variable for refused credentials and for a user that is not an administrator', async () => {
    const refused = await managementApiProblem('http://a:b@rabbit:15672', 'derived from AMQP_URL', {
      fetch: answering(401, { error: 'not_authorised' }),
    });
    expect(refused).toMatch(
      /^The RabbitMQ management API at http:\/\/a:\*\*\*@rabbit:15672 \(derived from AMQP_URL\) refused/,
    );
    expect(refused).toContain('RABBITMQ_MANAGEMENT_URL');
    const monitoring = await managementApiProblem('http://a:b@rabbit:15672', 'RABBITMQ_MANAGEMENT_URL', {
      fetch: answering(200, { name: 'a', tags: ['monitoring'] }),
    });
    expect(monitoring).toMatch(/not tagged administrator/);
  });

  it('names the plugin when something else answers', async () => {
    const problem = await managementApiProblem('http://rabbit:5672', 'RABBITMQ_MANAGEMENT_URL', {
      fetch: answering(404, {}),
    });
    expect(problem).toMatch(/answered 404 to GET \/api\/whoami/);
    expect(problem).toContain('rabbitmq_management plugin');
  });

  it('masks the password of a URL', () => {
    expect(maskedUrl('http://admin:s3cret@rabbit:15672')).toBe('http://admin:***@rabbit:15672');
    expect(maskedUrl('http://rabbit:15672/')).toBe('http://rabbit:15672');
  });
});
