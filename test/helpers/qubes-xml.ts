/** qubes.xml as qubesd (lxml) writes it, for tests: pools and domains given as plain data. */

export interface XmlVolume {
  name: string;
  pool: string;
  vid: string;
  rw?: boolean;
  snap_on_start?: boolean;
  save_on_stop?: boolean;
  size?: number;
  source?: string;
  revisions_to_keep?: number;
  ephemeral?: boolean;
}

export interface XmlDomain {
  class: string;
  name?: string;
  template?: string;
  volumes?: XmlVolume[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const py = (v: unknown) => (typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v));

export function qubesXml(pools: Array<Record<string, string>>, domains: XmlDomain[]): string {
  const lines = ["<?xml version='1.0' encoding='UTF-8'?>", '<qubes version-major="3" version-minor="0">',
    '  <labels>', '    <label id="label-1" color="0xcc0000">red</label>', '  </labels>', '  <pools>'];
  for (const p of pools) lines.push(`    <pool${Object.entries(p).sort().map(([k, v]) => ` ${k}="${esc(v)}"`).join('')}/>`);
  lines.push('  </pools>', '  <properties>', '    <property name="default_template">fedora</property>', '  </properties>', '  <domains>');
  domains.forEach((d, i) => {
    lines.push(`    <domain id="domain-${i}" class="${d.class}">`, '      <properties>');
    if (d.name !== undefined) lines.push(`        <property name="name">${esc(d.name)}</property>`);
    lines.push(`        <property name="qid">${i}</property>`, '        <property name="label" ref="label-1"/>');
    if (d.template) lines.push(`        <property name="template">${esc(d.template)}</property>`);
    lines.push('      </properties>', '      <features/>', '      <devices class="pci"/>', '      <tags/>');
    if (d.volumes) {
      lines.push('      <volume-config>');
      for (const v of d.volumes) {
        const attrs: Record<string, unknown> = { revisions_to_keep: 1, rw: false, snap_on_start: false, save_on_stop: false, ...v };
        lines.push(`        <volume${Object.entries(attrs).sort().map(([k, val]) => ` ${k}="${esc(py(val))}"`).join('')}/>`);
      }
      lines.push('      </volume-config>');
    }
    lines.push('    </domain>');
  });
  lines.push('  </domains>', '</qubes>', '');
  return lines.join('\n');
}

/** A Qubes system's VMs on pool `pool` (file-reflink vids), dom0 and kernels included. */
export function typicalDomains(pool: string, size = 2 ** 20): XmlDomain[] {
  const kernel = { name: 'kernel', pool: 'linux-kernel', vid: '6.6.48-1.qubes' };
  return [
    { class: 'AdminVM', name: 'dom0' },
    { class: 'TemplateVM', name: 'fedora', volumes: [
      { name: 'root', pool, vid: 'vm-templates/fedora/root', rw: true, save_on_stop: true, size },
      { name: 'private', pool, vid: 'vm-templates/fedora/private', rw: true, save_on_stop: true, size },
      { name: 'volatile', pool, vid: 'vm-templates/fedora/volatile', rw: true, size }, kernel] },
    { class: 'AppVM', name: 'work', template: 'fedora', volumes: [
      { name: 'root', pool, vid: 'appvms/work/root', snap_on_start: true, source: 'vm-templates/fedora/root', size },
      { name: 'private', pool, vid: 'appvms/work/private', rw: true, save_on_stop: true, size },
      { name: 'volatile', pool, vid: 'appvms/work/volatile', rw: true, size }, kernel] },
    { class: 'AppVM', name: 'fedora-dvm', template: 'fedora', volumes: [
      { name: 'root', pool, vid: 'appvms/fedora-dvm/root', snap_on_start: true, source: 'vm-templates/fedora/root', size },
      { name: 'private', pool, vid: 'appvms/fedora-dvm/private', rw: true, save_on_stop: true, size }, kernel] },
    { class: 'DispVM', name: 'disp1234', template: 'fedora-dvm', volumes: [
      { name: 'root', pool, vid: 'appvms/disp1234/root', snap_on_start: true, source: 'vm-templates/fedora/root', size },
      { name: 'private', pool, vid: 'appvms/disp1234/private', snap_on_start: true, rw: true, source: 'appvms/fedora-dvm/private', size }, kernel] },
    { class: 'StandaloneVM', name: 'alone', volumes: [
      { name: 'root', pool, vid: 'appvms/alone/root', rw: true, save_on_stop: true, size },
      { name: 'private', pool, vid: 'appvms/alone/private', rw: true, save_on_stop: true, size }] },
  ];
}
