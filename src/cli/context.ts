/** What every registry verb shares: opening the app, VM:VOLUME arguments, tables. */
import { existsSync } from 'node:fs';
import type { OpenOptions, QvolApp } from '../app/app.js';
import { UsageError } from '../errors/index.js';
import type { CliIo } from './output.js';
import { terminalPassphrase } from './passphrase-prompt.js';

/**
 * Opens the library for a verb. It is imported here, on first use, and not at start-up:
 * `qvol --version` and `--help` load only commander and the verb definitions.
 */
export async function openApp<T>(io: CliIo, fn: (app: QvolApp) => Promise<T>, options: OpenOptions = {}): Promise<T> {
  const { QvolApp: App } = await import('../app/app.js');
  const passphrase = terminalPassphrase();
  const qubesXml = await qubesXmlChoice(io.qubesXml);
  return App.with({
    warn: (m) => io.stderr.write(`qvol: warning: ${m}\n`),
    ...(passphrase ? { drivers: { passphrase } } : {}),
    ...(qubesXml === undefined ? {} : { qubesXml }),
    ...options,
  }, fn);
}

/**
 * The registry a command reads: `--qubes-xml PATH`, or Qubes' own when this is a Qubes dom0
 * (the file exists), or with `--qubes-xml none` (and anywhere else) qvol's own.
 */
async function qubesXmlChoice(given: string | undefined): Promise<string | undefined> {
  if (given === 'none') return undefined;
  if (given !== undefined) return given;
  const { DEFAULT_QUBES_XML } = await import('../qubes/qubes-xml.js');
  return existsSync(DEFAULT_QUBES_XML) ? DEFAULT_QUBES_XML : undefined;
}

/** `work:private` -> ['work', 'private']. */
export function parseVolumeRef(ref: string): [string, string] {
  const i = ref.indexOf(':');
  if (i <= 0 || i === ref.length - 1) throw new UsageError(`Invalid volume '${ref}': write it as VM:VOLUME, such as work:private.`);
  return [ref.slice(0, i), ref.slice(i + 1)];
}

/** Left-aligned columns, two spaces apart, with a header row. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
