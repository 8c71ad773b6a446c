/**
 * What the qubesd bridge adds to a volume's start and stop: the same file-reflink volume
 * started and stopped by the driver in this process, through `qvol daemon` by a Node
 * client on the socket, and through the Python bridge's Volume (qvol_qubes, one connection
 * per call, as qubesd would use it) under Debian's python3. Goal: the bridge adds < 2 ms.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPool } from '../../src/drivers/registry.js';
import { DaemonClient } from '../../test/helpers/daemon-client.js';
import { scratchDir } from '../fixtures.js';

export interface BridgeLatencyResult {
  /** Median milliseconds of a start plus a stop, each way. */
  ms: { 'in-process driver': number; 'qvol daemon, Node client': number; 'Python bridge (qvol_qubes)': number | undefined };
  /** The bridge's milliseconds over the in-process driver, per start or stop. */
  bridgeOverheadMs: number | undefined;
  /** Why the Python bridge was not measured, if it was not. */
  skipped?: string;
}

const REPO = join(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const MAIN = join(REPO, 'dist', 'cli', 'main.js');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One start + stop per line read, its milliseconds printed: rounds interleave with the others. */
const PYTHON_BRIDGE = `
import asyncio, sys, time
sys.path.insert(0, sys.argv[1])
from qvol_qubes.storage import ReflinkPool
class VM:
    name, dir_path_prefix = "bridge", "appvms"
pool = ReflinkPool(name="lat", dir_path=sys.argv[2], setup_check=False)
vol = pool.init_volume(VM(), {"name": "private", "vid": "appvms/bridge/private", "rw": True, "save_on_stop": True, "size": 1 << 20})
async def cycle():
    await vol.start()
    await vol.stop()
loop = asyncio.new_event_loop()  # one loop, as qubesd's
for line in sys.stdin:
    t0 = time.perf_counter()
    loop.run_until_complete(cycle())
    print((time.perf_counter() - t0) * 1000, flush=True)
`;

async function msOf(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function bridgeLatency(rounds: number): Promise<BridgeLatencyResult> {
  const scratch = scratchDir('bridge');
  const dir = join(scratch.dir, 'pool');
  const config = { name: 'lat', driver: 'file-reflink', dir_path: dir, setup_check: false };
  const volume = { name: 'private', vid: 'appvms/bridge/private', vm: 'bridge', rw: true, save_on_stop: true, snap_on_start: false, revisions_to_keep: 1, size: 2 ** 20 };
  const socket = join(scratch.dir, 'daemon.sock');
  const daemon = spawn(process.execPath, [MAIN, 'daemon', '--socket', socket], { stdio: 'ignore' });
  try {
    const pool = await createPool(config);
    await pool.setup();
    const v = pool.initVolume({ name: 'bridge', dirPathPrefix: 'appvms' }, { name: 'private', vid: volume.vid, rw: true, saveOnStop: true, size: volume.size });
    await v.create();
    const client = await DaemonClient.whenAnswering(socket);
    let skipped: string | undefined;
    let python: ReturnType<typeof spawn> | undefined;
    let waiting: ((line: string) => void) | undefined;
    if (!existsSync('/usr/bin/python3')) skipped = 'no /usr/bin/python3';
    else {
      const script = join(scratch.dir, 'bridge.py');
      writeFileSync(script, PYTHON_BRIDGE);
      python = spawn('/usr/bin/python3', [script, join(REPO, 'integrations', 'qubes'), dir], {
        env: { ...process.env, QVOL_DAEMON_SOCKET: socket }, stdio: ['pipe', 'pipe', 'inherit'],
      });
      let buffered = '';
      python.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        for (let n = buffered.indexOf('\n'); n >= 0; n = buffered.indexOf('\n')) {
          const line = buffered.slice(0, n);
          buffered = buffered.slice(n + 1);
          const w = waiting;
          waiting = undefined;
          w?.(line);
        }
      });
    }
    const bridgeRound = () => new Promise<number>((resolve) => {
      waiting = (line) => resolve(Number(line));
      python!.stdin!.write('go\n');
    });
    // Each round runs the three ways in turn, so a busy moment of the machine falls on all.
    const inProcess: number[] = [];
    const viaDaemon: number[] = [];
    const viaBridge: number[] = [];
    const on = { pool: config, volume };
    for (let i = 0; i <= rounds; i++) {
      const a = await msOf(async () => { await v.start(); await v.stop(); });
      const b = await msOf(async () => { await client.call('volume.start', on); await client.call('volume.stop', on); });
      const c = python ? await bridgeRound() : undefined;
      if (i === 0) continue;
      inProcess.push(a);
      viaDaemon.push(b);
      if (c !== undefined) viaBridge.push(c);
    }
    client.close();
    python?.stdin!.end();
    const bridge = viaBridge.length > 0 ? median(viaBridge) : undefined;
    const base = median(inProcess);
    return {
      ms: { 'in-process driver': base, 'qvol daemon, Node client': median(viaDaemon), 'Python bridge (qvol_qubes)': bridge },
      bridgeOverheadMs: bridge === undefined ? undefined : (bridge - base) / 2,
      ...(skipped ? { skipped } : {}),
    };
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    scratch.remove();
  }
}
