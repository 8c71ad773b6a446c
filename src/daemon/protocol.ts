/**
 * The daemon's wire protocol (docs/daemon-protocol.md), version 1: one JSON object per line
 * each way over a Unix stream socket. A request is checked whole, field by field, before
 * anything acts on it; a reply carries either a result or the error's Qubes class, code and
 * message, so the bridge raises what qubesd's own drivers raise.
 */
import { QvolError } from '../errors/index.js';

export const PROTOCOL_VERSION = 1;

/** A request line longer than this is refused and the connection closed (its framing is lost). */
export const MAX_REQUEST_BYTES = 1 << 20;

/** Ids are the client's: a number or a short string, echoed in the reply. */
export type RequestId = number | string;

export interface Request {
  id: RequestId;
  method: string;
  params: Record<string, unknown>;
}

export interface ErrorBody {
  /** The Qubes exception class the bridge raises (StoragePoolException, QubesValueError...). */
  type: string;
  /** qvol's stable code (src/errors/codes.ts). */
  code: string;
  message: string;
  path?: string;
}

export type Reply = { v: number; id: RequestId | null; result: unknown } | { v: number; id: RequestId | null; error: ErrorBody };

/** A request that could not be read: answered with this error, under its id when it had one. */
export class ProtocolError extends QvolError {
  readonly requestId: RequestId | null;

  constructor(message: string, requestId: RequestId | null = null) {
    super('USAGE', message);
    this.requestId = requestId;
  }
}

function isId(value: unknown): value is RequestId {
  return (typeof value === 'number' && Number.isSafeInteger(value)) || (typeof value === 'string' && value.length > 0 && value.length <= 64);
}

/** Parses and checks one request line; throws ProtocolError saying what is wrong with it. */
export function parseRequest(line: string): Request {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    throw new ProtocolError('The request is not JSON.');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ProtocolError('The request is not a JSON object.');
  const r = doc as Record<string, unknown>;
  const id = isId(r.id) ? r.id : null;
  if (id === null) throw new ProtocolError('The request has no id (a whole number, or a string of 1 to 64 characters).');
  if (r.v !== PROTOCOL_VERSION) throw new ProtocolError(`The request speaks protocol ${JSON.stringify(r.v)}; this daemon speaks ${PROTOCOL_VERSION}.`, id);
  if (typeof r.method !== 'string' || !/^[a-z_]+(\.[a-z_]+)?$/.test(r.method)) throw new ProtocolError('The request has no method name.', id);
  const params = r.params ?? {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new ProtocolError('The request\'s params are not an object.', id);
  for (const key of Object.keys(r)) {
    if (!['v', 'id', 'method', 'params'].includes(key)) throw new ProtocolError(`The request has an unknown field '${key}'.`, id);
  }
  return { id, method: r.method, params: params as Record<string, unknown> };
}

/**
 * The Qubes class of an error: the nearest class in its chain that qubesd knows. An error
 * of qvol's own kinds (a copy, a stream) is a StoragePoolException to Qubes, as any
 * failure of a pool driver is; an error that is no QvolError is a bug, said as one.
 */
export function qubesType(err: unknown): string {
  const KNOWN = ['StoragePoolException', 'QubesValueError', 'QubesVMNotHaltedError', 'QubesVMError', 'QubesPoolInUseError',
    'RevisionNotFoundError', 'NotImplementedError', 'PassphraseError', 'CancelledError', 'ProtocolError', 'PermissionDenied', 'UsageError'];
  for (let proto = err instanceof QvolError ? Object.getPrototypeOf(err) : null; proto && proto !== QvolError.prototype; proto = Object.getPrototypeOf(proto)) {
    const name = (proto as { constructor: { name: string } }).constructor.name;
    if (KNOWN.includes(name)) return name;
  }
  return err instanceof QvolError ? 'StoragePoolException' : 'InternalError';
}

export function errorBody(err: unknown): ErrorBody {
  if (err instanceof QvolError) {
    return { type: qubesType(err), code: err.code, message: err.message, ...(err.path !== undefined ? { path: err.path } : {}) };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { type: 'InternalError', code: 'INTERNAL', message: `qvol daemon: ${message}` };
}

export function resultReply(id: RequestId, result: unknown): Reply {
  return { v: PROTOCOL_VERSION, id, result: result ?? null };
}

export function errorReply(id: RequestId | null, err: unknown): Reply {
  return { v: PROTOCOL_VERSION, id, error: errorBody(err) };
}
