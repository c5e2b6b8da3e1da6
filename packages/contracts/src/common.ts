import { z } from 'zod';

/** Any 8-4-4-4-12 hex id, as PostgreSQL's uuid type accepts it. */
export const Uuid = z.guid({ error: 'must be a UUID' });

/** A lowercase slug: capabilities (they name queues) and step keys. */
export const Slug = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, {
  error: 'must be a lowercase slug (a-z, 0-9, "-", "_"; at most 64 characters)',
});

export const Capability = Slug.meta({ example: 'shell' });

/** A JSON object (not an array or a scalar). */
export const JsonObject = z.record(z.string(), z.unknown());

/** RFC 9457 problem details, as every error of the API is answered. */
export const Problem = z
  .object({
    type: z.string().meta({ example: 'urn:devart:problem:validation' }),
    title: z.string(),
    status: z.int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    errors: z
      .array(z.object({ location: z.string(), field: z.string(), message: z.string() }))
      .optional()
      .meta({ description: 'One entry per invalid field (validation problems only).' }),
  })
  .meta({ id: 'Problem' });
export type Problem = z.infer<typeof Problem>;
