/** The daemon's request checks and error mapping (src/daemon/protocol.ts, session.ts). */
import { describe, expect, it } from 'vitest';
import { errorBody, parseRequest, ProtocolError, qubesType } from '../../../src/daemon/protocol.js';
import { checkPoolConfig, checkVolumeSpec } from '../../../src/daemon/session.js';
import { QubesValueError, QvolError, RevisionNotFoundError, StoragePoolException, UnsafePathError } from '../../../src/errors/index.js';

describe('daemon requests', () => {
  it('takes a well-formed request', () => {
    expect(parseRequest('{"v":1,"id":"a","method":"volume.start","params":{"x":1}}')).toEqual({ id: 'a', method: 'volume.start', params: { x: 1 } });
    expect(parseRequest('{"v":1,"id":3,"method":"hello"}')).toEqual({ id: 3, method: 'hello', params: {} });
  });

  it('refuses every other shape, under the request\'s id when it had one', () => {
    const cases: Array<[string, string, string | number | null]> = [
      ['[]', 'not a JSON object', null],
      ['{"v":1,"method":"hello"}', 'no id', null],
      ['{"v":1,"id":1.5,"method":"hello"}', 'no id', null],
      [`{"v":1,"id":"${'x'.repeat(65)}","method":"hello"}`, 'no id', null],
      ['{"id":1,"method":"hello"}', 'speaks protocol undefined', 1],
      ['{"v":1,"id":1,"method":"x y"}', 'no method name', 1],
      ['{"v":1,"id":1,"method":"hello","params":[]}', 'params are not an object', 1],
      ['{"v":1,"id":1,"method":"hello","x":0}', 'unknown field \'x\'', 1],
    ];
    for (const [line, message, id] of cases) {
      try {
        parseRequest(line);
        expect.fail(line);
      } catch (err) {
        expect(err, line).toBeInstanceOf(ProtocolError);
        expect((err as ProtocolError).message).toContain(message);
        expect((err as ProtocolError).requestId).toBe(id);
      }
    }
  });

  it('names the Qubes class of an error, the nearest one qubesd knows', () => {
    expect(qubesType(new StoragePoolException('x'))).toBe('StoragePoolException');
    expect(qubesType(new UnsafePathError('x'))).toBe('StoragePoolException');
    expect(qubesType(new QubesValueError('x'))).toBe('QubesValueError');
    expect(qubesType(new RevisionNotFoundError('v', 'r'))).toBe('RevisionNotFoundError');
    expect(qubesType(new QvolError('NO_SPACE', 'x'))).toBe('StoragePoolException');
    expect(errorBody(new TypeError('oops'))).toEqual({ type: 'InternalError', code: 'INTERNAL', message: 'qvol daemon: oops' });
  });

  it('checks pool and volume configs field by field', () => {
    expect(() => checkPoolConfig({ name: 'p' })).toThrow('The call\'s pool has no name or driver.');
    expect(() => checkPoolConfig({ name: 'p', driver: 'x', nested: {} })).toThrow('pool option nested is not a string, number or boolean');
    expect(() => checkPoolConfig({ name: 'p', driver: 'x', 'Bad-Key': 1 })).toThrow('pool has an option named "Bad-Key"');
    expect(checkVolumeSpec({ name: 'root', vid: 'a/b', size: 5 })).toMatchObject({ rw: false, revisions_to_keep: 1, size: 5 });
    expect(() => checkVolumeSpec({ name: 'root', vid: 'a/b', rw: 'yes' })).toThrow('volume\'s rw is not true or false');
    expect(() => checkVolumeSpec({ name: 'root', vid: 'a/b', size: -1 })).toThrow('Invalid size -1');
    const source = { name: 'root', vid: 't/root' };
    expect(() => checkVolumeSpec({ name: 'root', vid: 'a/b', source: { ...source, source } })).toThrow('source has a source of its own');
  });
});
