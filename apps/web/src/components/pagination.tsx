import { useState } from 'react';

/**
 * Keyset pagination as the API does it: a page is fetched with the previous page's `next_cursor`,
 * so there is no "page 7", only next and back. The hook keeps the stack of cursors for "Previous".
 * @example
 * const pages = useCursorPages();
 * const query = useTasks({ ...filter, cursor: pages.cursor });
 * <Pagination pages={pages} nextCursor={query.data?.next_cursor} />
 */
export function useCursorPages() {
  const [stack, setStack] = useState<string[]>([]);
  return {
    /** The cursor of the page on screen; undefined on the first. */
    cursor: stack.at(-1),
    page: stack.length + 1,
    next: (cursor: string) => setStack((s) => [...s, cursor]),
    previous: () => setStack((s) => s.slice(0, -1)),
    /** Back to the first page, e.g. when a filter changes. */
    reset: () => setStack([]),
  };
}

export type CursorPages = ReturnType<typeof useCursorPages>;

export function Pagination({
  pages,
  nextCursor,
}: {
  pages: CursorPages;
  nextCursor: string | null | undefined;
}) {
  if (pages.page === 1 && !nextCursor) return null;
  return (
    <nav className="pagination" aria-label="Pagination">
      <button type="button" className="button" onClick={pages.previous} disabled={pages.page === 1}>
        ← Previous
      </button>
      <span aria-live="polite">Page {pages.page}</span>
      <button
        type="button"
        className="button"
        onClick={() => nextCursor && pages.next(nextCursor)}
        disabled={!nextCursor}
      >
        Next →
      </button>
    </nav>
  );
}
