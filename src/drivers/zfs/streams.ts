/**
 * The `zfs` transfer format: the `zfs send` stream of a volume's committed snapshot (or a
 * revision; incremental with `since`), and `zfs receive` of one. The model has already taken
 * the lock, checked the preconditions and made the data reachable; the fds go to zfs as they
 * are, so no JavaScript is in the data path.
 */
import { StreamError, UsageError } from '../../errors/index.js';
import { summarize, type StreamSummary } from '../../io/streams/format.js';
import type { NativeFormat, NativeReceiveOptions, NativeSendOptions } from '../../model/features.js';
import { destroyDataset, ensureParent, properties } from './datasets.js';
import type { ZfsVolume } from './volume.js';
import { sentSize, zfsArgv, zfsReceiveFrom, zfsSendTo } from './zfs-command.js';
import { zvolSize } from './zvol-size.js';

async function send(volume: ZfsVolume, outFd: number, options: NativeSendOptions): Promise<StreamSummary> {
  const started = process.hrtime.bigint();
  const from = options.since === undefined ? undefined : await volume.snapshotNamed(options.since);
  return volume.withSnapshot(options.revision, async (snapshot) => {
    const bytes = sentSize(await zfsSendTo(zfsArgv.send(snapshot, from), outFd, options.signal));
    const props = await properties(snapshot, ['logicalreferenced']);
    const data = Math.min(volume.size, Number(props?.logicalreferenced ?? 0));
    return summarize('zfs', { bytes, size: volume.size, dataBytes: data, holeBytes: volume.size - data, method: from ? 'zfs send -i' : 'zfs send' }, started);
  });
}

/**
 * A full stream is received beside the volume and swapped in only when whole (ZFS receives
 * all or nothing), its snapshot kept as the committed state so later incremental streams
 * apply; `incremental` applies the stream in place, which ZFS allows only when the volume's
 * newest snapshot is the stream's base. `size`, when given, must be the stream's volume size.
 */
async function receive(volume: ZfsVolume, inFd: number, options: NativeReceiveOptions): Promise<StreamSummary> {
  if (options.incremental && options.size !== undefined) {
    throw new UsageError('A size does not apply to an incremental stream: it changes a volume in place.');
  }
  const started = process.hrtime.bigint();
  const target = options.incremental ? volume.vid : volume.pool.helper('importing', volume.vid);
  await ensureParent(target);
  await zfsReceiveFrom(zfsArgv.receive(target), inFd, options.signal);
  const props = await properties(target, ['volsize', 'logicalreferenced']);
  const volsize = Number(props?.volsize ?? 0);
  if (options.size !== undefined && zvolSize(options.size) !== volsize) {
    await destroyDataset(target);
    throw new StreamError('STREAM_SIZE_MISMATCH', `Import into ${volume.vid} refused: the stream holds a ${volsize}-byte volume but the size given is ${options.size}; the volume is unchanged.`, 0);
  }
  if (options.incremental) await volume.commitReceived(true);
  else await volume.replaceWith(target, { received: true });
  const data = Math.min(volsize, Number(props?.logicalreferenced ?? 0));
  return summarize('zfs', { bytes: 0, size: volsize, dataBytes: data, holeBytes: volsize - data, method: 'zfs receive' }, started);
}

export const ZFS_FORMAT: NativeFormat<ZfsVolume> = { name: 'zfs', send, receive };
