/**
 * Revision policy, the same for every driver (docs/qubes-contract.md, "Revisions"): which
 * revision "latest or named" means, and which revisions a commit prunes. Pure functions
 * over revision ids ordered oldest first, so they are tested without storage.
 */
import { RevisionNotFoundError } from '../errors/index.js';

/** The revision `wanted` names, or the newest when it names none; throws when there is none. */
export function resolveRevision(vid: string, revisions: Map<string, string>, wanted?: string): string {
  const id = wanted ?? [...revisions.keys()].at(-1);
  if (id === undefined || !revisions.has(id)) throw new RevisionNotFoundError(vid, wanted ?? 'latest');
  return id;
}

/**
 * The revisions to remove so that the newest `keep` stay (oldest first). `keep` 0 removes
 * them all, and so does -1 (a volume used without snapshots keeps none).
 */
export function revisionsToPrune(ids: readonly string[], keep: number): string[] {
  return ids.slice(0, Math.max(0, ids.length - Math.max(0, keep)));
}

/** Whether a commit saves the state it replaces as a revision. */
export function keepsRevisions(revisionsToKeep: number): boolean {
  return revisionsToKeep > 0;
}

/**
 * `value` as a revisions_to_keep: a whole number, -1 (no snapshots) or more, given as a
 * number or as its decimal text (Qubes' XML and Admin API carry strings); undefined for
 * anything else, the empty string included. Each caller words the refusal as Qubes does there.
 */
export function parseRevisionsToKeep(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*-?\d{1,15}\s*$/.test(value) ? Number(value) : undefined;
  return n !== undefined && Number.isSafeInteger(n) && n >= -1 ? n : undefined;
}
