/**
 * Reading Qubes' qubes.xml (src/qubes/): the strict XML reader against hostile input, and the
 * registry state made of the file: every VM class, the pool drivers qvol reads and those it
 * leaves out, names qvol refuses, missing pools and templates, a VM given twice.
 */
import { describe, expect, it } from 'vitest';
import { qubesRegistry } from '../../../src/qubes/qubes-xml.js';
import { parseXml } from '../../../src/qubes/xml.js';
import { qubesXml, typicalDomains, type XmlDomain } from '../../helpers/qubes-xml.js';

const F = '/var/lib/qubes/qubes.xml';
const read = (text: string) => qubesRegistry(parseXml(text, F), F);
const pools: Array<Record<string, string>> = [
  { name: 'varlibqubes', driver: 'file-reflink', dir_path: '/var/lib/qubes', revisions_to_keep: '1', ephemeral_volatile: 'False' },
  { name: 'linux-kernel', driver: 'linux-kernel', dir_path: '/var/lib/qubes/vm-kernels' },
  { name: 'vm-pool', driver: 'lvm_thin', volume_group: 'qubes_dom0', thin_pool: 'vm-pool', revisions_to_keep: '2' },
  { name: 'old', driver: 'file', dir_path: '/var/lib/old' },
  { name: 'tank', driver: 'zfs', container: 'tank/qubes' },
];

describe('the XML reader', () => {
  it('reads elements, attributes, text, comments and the predefined and character entities', () => {
    const root = parseXml(`\uFEFF<?xml version='1.0' encoding='UTF-8'?>\n<!-- c --><a x='1 &amp; 2' y="&#60;&#x3E;"><b>t&lt;&apos;&quot;</b><c/><![CDATA[<raw>]]></a>\n`, F);
    expect(root).toMatchObject({ name: 'a', attrs: { x: '1 & 2', y: '<>' }, text: '<raw>' });
    expect(root.children.map((c) => [c.name, c.text])).toEqual([['b', "t<'\""], ['c', '']]);
  });

  it('refuses what qubesd does not write: DOCTYPE and entities, stray markup, bad nesting', () => {
    const bad: Array<[string, RegExp]> = [
      ['<!DOCTYPE q [<!ENTITY x "y">]><q>&x;</q>', /DOCTYPE/],
      ['<!DOCTYPE q SYSTEM "file:///etc/passwd"><q/>', /DOCTYPE/],
      ['<q>&x;</q>', /the entity &x;/],
      ['<q a="&#0;"/>', /character reference/],
      ['<q>a & b</q>', /a bare &/],
      ['<q><r></q>', /<\/q> closes <r>/],
      ['<q a="1" a="2"/>', /given twice/],
      ['<q a=1/>', /not quoted/],
      ['<q/><r/>', /text after the root/],
      ['<q><?pi x?></q>', /processing instruction/],
      ['<?xml version="1.0" encoding="latin1"?><q/>', /encoding/],
      [`${'<a>'.repeat(70)}${'</a>'.repeat(70)}`, /nested deeper/],
      ['<q>', /does not end/],
    ];
    for (const [text, why] of bad) expect(() => parseXml(text, F), text).toThrow(why);
  });
});

describe('qubes.xml as a registry', () => {
  it('takes the pools qvol reads and every VM class, leaving out dom0, kernels and other drivers', () => {
    const { state, skipped } = read(qubesXml(pools, typicalDomains('varlibqubes')));
    expect(Object.keys(state.pools).sort()).toEqual(['varlibqubes', 'vm-pool']);
    expect(state.pools['varlibqubes']).toEqual({ name: 'varlibqubes', driver: 'file-reflink', dir_path: '/var/lib/qubes', setup_check: false, revisions_to_keep: 1, ephemeral_volatile: false });
    expect(state.pools['vm-pool']).toEqual({ name: 'vm-pool', driver: 'lvm_thin', volume_group: 'qubes_dom0', thin_pool: 'vm-pool', revisions_to_keep: 2 });
    expect(Object.fromEntries(Object.values(state.vms).map((v) => [v.name, [v.class, v.template ?? '']]))).toEqual({
      fedora: ['template', ''], work: ['app', 'fedora'], 'fedora-dvm': ['app', 'fedora'], disp1234: ['disp', 'fedora-dvm'], alone: ['standalone', ''],
    });
    expect(state.vms['work']!.volumes['root']).toEqual({
      name: 'root', pool: 'varlibqubes', vid: 'appvms/work/root', revisions_to_keep: 1, rw: false, save_on_stop: false, snap_on_start: true,
      size: 2 ** 20, source: 'vm-templates/fedora/root',
    });
    expect(Object.keys(state.vms['work']!.volumes)).toEqual(['root', 'private', 'volatile']);
    expect(skipped).toEqual(['pool old: driver file is not one qvol reads (file-reflink, lvm_thin, qvol_*)',
      'pool tank: driver zfs is not one qvol reads (file-reflink, lvm_thin, qvol_*)']);
  });

  it('reads the bridge\'s pools as their qvol drivers', () => {
    const { state } = read(qubesXml([{ name: 'fast', driver: 'qvol_file_reflink', dir_path: '/fast' }, { name: 'z', driver: 'qvol_zfs', container: 'tank/q' }], []));
    expect(state.pools['fast']).toMatchObject({ driver: 'file-reflink', dir_path: '/fast' });
    expect(state.pools['z']).toEqual({ name: 'z', driver: 'zfs_zvol', container: 'tank/q' });
  });

  it('leaves out, saying why, a VM qvol cannot name, one in a missing pool\'s template chain, and what stands on it', () => {
    const domains: XmlDomain[] = [
      ...typicalDomains('varlibqubes'),
      { class: 'AppVM', name: '-bad', volumes: [] },
      { class: 'TemplateVM', name: 'gone', volumes: [{ name: 'root', pool: 'nowhere', vid: 'vm-templates/gone/root', save_on_stop: true }] },
      { class: 'AppVM', name: 'ongone', template: 'gone', volumes: [{ name: 'root', pool: 'varlibqubes', vid: 'appvms/ongone/root', snap_on_start: true, source: 'vm-templates/gone/root' }] },
      { class: 'AppVM', name: 'orphan', template: 'nosuch', volumes: [] },
      { class: 'RemoteVM', name: 'odd', volumes: [] },
    ];
    const { state, skipped } = read(qubesXml(pools, domains));
    expect(Object.keys(state.vms)).not.toEqual(expect.arrayContaining(['-bad', 'ongone', 'orphan', 'odd']));
    expect(state.vms['gone']!.volumes).toEqual({});
    expect(skipped).toEqual(expect.arrayContaining([
      expect.stringMatching(/^VM -bad: Invalid VM name/),
      "VM gone's volume root: pool nowhere is not in the file",
      expect.stringMatching(/^VM ongone: volume root's source vm-templates\/gone\/root is left out/),
      'VM orphan: its template nosuch is left out',
      'VM odd: class RemoteVM is not one qvol knows',
    ]));
  });

  it('refuses a file qubesd did not write: a VM or pool twice, values of the wrong shape, another root', () => {
    const twice = typicalDomains('varlibqubes');
    expect(() => read(qubesXml(pools, [...twice, twice[2]!]))).toThrow('VM work is given twice');
    expect(() => read(qubesXml([...pools, pools[0]!], []))).toThrow('pool varlibqubes is given twice');
    expect(() => read(qubesXml(pools, [{ class: 'AppVM', name: 'x', volumes: [{ name: 'root', pool: 'varlibqubes', vid: 'a/x/root', rw: 'yes' as unknown as boolean }] }])))
      .toThrow("VM x's volume root's rw is 'yes', not True or False");
    expect(() => read(qubesXml(pools, [{ class: 'AppVM', name: 'x', volumes: [{ name: 'root', pool: 'varlibqubes', vid: 'a/x/root', size: 1e300 }] }])))
      .toThrow(/size is .* not a whole number/);
    expect(() => read('<domains/>')).toThrow('its root element is <domains>, not <qubes>');
    expect(() => read(qubesXml(pools, [{ class: 'AppVM' }]))).toThrow(/without a name/);
  });
});
