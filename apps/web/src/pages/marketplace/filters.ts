import { MarketplaceItemType, MarketplaceSort, MarketplaceTag } from '@devart/contracts';

/** The search's filters, as the page keeps them in its URL (?q=&type=&tags=a,b&sort=). */
export interface MarketplaceFilters {
  q: string;
  type: MarketplaceItemType | '';
  tags: string[];
  sort: MarketplaceSort | '';
}

export const noFilters: MarketplaceFilters = { q: '', type: '', tags: [], sort: '' };

/** Items a search page shows. */
export const pageSize = 24;

/**
 * Tags typed by a user: split on commas and spaces, lowercased, repeats dropped; what is not a tag
 * (the contract's MarketplaceTag) is returned apart, to say so rather than send a request the API
 * refuses.
 * @example parseTags('CI, testing ci  bad/tag') // { tags: ['ci', 'testing'], invalid: ['bad/tag'] }
 */
export function parseTags(text: string): { tags: string[]; invalid: string[] } {
  const tags: string[] = [];
  const invalid: string[] = [];
  for (const word of text.toLowerCase().split(/[\s,]+/)) {
    if (!word) continue;
    if (!MarketplaceTag.safeParse(word).success) invalid.push(word);
    else if (!tags.includes(word)) tags.push(word);
  }
  return { tags, invalid };
}

/** The filters of a URL; a value the API would refuse (an unknown type or sort, a bad tag) is dropped. */
export function readFilters(params: URLSearchParams): MarketplaceFilters {
  const type = MarketplaceItemType.safeParse(params.get('type'));
  const sort = MarketplaceSort.safeParse(params.get('sort'));
  return {
    q: params.get('q') ?? '',
    type: type.success ? type.data : '',
    tags: parseTags(params.get('tags') ?? '').tags,
    sort: sort.success ? sort.data : '',
  };
}

/** The URL's search parameters for these filters, empty ones left out. */
export function writeFilters(filters: MarketplaceFilters): URLSearchParams {
  const params = new URLSearchParams();
  if (filters.q.trim()) params.set('q', filters.q.trim());
  if (filters.type) params.set('type', filters.type);
  if (filters.tags.length > 0) params.set('tags', filters.tags.join(','));
  if (filters.sort) params.set('sort', filters.sort);
  return params;
}

/** Adds the tag to the filter, or takes it out if it is there. */
export function toggleTag(filters: MarketplaceFilters, tag: string): MarketplaceFilters {
  const tags = filters.tags.includes(tag) ? filters.tags.filter((t) => t !== tag) : [...filters.tags, tag];
  return { ...filters, tags };
}

/**
 * The query of GET /api/marketplace: `relevance` is only asked for with a search text (the API
 * refuses it without), so a sort left from an earlier search falls back to the API's default.
 */
export function searchQuery(
  filters: MarketplaceFilters,
  cursor?: string,
): Record<string, string | number | undefined> {
  const q = filters.q.trim();
  return {
    q: q || undefined,
    type: filters.type || undefined,
    tags: filters.tags.length > 0 ? filters.tags.join(',') : undefined,
    sort: filters.sort === 'relevance' && !q ? undefined : filters.sort || undefined,
    cursor,
    limit: pageSize,
  };
}
