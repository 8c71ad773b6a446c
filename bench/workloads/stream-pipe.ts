/**
 * Workload: a 4 GiB volume with 10 % data exported into a pipe and imported into another
 * pool's filesystem (host ext4 → XFS loop mount), as a migration or a Qubes admin import
 * does. qvol's sparse and raw formats against Proxmox's raw+size style (`dd bs=4k | dd
 * conv=sparse bs=64k`) and against `pv` (splice) feeding the same sparse dd writer.
 * `qemu-img convert -O raw SRC /dev/stdout` cannot take part: qemu-img 7.2 (Debian 12)
 * refuses a pipe as its target ("Could not resize file"); see the closing note.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { sh, type Contender, type Run, type Workload } from '../harness.js';
import { hostToXfsPrepared } from './files.js';

function pipeline(name: string, script: (src: string, dst: string) => string): Contender {
  return {
    name,
    run(src, dst): Run {
      const t0 = process.hrtime.bigint();
      execFileSync('bash', ['-o', 'pipefail', '-c', script(src, dst)], { stdio: ['ignore', 'ignore', 'pipe'] });
      sh('sync', [dst]);
      return { seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
    },
  };
}

function qvolStream(format: 'raw' | 'sparse'): Contender {
  return {
    name: `qvol ${format} export | import`,
    ours: true,
    run(src, dst) {
      const child = join(import.meta.dirname, '..', 'stream-child.js');
      return JSON.parse(execFileSync(process.execPath, [child, src, dst, format], { encoding: 'utf8' })) as Run;
    },
  };
}

const sparseWriter = (dst: string) => `dd of=${dst} bs=64k iflag=fullblock conv=sparse status=none`;

export function streamPipe(format: 'raw' | 'sparse'): Workload {
  return {
    name: `stream ${format}: export | pipe | import, ext4 -> XFS`,
    goal: format === 'sparse' ? 'qvol <= 0.3x the dd pipeline; bytes through the pipe <= 1.01x the data' : 'qvol within 1.2x of pv',
    limit: { ratio: format === 'sparse' ? 0.3 : 1.2 },
    setup(quick) {
      const peer = format === 'sparse'
        ? pipeline('dd bs=4k | dd conv=sparse bs=64k', (s, d) => `dd if=${s} bs=4k status=none | ${sparseWriter(d)}`)
        : pipeline('pv | dd conv=sparse bs=64k', (s, d) => `pv -q ${s} | ${sparseWriter(d)}`);
      return hostToXfsPrepared('stream', quick, 3, [qvolStream(format), peer]);
    },
  };
}
