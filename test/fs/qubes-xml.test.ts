/**
 * `--qubes-xml`: qvol reading Qubes' registry on a real file-reflink pool whose files a
 * Qubes system would have (made here by qvol's own registry, whose layout is Qubes'): the
 * VMs listed with their classes, a volume's info and export, a backup sent from it and
 * restored into qvol's own registry, and every change refused, qubes.xml untouched.
 */
import { closeSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runQvol } from '../helpers/cli.js';
import { patternBuffer } from '../helpers/files.js';
import { qubesXml, typicalDomains } from '../helpers/qubes-xml.js';
import { scratchDir } from '../helpers/scratch.js';

const MiB = 2 ** 20;

/** The first `n` bytes of `path`. */
function head(path: string, n: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, 0);
    return buf;
  } finally {
    closeSync(fd);
  }
}

async function qvol(home: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  process.env.QVOL_HOME = home;
  process.env.QVOL_BACKUP_PASSPHRASE_COMMAND = 'printf %s "correct horse"';
  return runQvol(args);
}

async function ok(home: string, ...args: string[]): Promise<string> {
  const r = await qvol(home, ...args);
  expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(0);
  return r.out;
}

describe('qubes.xml as the registry', () => {
  it('lists, exports and backs up the Qubes VMs, and changes nothing of theirs', async () => {
    // A pool with Qubes' layout: qvol's own registry makes the files.
    const own = scratchDir('qx-own');
    const dir = join(scratchDir('qx-pool'), 'pool');
    await ok(own, 'pool', 'add', 'varlibqubes', 'file-reflink', '-o', `dir_path=${dir}`, '-o', 'setup_check=False');
    await ok(own, 'vm', 'create', '--class', 'template', '-P', 'varlibqubes', 'fedora');
    await ok(own, 'vm', 'create', '--class', 'app', '--template', 'fedora', '-P', 'varlibqubes', 'work');
    const devices = JSON.parse(await ok(own, 'vm', 'start', 'work', '--json')) as Array<{ volume: string; path: string }>;
    const fd = openSync(devices.find((d) => d.volume === 'private')!.path, 'r+');
    writeSync(fd, patternBuffer(MiB, 5), 0, MiB, 0);
    closeSync(fd);
    await ok(own, 'vm', 'stop', 'work');
    const sizes = JSON.parse(await ok(own, 'volume', 'info', 'work:private', '--json')) as { size: number };

    // Qubes' registry of those VMs, with what qvol leaves out.
    const xml = join(scratchDir('qx-xml'), 'qubes.xml');
    const domains = typicalDomains('varlibqubes', sizes.size).filter((d) => ['dom0', 'fedora', 'work'].includes(d.name!));
    domains.push({ class: 'AppVM', name: 'x_y;z', volumes: [] });
    const text = qubesXml([{ name: 'varlibqubes', driver: 'file-reflink', dir_path: dir }, { name: 'linux-kernel', driver: 'linux-kernel', dir_path: '/var/lib/qubes/vm-kernels' }], domains);
    writeFileSync(xml, text);
    const home = scratchDir('qx-home');

    const ls = await qvol(home, '--qubes-xml', xml, 'vm', 'ls', '--json');
    expect(ls.code, ls.err).toBe(0);
    expect((JSON.parse(ls.out) as Array<{ name: string; class: string }>).map((v) => [v.name, v.class])).toEqual([['fedora', 'template'], ['work', 'app']]);
    expect(ls.err).toMatch(/warning: .*qubes\.xml: left out VM x_y;z: Invalid VM name/);

    const info = JSON.parse(await ok(home, '--qubes-xml', xml, 'volume', 'info', 'work:private', '--json')) as { pool: string; vid: string };
    expect(info).toMatchObject({ pool: 'varlibqubes', vid: 'appvms/work/private' });
    const out = join(scratchDir('qx-out'), 'private.img');
    await ok(home, '--qubes-xml', xml, 'volume', 'export', 'work:private', '-f', 'raw', '-o', out);
    expect(head(out, MiB).equals(patternBuffer(MiB, 5))).toBe(true);

    // A backup of a Qubes VM, restored into qvol's own registry.
    const dest = join(scratchDir('qx-dest'), 'archive');
    await ok(home, '--qubes-xml', xml, 'backup', 'init', dest);
    await ok(home, '--qubes-xml', xml, 'backup', 'send', dest, 'fedora', 'work');
    const restored = scratchDir('qx-restored');
    await ok(restored, 'pool', 'add', 'varlibqubes', 'file-reflink', '-o', `dir_path=${join(scratchDir('qx-pool2'), 'pool')}`, '-o', 'setup_check=False');
    await ok(restored, 'backup', 'restore', dest, 'fedora', 'work');
    const back = join(scratchDir('qx-back'), 'private.img');
    await ok(restored, 'volume', 'export', 'work:private', '-f', 'raw', '-o', back);
    expect(head(back, MiB).equals(patternBuffer(MiB, 5))).toBe(true);

    // Every change is refused, and qubes.xml stays as qubesd wrote it.
    for (const args of [['vm', 'start', 'work'], ['volume', 'resize', 'work:private', '4M'], ['pool', 'add', 'p', 'file-reflink', '-o', 'dir_path=/tmp/p'],
      ['vm', 'create', '--class', 'standalone', 'new'], ['vm', 'rm', 'work'], ['recover'], ['backup', 'restore', dest, 'work', '--rename', 'work=work2']]) {
      const r = await qvol(home, '--qubes-xml', xml, ...args, '--json');
      expect(r.code, args.join(' ')).toBe(1);
      expect(JSON.parse(r.out || r.err).error.code, args.join(' ')).toBe('QUBES_REGISTRY');
    }
    expect(readFileSync(xml, 'utf8')).toBe(text);
    // --qubes-xml none: qvol's own registry, here empty.
    expect(JSON.parse(await ok(home, '--qubes-xml', 'none', 'vm', 'ls', '--json'))).toEqual([]);
  });
});
