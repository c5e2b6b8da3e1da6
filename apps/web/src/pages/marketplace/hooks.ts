import type {
  InstallMarketplaceItemBody,
  MarketplaceInstall,
  MarketplaceItem,
  MarketplacePage,
  MarketplaceVersions,
  PublishMarketplaceItemBody,
} from '@devart/contracts';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../../lib/api';
import { queryKeys } from '../../lib/query-keys';
import { type MarketplaceFilters, searchQuery } from './filters';

/** A page of GET /api/marketplace for these filters; the previous page stays while the next loads. */
export function useMarketplaceSearch(filters: MarketplaceFilters, cursor?: string) {
  const query = searchQuery(filters, cursor);
  return useQuery({
    queryKey: [...queryKeys.marketplace, 'search', query],
    queryFn: ({ signal }) => api<MarketplacePage>('/api/marketplace', { query, signal }),
    placeholderData: keepPreviousData,
  });
}

export function useMarketplaceItem(id: string | null | undefined) {
  return useQuery({
    queryKey: [...queryKeys.marketplace, 'item', id],
    queryFn: ({ signal }) => api<MarketplaceItem>(`/api/marketplace/${encodeURIComponent(id!)}`, { signal }),
    enabled: Boolean(id),
  });
}

/** Every version of a name, newest first, yanked ones too. */
export function useMarketplaceVersions(name: string | undefined) {
  return useQuery({
    queryKey: [...queryKeys.marketplace, 'versions', name],
    // A scoped name's slash is sent encoded, as the route expects (by-name/@acme%2Fci).
    queryFn: ({ signal }) =>
      api<MarketplaceVersions>(`/api/marketplace/by-name/${encodeURIComponent(name!)}`, { signal }),
    enabled: Boolean(name),
  });
}

export function usePublishItem() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: PublishMarketplaceItemBody) =>
      api<MarketplaceItem>('/api/marketplace', { method: 'POST', body }),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: queryKeys.marketplace }),
  });
}

export function useInstallItem(itemId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: InstallMarketplaceItemBody) =>
      api<MarketplaceInstall>(`/api/marketplace/${encodeURIComponent(itemId)}/install`, {
        method: 'POST',
        body,
      }),
    // An install counts a download (no event says so) and may create a workflow.
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: queryKeys.marketplace });
      void queryClient.invalidateQueries({ queryKey: queryKeys.workflows });
    },
  });
}

export function useYankItem() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (itemId: string) =>
      api<MarketplaceItem>(`/api/marketplace/${encodeURIComponent(itemId)}`, { method: 'DELETE' }),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: queryKeys.marketplace }),
  });
}
