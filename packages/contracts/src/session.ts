import { z } from 'zod';

/**
 * Who the caller is, as GET /api/me answers: the console shows it in its header and signs out when
 * `expires_at` passes. An agent key is answered too (kind `agent`), so a key pasted into the
 * sign-in page is told apart from a broken token.
 */
export const Session = z
  .discriminatedUnion('kind', [
    z.object({
      kind: z.literal('user'),
      subject: z.string().meta({ description: 'The token’s `sub`.' }),
      email: z.string().nullable(),
      role: z.enum(['viewer', 'supervisor', 'admin']),
      expires_at: z.string().nullable().meta({ description: 'The token’s `exp`; null when it has none.' }),
    }),
    z.object({
      kind: z.literal('agent'),
      agent_id: z.string(),
      name: z.string(),
    }),
  ])
  .meta({ id: 'Session' });
export type Session = z.infer<typeof Session>;
