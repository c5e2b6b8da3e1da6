import { describe, expect, it } from 'vitest';
import { noFilters, pageSize, parseTags, readFilters, searchQuery, toggleTag, writeFilters } from './filters';

describe('marketplace filters', () => {
  it('read from the URL, dropping what the API would refuse', () => {
    expect(readFilters(new URLSearchParams('q=lint&type=agent&tags=ci,Testing&sort=downloads'))).toEqual({
      q: 'lint',
      type: 'agent',
      tags: ['ci', 'testing'],
      sort: 'downloads',
    });
    expect(readFilters(new URLSearchParams('type=plugin&sort=stars&tags=ok,bad/tag'))).toEqual({
      ...noFilters,
      tags: ['ok'],
    });
    expect(readFilters(new URLSearchParams(''))).toEqual(noFilters);
  });

  it('write back to the URL without empty values, and survive the round trip', () => {
    const filters = { q: ' ci ', type: 'workflow' as const, tags: ['ci', 'node'], sort: '' as const };
    expect(writeFilters(filters).toString()).toBe('q=ci&type=workflow&tags=ci%2Cnode');
    expect(readFilters(writeFilters(filters))).toEqual({ ...filters, q: 'ci' });
    expect(writeFilters(noFilters).toString()).toBe('');
  });

  it('parse typed tags: commas or spaces, lowercased, once each, bad ones apart', () => {
    expect(parseTags('CI, testing ci  bad/tag')).toEqual({ tags: ['ci', 'testing'], invalid: ['bad/tag'] });
    expect(parseTags(' , ')).toEqual({ tags: [], invalid: [] });
    expect(parseTags('c++ c# node.js')).toEqual({ tags: ['c++', 'c#', 'node.js'], invalid: [] });
  });

  it('toggle a tag in and out', () => {
    const once = toggleTag(noFilters, 'ci');
    expect(once.tags).toEqual(['ci']);
    expect(toggleTag(toggleTag(once, 'node'), 'ci').tags).toEqual(['node']);
  });

  it('make the API query: tags joined, relevance only with a search text, the cursor and page size', () => {
    expect(searchQuery({ q: ' lint ', type: 'agent', tags: ['ci', 'go'], sort: 'relevance' }, 'abc')).toEqual(
      {
        q: 'lint',
        type: 'agent',
        tags: 'ci,go',
        sort: 'relevance',
        cursor: 'abc',
        limit: pageSize,
      },
    );
    expect(searchQuery({ ...noFilters, sort: 'relevance' })).toEqual({
      q: undefined,
      type: undefined,
      tags: undefined,
      sort: undefined,
      cursor: undefined,
      limit: pageSize,
    });
    expect(searchQuery({ ...noFilters, sort: 'name' }).sort).toBe('name');
  });
});
