import { describe, expect, it } from 'vitest';
import { RevisionNotFoundError } from '../../../src/errors/index.js';
import { keepsRevisions, resolveRevision, revisionsToPrune } from '../../../src/model/revisions.js';

describe('revision policy', () => {
  const ids = ['1', '2', '3'];
  it('prunes all but the newest `keep`; 0 and -1 keep none', () => {
    expect(revisionsToPrune(ids, 2)).toEqual(['1']);
    expect(revisionsToPrune(ids, 1)).toEqual(['1', '2']);
    expect(revisionsToPrune(ids, 3)).toEqual([]);
    expect(revisionsToPrune(ids, 5)).toEqual([]);
    expect(revisionsToPrune(ids, 0)).toEqual(ids);
    expect(revisionsToPrune(ids, -1)).toEqual(ids);
    expect(revisionsToPrune([], 1)).toEqual([]);
  });

  it('saves a revision only when it keeps some', () => {
    expect([-1, 0, 1, 2].map(keepsRevisions)).toEqual([false, false, true, true]);
  });

  it('resolves the latest or a named revision', () => {
    const revs = new Map(ids.map((id) => [id, `t${id}`]));
    expect(resolveRevision('v', revs)).toBe('3');
    expect(resolveRevision('v', revs, '1')).toBe('1');
    expect(() => resolveRevision('v', revs, '9')).toThrow(new RevisionNotFoundError('v', '9'));
    expect(() => resolveRevision('v', new Map())).toThrow(new RevisionNotFoundError('v', 'latest'));
  });
});
