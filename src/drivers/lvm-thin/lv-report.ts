/**
 * The LVs of a volume group, from one `lvs --reportformat json` (Qubes' size_cache): one
 * report per operation, never one per volume. The JSON is checked field by field before
 * use; an LV whose row does not have the expected shape is an error, not a guess.
 */
import { StoragePoolException } from '../../errors/index.js';
import { lvmArgv, lvmRead } from './lvm-command.js';

export interface LvRecord {
  vg: string;
  name: string;
  /** The thin pool the LV lives in ('' for one outside any). */
  poolLv: string;
  size: number;
  /** Bytes of data allocated (size * data_percent); 0 where LVM reports none. */
  usage: number;
  /** lv_attr: [0] the type (V thin volume, t thin pool), [4] the state (a active). */
  attr: string;
  /** The LV it is a thin snapshot of ('' if none). */
  origin: string;
  metadataSize: number;
  metadataUsage: number;
  /** The VG's extent size: LV sizes are whole extents. */
  extentSize: number;
  /** LVM's lv_health_status: '' when well; out_of_data, metadata_read_only, needs_check, failed... */
  health: string;
}

/** `VG/LV` -> its record. */
export type LvReport = Map<string, LvRecord>;

const FIELDS = ['vg_name', 'lv_name', 'pool_lv', 'lv_size', 'data_percent', 'lv_attr', 'origin', 'lv_metadata_size', 'metadata_percent', 'vg_extent_size', 'lv_health_status'] as const;

function corrupt(why: string): StoragePoolException {
  return new StoragePoolException(`lvs gave a report qvol cannot read: ${why}`);
}

/** Parses the JSON of `lvmArgv.report`. */
export function parseLvReport(json: string): LvReport {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    throw corrupt('not JSON');
  }
  const reports = (doc as { report?: unknown }).report;
  if (!Array.isArray(reports)) throw corrupt('no report array');
  const out: LvReport = new Map();
  for (const report of reports) {
    const lvs = (report as { lv?: unknown }).lv;
    if (!Array.isArray(lvs)) throw corrupt('a report without an lv array');
    for (const row of lvs) {
      if (typeof row !== 'object' || row === null) throw corrupt('an lv row that is not an object');
      const r = row as Record<string, unknown>;
      for (const f of FIELDS) if (typeof r[f] !== 'string') throw corrupt(`an lv row without ${f}`);
      const s = r as Record<(typeof FIELDS)[number], string>;
      const size = Number(s.lv_size || 0);
      const metadataSize = Number(s.lv_metadata_size || 0);
      const extentSize = Number(s.vg_extent_size);
      if (![size, metadataSize, extentSize].every(Number.isSafeInteger) || extentSize <= 0) throw corrupt(`the sizes of ${s.vg_name}/${s.lv_name}`);
      const percent = (p: string) => (p === '' ? 0 : Number(p));
      out.set(`${s.vg_name}/${s.lv_name}`, {
        vg: s.vg_name, name: s.lv_name, poolLv: s.pool_lv, size, attr: s.lv_attr, origin: s.origin, metadataSize, extentSize,
        health: s.lv_health_status,
        usage: Math.floor((size / 100) * percent(s.data_percent)) || 0,
        metadataUsage: Math.floor((metadataSize / 100) * percent(s.metadata_percent)) || 0,
      });
    }
  }
  return out;
}

/** Every LV of `vg`, now. */
export async function readLvReport(vg: string): Promise<LvReport> {
  return parseLvReport(await lvmRead(lvmArgv.report(vg)));
}
