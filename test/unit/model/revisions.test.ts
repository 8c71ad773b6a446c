import { describe, expect, it } from 'vitest';
import { RevisionNotFoundError } from '../../../src/errors/index.js';
import { keepsRevisions, resolveRevision, revisionsToPrune, parseRevisionsToKeep } from '../../../src/model/revisions.js';

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

describe('parseRevisionsToKeep', () => {
  it('takes -1 or more, as a number or its decimal text, and nothing else', () => {
    for (const [value, want] of [[1, 1], [-1, -1], [0, 0], ['3', 3], [' 2 ', 2], ['-1', -1]] as const) expect(parseRevisionsToKeep(value), String(value)).toBe(want);
    for (const value of [-2, 1.5, '', ' ', '1e3', '0x10', 'two', '-2', null, undefined, true, '9'.repeat(20)]) expect(parseRevisionsToKeep(value), String(value)).toBeUndefined();
  });
});
