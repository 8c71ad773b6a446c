/** The peers a user would otherwise reach for, each as the exact command line measured. */
import { timedCommand, type Contender } from './harness.js';

export function cp(...flags: string[]): Contender {
  return {
    name: ['cp', ...flags].join(' '),
    run: (src, dst) => ({ seconds: timedCommand('cp', [...flags, src, dst], dst) }),
  };
}

export function qemuImgConvert(...flags: string[]): Contender {
  return {
    name: ['qemu-img convert', ...flags].join(' '),
    run: (src, dst) => ({ seconds: timedCommand('qemu-img', ['convert', ...flags, '-f', 'raw', '-O', 'raw', src, dst], dst) }),
  };
}

export function ddSparse(extra: string[] = []): Contender {
  return {
    name: ['dd bs=1M conv=sparse', ...extra].join(' '),
    run: (src, dst) => ({
      seconds: timedCommand('dd', [`if=${src}`, `of=${dst}`, 'bs=1M', `conv=${['sparse', ...extra].join(',')}`, 'status=none'], dst),
    }),
  };
}
