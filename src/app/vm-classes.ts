/**
 * The volume sets of each VM class (docs/qubes-contract.md, "VM classes"). Kernel volumes
 * (Qubes' linux-kernel pool) have no place on a plain Linux host and are left out.
 */
import { UsageError } from '../errors/index.js';
import type { VmClass } from './state.js';

const GiB = 2 ** 30;

export interface VolumeTemplate {
  name: string;
  rw: boolean;
  saveOnStop: boolean;
  /** Snapshot of the template's volume of the same name. */
  snapOnStart: boolean;
  size: number;
}

const origin = (name: string, size: number): VolumeTemplate => ({ name, rw: true, saveOnStop: true, snapOnStart: false, size });
const snapshot = (name: string): VolumeTemplate => ({ name, rw: true, saveOnStop: false, snapOnStart: true, size: 0 });
const volatile = (size: number): VolumeTemplate => ({ name: 'volatile', rw: true, saveOnStop: false, snapOnStart: false, size });

export const VM_CLASSES: Record<VmClass, { needsTemplate: VmClass[]; volumes: VolumeTemplate[] }> = {
  template: { needsTemplate: [], volumes: [origin('root', 10 * GiB), origin('private', 2 * GiB), volatile(10 * GiB)] },
  standalone: { needsTemplate: [], volumes: [origin('root', 10 * GiB), origin('private', 2 * GiB), volatile(10 * GiB)] },
  app: { needsTemplate: ['template'], volumes: [snapshot('root'), origin('private', 2 * GiB), volatile(10 * GiB)] },
  disp: { needsTemplate: ['app'], volumes: [snapshot('root'), snapshot('private'), volatile(12 * GiB)] },
};

/** Qubes' libvirt frontend names: root xvda, private xvdb, volatile xvdc, then xvde on. */
export function frontendName(volume: string, index: number): string {
  const fixed: Record<string, string> = { root: 'xvda', private: 'xvdb', volatile: 'xvdc', kernel: 'xvdd' };
  return (Object.hasOwn(fixed, volume) ? fixed[volume] : undefined) ?? `xvd${String.fromCharCode('e'.charCodeAt(0) + index)}`;
}

const a = (word: string) => `${/^[aeiou]/.test(word) ? 'an' : 'a'} ${word}`;
const capital = (text: string) => text[0]!.toUpperCase() + text.slice(1);

/**
 * Checks that a VM of class `cls` gets the template it needs (a template for an app VM, an
 * app VM for a disposable) and no other; returns the template's name.
 */
export function checkTemplate(cls: VmClass, template: string | undefined, templateClass: VmClass | undefined): string | undefined {
  const needs = VM_CLASSES[cls].needsTemplate;
  if (needs.length === 0) {
    if (template !== undefined) throw new UsageError(`${capital(a(cls))} VM has no template.`);
    return undefined;
  }
  const wanted = `${a(needs.join(' or '))} VM`;
  if (template === undefined) throw new UsageError(`${capital(a(cls))} VM needs a template (${wanted}).`);
  if (!needs.includes(templateClass!)) throw new UsageError(`VM ${template} is ${a(templateClass!)} VM; ${a(cls)} VM needs ${wanted} as template.`);
  return template;
}
