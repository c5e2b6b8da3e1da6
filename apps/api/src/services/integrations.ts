import type { Integration, Integrations } from '@devart/contracts';
import { type Db, deliveryHealth } from '@devart/db';

/** What this process knows of one integration; `settings` never holds a secret. */
export interface IntegrationInfo {
  name: string;
  configured: boolean;
  settings: Integration['settings'];
  /** Its channels in the delivery outbox (`deliveries.channel`). */
  channels: readonly string[];
}

const iso = (date: Date | null) => (date ? date.toISOString() : null);

/**
 * GET /api/integrations: each integration as this process has it configured, with the delivery
 * health of its channels as the database knows it (every replica's sends). A channel no process
 * has announced yet shows an empty backlog and no dates.
 */
export async function integrationsReport(db: Db, infos: readonly IntegrationInfo[]): Promise<Integrations> {
  const health = new Map((await deliveryHealth(db)).map((h) => [h.channel, h]));
  return {
    items: infos.map((info) => ({
      name: info.name,
      configured: info.configured,
      settings: info.settings,
      deliveries: info.channels.map((channel) => {
        const h = health.get(channel);
        return {
          channel,
          backlog: h?.backlog ?? 0,
          oldest_pending_seconds: h?.oldest_pending_seconds ?? null,
          failed: h?.failed ?? 0,
          last_success_at: iso(h?.last_success_at ?? null),
          last_error: h?.last_error ?? null,
          last_error_at: iso(h?.last_error_at ?? null),
          seen_at: iso(h?.seen_at ?? null),
        };
      }),
    })),
  };
}
