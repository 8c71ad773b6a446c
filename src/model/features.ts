/**
 * What a driver's volumes can do, declared rather than sniffed (Proxmox's
 * `volume_has_feature` and `volume_transfer_formats`): callers ask `volume.has(feature)` and
 * `transferFormats(source, target)` instead of testing for methods or classes.
 */
import type { StreamSummary } from '../io/streams/format.js';

export type VolumeFeature =
  /** Committed states are kept as revisions, and revert() goes back to one. */
  | 'revisions'
  /** resize() while the VM runs, seen by the VM at once. */
  | 'online-resize'
  /** resize() to a smaller size. */
  | 'shrink'
  /**
   * export() gives a point-in-time source that no writer changes while it is read (the
   * committed image, or a clone of a snapshot): what streams and backup read.
   */
  | 'stable-read'
  /** The ranges changed since a named base state (for incremental backup; none yet). */
  | 'changed-ranges';

/**
 * The formats every volume moves in, through export() and import_data(): the plain bytes
 * (`raw`) and an Android sparse image (`sparse`). Drivers add their storage's own.
 */
export const GENERIC_FORMATS = ['raw', 'sparse'] as const;
export type GenericFormat = (typeof GENERIC_FORMATS)[number];

/** A format the driver moves itself, such as `zfs` (zfs send / zfs receive). */
export interface NativeFormat<V> {
  readonly name: string;
  /** Writes the committed state (or `revision`, or the change `since` a base) to `outFd`. */
  send(volume: V, outFd: number, options: NativeSendOptions): Promise<StreamSummary>;
  /** Replaces the stopped volume's data from `inFd` (or applies an incremental stream). */
  receive(volume: V, inFd: number, options: NativeReceiveOptions): Promise<StreamSummary>;
}

export interface NativeSendOptions {
  revision?: string | undefined;
  since?: string | undefined;
  /** Ends the transfer early: it fails as CANCELLED and leaves the volume unchanged. */
  signal?: AbortSignal | undefined;
}

export interface NativeReceiveOptions {
  /** The size the caller declares; the stream must hold exactly that. */
  size?: number | undefined;
  /** Apply an incremental stream in place. */
  incremental?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** The capability declaration of one driver's volumes. */
export interface VolumeCapabilities<V = unknown> {
  readonly features: ReadonlySet<VolumeFeature>;
  /** Formats of the driver's own, by name, each both exported and imported. */
  readonly nativeFormats: ReadonlyMap<string, NativeFormat<V>>;
}

/** Formats a volume exports (or imports): the generic ones, then its driver's own. */
export function formatsOf(capabilities: VolumeCapabilities): string[] {
  return [...GENERIC_FORMATS, ...capabilities.nativeFormats.keys()];
}

/** Formats in which `source` can be exported and `target` imported: export ∩ import. */
export function commonFormats(source: VolumeCapabilities, target: VolumeCapabilities): string[] {
  const imports = new Set(formatsOf(target));
  return formatsOf(source).filter((f) => imports.has(f));
}
