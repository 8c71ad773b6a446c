/**
 * Qubes' own registry, /var/lib/qubes/qubes.xml, read as a qvol registry state: its pools
 * of the drivers qvol has (file-reflink and lvm_thin, whose on-disk names qvol shares, and
 * the bridge's qvol_* pools), and its VMs with their volume configs. qvol reads the file and
 * never writes it. What qvol cannot use is left out and said (`skipped`): a pool of another
 * driver (the kernels' linux-kernel, legacy file, callback, Qubes' zfs, whose layout differs)
 * and the volumes in it, a VM whose name qvol refuses, dom0, a VM whose template is left
 * out. A file that is not what qubesd writes (entities, a VM or pool twice, values of the
 * wrong shape) is refused whole.
 */
import { readFile, stat } from 'node:fs/promises';
import { validateName } from '../model/names.js';
import type { VolumeConfig } from '../model/volume.js';
import { record, STATE_VERSION, type PoolConfig, type State, type VmClass, type VmRecord } from '../app/state.js';
import { childrenIn, parseXml, XmlError, type XmlElement } from './xml.js';

export const DEFAULT_QUBES_XML = '/var/lib/qubes/qubes.xml';

/** qubes.xml of a big installation is a few MiB. */
const MAX_BYTES = 64 << 20;

/** Qubes' driver -> qvol's, for the drivers whose volumes qvol addresses as Qubes does. */
const DRIVERS: Record<string, string> = {
  'file-reflink': 'file-reflink', lvm_thin: 'lvm_thin',
  qvol_file_reflink: 'file-reflink', qvol_lvm_thin: 'lvm_thin', qvol_zfs: 'zfs_zvol', qvol_zfs_encrypted: 'zfs_encrypted',
};

const CLASSES: Record<string, VmClass> = { TemplateVM: 'template', AppVM: 'app', StandaloneVM: 'standalone', DispVM: 'disp' };

/** Pool options qvol's drivers take, by driver (the rest of a Qubes pool's attributes are Qubes' own). */
const POOL_OPTIONS: Record<string, string[]> = {
  'file-reflink': ['dir_path', 'setup_check'],
  lvm_thin: ['volume_group', 'thin_pool'],
  zfs_zvol: ['zpool_name', 'container'],
  zfs_encrypted: ['zpool_name', 'unload_timeout', 'passphrase_command'],
};

export interface QubesRegistry {
  state: State;
  /** What was left out, and why, one line each. */
  skipped: string[];
}

export async function readQubesXml(file: string): Promise<QubesRegistry> {
  const st = await stat(file);
  if (!st.isFile()) throw new XmlError(file, 'not a regular file');
  if (st.size > MAX_BYTES) throw new XmlError(file, `larger than ${MAX_BYTES} bytes`);
  return qubesRegistry(parseXml(await readFile(file, 'utf8'), file), file);
}

function bool(value: string | undefined, file: string, what: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'True') return true;
  if (value === 'False') return false;
  throw new XmlError(file, `${what} is '${value}', not True or False`);
}

function int(value: string | undefined, file: string, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) throw new XmlError(file, `${what} is '${value}', not a whole number`);
  return Number(value);
}

/** The registry state of the parsed qubes.xml `root`. */
export function qubesRegistry(root: XmlElement, file: string): QubesRegistry {
  if (root.name !== 'qubes') throw new XmlError(file, `its root element is <${root.name}>, not <qubes>`);
  const skipped: string[] = [];
  const state: State = { version: STATE_VERSION, pools: record(), vms: record() };
  const seenPools = new Set<string>();
  for (const el of childrenIn(root, 'pools', 'pool')) {
    const name = el.attrs.name;
    const driver = el.attrs.driver;
    if (!name || !driver) throw new XmlError(file, 'a <pool> without a name or driver');
    if (seenPools.has(name)) throw new XmlError(file, `pool ${name} is given twice`);
    seenPools.add(name);
    const ours = Object.hasOwn(DRIVERS, driver) ? DRIVERS[driver]! : undefined;
    if (!ours) {
      // Every Qubes system has the kernels' pool: no news, so not said.
      if (driver !== 'linux-kernel') skipped.push(`pool ${name}: driver ${driver} is not one qvol reads (file-reflink, lvm_thin, qvol_*)`);
      continue;
    }
    try {
      validateName('pool', name);
    } catch (err) {
      skipped.push(`pool ${name}: ${(err as Error).message}`);
      continue;
    }
    const config: PoolConfig = { name, driver: ours };
    for (const key of POOL_OPTIONS[ours] ?? []) if (el.attrs[key] !== undefined) config[key] = el.attrs[key]!;
    if (el.attrs.revisions_to_keep !== undefined) config.revisions_to_keep = int(el.attrs.revisions_to_keep, file, `pool ${name}'s revisions_to_keep`)!;
    if (el.attrs.ephemeral_volatile !== undefined) config.ephemeral_volatile = bool(el.attrs.ephemeral_volatile, file, `pool ${name}'s ephemeral_volatile`)!;
    // qvol checks the file-reflink directory for reflinks at setup; Qubes did that when it added the pool.
    if (ours === 'file-reflink') config.setup_check = false;
    state.pools[name] = config;
  }

  const domains = childrenIn(root, 'domains', 'domain');
  const records = new Map<string, VmRecord>();
  const seenVms = new Set<string>();
  for (const el of domains) {
    const props = new Map<string, string>();
    for (const p of childrenIn(el, 'properties', 'property')) {
      if (p.attrs.name !== undefined) props.set(p.attrs.name, p.text);
    }
    const cls = el.attrs.class ?? '';
    const name = props.get('name') ?? (cls === 'AdminVM' ? 'dom0' : undefined);
    if (name === undefined) throw new XmlError(file, `a <domain> (${el.attrs.id ?? 'no id'}) without a name`);
    if (seenVms.has(name)) throw new XmlError(file, `VM ${name} is given twice`);
    seenVms.add(name);
    const ourClass = Object.hasOwn(CLASSES, cls) ? CLASSES[cls]! : undefined;
    if (!ourClass) {
      // dom0 (AdminVM) has no volumes in a pool: no news, so not said.
      if (cls !== 'AdminVM') skipped.push(`VM ${name}: class ${cls || 'none'} is not one qvol knows`);
      continue;
    }
    try {
      validateName('VM', name);
    } catch (err) {
      skipped.push(`VM ${name}: ${(err as Error).message}`);
      continue;
    }
    const volumes = record<VolumeConfig>();
    for (const v of childrenIn(el, 'volume-config', 'volume')) {
      const a = v.attrs;
      const what = `VM ${name}'s volume ${a.name ?? '?'}`;
      if (!a.name || !a.pool || !a.vid) throw new XmlError(file, `${what} has no name, pool or vid`);
      if (Object.hasOwn(volumes, a.name)) throw new XmlError(file, `${what} is given twice`);
      if (!Object.hasOwn(state.pools, a.pool)) {
        if (a.pool !== 'linux-kernel' || a.name !== 'kernel') skipped.push(`${what}: pool ${a.pool} is ${seenPools.has(a.pool) ? 'left out (above)' : 'not in the file'}`);
        continue;
      }
      const config: VolumeConfig = {
        name: a.name, pool: a.pool, vid: a.vid,
        revisions_to_keep: int(a.revisions_to_keep, file, `${what}'s revisions_to_keep`) ?? 0,
        rw: bool(a.rw, file, `${what}'s rw`) ?? false,
        save_on_stop: bool(a.save_on_stop, file, `${what}'s save_on_stop`) ?? false,
        snap_on_start: bool(a.snap_on_start, file, `${what}'s snap_on_start`) ?? false,
      };
      const size = int(a.size, file, `${what}'s size`);
      if (size !== undefined && size > 0) config.size = size;
      if (a.source) config.source = a.source;
      const ephemeral = bool(a.ephemeral, file, `${what}'s ephemeral`);
      if (ephemeral !== undefined) config.ephemeral = ephemeral;
      volumes[a.name] = config;
    }
    const template = props.get('template');
    records.set(name, { name, class: ourClass, ...(template && ourClass !== 'template' && ourClass !== 'standalone' ? { template } : {}), volumes });
  }

  // A VM whose template or snapshot source is left out is left out too (its volumes start
  // from that source), and so on down; sources are found by vid in the same pool.
  // Each pass maps every kept volume to its VM once; a pass that leaves a VM out is followed
  // by another, until none does.
  let changed = true;
  while (changed) {
    changed = false;
    const owners = new Map<string, Set<string>>();
    for (const [name, vm] of records) {
      for (const v of Object.values(vm.volumes)) {
        const key = `${v.pool}\0${v.vid}`;
        owners.set(key, (owners.get(key) ?? new Set()).add(name));
      }
    }
    for (const [name, vm] of records) {
      // A source counts when another VM kept has it.
      const found = (v: VolumeConfig) => [...(owners.get(`${v.pool}\0${v.source}`) ?? [])].some((o) => o !== name && records.has(o));
      const missing = Object.values(vm.volumes).find((v) => v.snap_on_start && (!v.source || !found(v)));
      const noTemplate = vm.template !== undefined && !records.has(vm.template);
      if (missing || noTemplate) {
        skipped.push(`VM ${name}: ${noTemplate ? `its template ${vm.template} is left out` : `volume ${missing!.name}'s source ${missing!.source ?? '(none)'} is left out`}`);
        records.delete(name);
        changed = true;
      }
    }
  }
  for (const [name, vm] of records) state.vms[name] = vm;
  return { state, skipped };
}
