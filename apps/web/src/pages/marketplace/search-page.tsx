import type { MarketplaceItemSummary } from '@devart/contracts';
import { type FormEvent, useEffect, useId, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { DataState } from '../../components/data-state';
import { PageHeader } from '../../components/layout';
import { Pagination, useCursorPages } from '../../components/pagination';
import { RelativeTime } from '../../components/time';
import { useCan } from '../../lib/auth';
import { type MarketplaceFilters, parseTags, readFilters, toggleTag, writeFilters } from './filters';
import { useMarketplaceSearch } from './hooks';
import { plural } from './plural';

/** How long typing in Search waits before it searches (Enter searches at once). */
const typingDelayMs = 300;

export function TypeBadge({ type }: { type: string }) {
  return (
    <span className={`chip chip-${type}`} data-item-type={type}>
      {type}
    </span>
  );
}

/** A result: name (a link to its page), version, type, description, tags that filter, downloads. */
function ResultCard({
  item,
  activeTags,
  onTag,
}: {
  item: MarketplaceItemSummary;
  activeTags: readonly string[];
  onTag: (tag: string) => void;
}) {
  const titleId = useId();
  return (
    <article className="mp-card" data-item-name={item.name} data-item-id={item.id} aria-labelledby={titleId}>
      <header className="mp-card-head">
        <h2 id={titleId}>
          <Link to={`/marketplace/${item.id}`}>{item.name}</Link>
        </h2>
        <span className="muted num">{item.version}</span>
        <TypeBadge type={item.item_type} />
      </header>
      <p className="mp-description">{item.description || <span className="muted">No description.</span>}</p>
      {(item.tags ?? []).length > 0 && (
        <ul className="mp-tags" aria-label={`Tags of ${item.name}`}>
          {(item.tags ?? []).map((tag) => (
            <li key={tag}>
              <button
                type="button"
                className="chip chip-button"
                aria-pressed={activeTags.includes(tag)}
                aria-label={`${activeTags.includes(tag) ? 'Remove' : 'Filter by'} tag ${tag}`}
                onClick={() => onTag(tag)}
              >
                {tag}
              </button>
            </li>
          ))}
        </ul>
      )}
      <footer className="muted small">
        {plural(item.downloads_all_versions, 'install')} · published <RelativeTime iso={item.created_at} />
      </footer>
    </article>
  );
}

/** /marketplace — search with type and tag filters (kept in the URL), results as cards, Publish (supervisors+). */
export function MarketplaceSearch() {
  const [params, setParams] = useSearchParams();
  const filters = readFilters(params);
  const pages = useCursorPages();
  const results = useMarketplaceSearch(filters, pages.cursor);
  const canPublish = useCan('marketplace.publish');
  const [text, setText] = useState(filters.q);
  const [tagText, setTagText] = useState('');
  const [tagError, setTagError] = useState<string>();

  const apply = (next: MarketplaceFilters) => {
    setParams(writeFilters(next), { replace: true });
    pages.reset();
  };
  // Typing searches after a pause; the URL (and so a link, or a reload) keeps the search. The
  // timer reads the URL as it is when it fires, so a filter changed meanwhile is kept.
  // biome-ignore lint/correctness/useExhaustiveDependencies: only the typed text starts the timer.
  useEffect(() => {
    if (text.trim() === filters.q.trim()) return;
    const timer = setTimeout(() => {
      setParams((current) => writeFilters({ ...readFilters(current), q: text }), { replace: true });
      pages.reset();
    }, typingDelayMs);
    return () => clearTimeout(timer);
  }, [text]);

  const search = (e: FormEvent) => {
    e.preventDefault();
    apply({ ...filters, q: text });
  };
  const addTags = (e?: { preventDefault(): void }) => {
    e?.preventDefault();
    const { tags, invalid } = parseTags(tagText);
    if (invalid.length > 0) {
      setTagError(`Not a tag: ${invalid.join(', ')} (lowercase letters, digits, . _ + # -; at most 32).`);
      return;
    }
    setTagError(undefined);
    setTagText('');
    if (tags.length > 0) apply({ ...filters, tags: [...new Set([...filters.tags, ...tags])] });
  };
  const filtered = filters.q.trim() !== '' || filters.type !== '' || filters.tags.length > 0;

  return (
    <>
      <PageHeader title="Marketplace">
        {canPublish && (
          <Link className="button button-primary" to="/marketplace/publish">
            Publish
          </Link>
        )}
      </PageHeader>
      <search>
        <form className="filters mp-filters" onSubmit={search}>
          <div className="field mp-search">
            <label htmlFor="mp-q">Search</label>
            <input
              id="mp-q"
              type="search"
              value={text}
              placeholder="Name or description, e.g. ci lint"
              onChange={(e) => setText(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor="mp-type">Type</label>
            <select
              id="mp-type"
              value={filters.type}
              onChange={(e) => apply({ ...filters, type: e.target.value as MarketplaceFilters['type'] })}
            >
              <option value="">Any</option>
              <option value="workflow">Workflows</option>
              <option value="agent">Agents</option>
            </select>
          </div>
          <div className="field">
            <label htmlFor="mp-tags">Tags</label>
            <input
              id="mp-tags"
              value={tagText}
              placeholder="ci, testing"
              size={14}
              onChange={(e) => {
                setTagText(e.target.value);
                setTagError(undefined);
              }}
              onKeyDown={(e) => {
                if (e.key === 'Enter') addTags(e);
              }}
              onBlur={() => addTags()}
              aria-invalid={tagError ? true : undefined}
              aria-describedby={tagError ? 'mp-tags-error' : undefined}
            />
          </div>
          <div className="field">
            <label htmlFor="mp-sort">Sort</label>
            <select
              id="mp-sort"
              value={filters.sort}
              onChange={(e) => apply({ ...filters, sort: e.target.value as MarketplaceFilters['sort'] })}
            >
              <option value="">Default</option>
              <option value="relevance" disabled={filters.q.trim() === ''}>
                Relevance
              </option>
              <option value="newest">Newest</option>
              <option value="name">Name</option>
              <option value="downloads">Installs</option>
            </select>
          </div>
          <button type="submit" className="button">
            Search
          </button>
        </form>
      </search>
      {tagError && (
        <p id="mp-tags-error" className="field-error" role="alert">
          {tagError}
        </p>
      )}
      {filters.tags.length > 0 && (
        <ul className="mp-active-tags" aria-label="Tag filters">
          {filters.tags.map((tag) => (
            <li key={tag}>
              <button
                type="button"
                className="chip chip-button"
                aria-label={`Remove tag ${tag}`}
                onClick={() => apply(toggleTag(filters, tag))}
              >
                {tag} <span aria-hidden="true">×</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      <DataState
        query={results}
        label="the marketplace"
        isEmpty={(page) => page.items.length === 0}
        empty={
          filtered ? (
            <>
              Nothing matches these filters.{' '}
              <button
                type="button"
                className="button button-small"
                onClick={() => {
                  setText('');
                  apply({ q: '', type: '', tags: [], sort: '' });
                }}
              >
                Clear filters
              </button>
            </>
          ) : (
            'Nothing is published yet.'
          )
        }
      >
        {(page) => (
          <ul className="mp-results" aria-label="Results" aria-busy={results.isPlaceholderData || undefined}>
            {page.items.map((item) => (
              <li key={item.id}>
                <ResultCard
                  item={item}
                  activeTags={filters.tags}
                  onTag={(tag) => apply(toggleTag(filters, tag))}
                />
              </li>
            ))}
          </ul>
        )}
      </DataState>
      <Pagination pages={pages} nextCursor={results.data?.next_cursor} />
    </>
  );
}
