/** The registry's state file: today's format (version 1) still loads, and names are just names. */
import { describe, expect, it } from 'vitest';
import { QvolError } from '../../../src/errors/index.js';
import { STATE_VERSION, parseState } from '../../../src/app/state.js';

/** A state file as qvol 0.1.0 (state version 1) wrote it. */
const V1 = `{
  "version": 1,
  "pools": {
    "default": { "name": "default", "driver": "file-reflink", "revisions_to_keep": 1, "ephemeral_volatile": false, "dir_path": "/var/lib/qvol/pools/default" }
  },
  "vms": {
    "debian": {
      "name": "debian",
      "class": "template",
      "volumes": {
        "root": { "name": "root", "pool": "default", "vid": "vm-templates/debian/root", "revisions_to_keep": 1, "rw": true, "save_on_stop": true, "snap_on_start": false, "size": 10737418240 }
      }
    },
    "work": {
      "name": "work",
      "class": "app",
      "template": "debian",
      "volumes": {
        "root": { "name": "root", "pool": "default", "vid": "appvms/work/root", "revisions_to_keep": 1, "rw": true, "save_on_stop": false, "snap_on_start": true, "size": 10737418240, "source": "vm-templates/debian/root" }
      }
    }
  }
}`;

describe('state file', () => {
  it('loads version 1 and brings it to the current version', () => {
    const state = parseState(V1, '/x/state.json');
    expect(state.version).toBe(STATE_VERSION);
    expect(Object.keys(state.vms)).toEqual(['debian', 'work']);
    expect(state.vms.work!.template).toBe('debian');
    expect(state.vms.work!.volumes.root!.source).toBe('vm-templates/debian/root');
    expect(state.pools.default!.dir_path).toBe('/var/lib/qvol/pools/default');
  });

  it('refuses a newer version and a broken file, naming the file', () => {
    const newer = V1.replace('"version": 1', `"version": ${STATE_VERSION + 1}`);
    expect(() => parseState(newer, '/x/state.json')).toThrow(/written by a newer qvol/);
    for (const bad of ['{', '{"version": "1"}', '{"version": 2, "pools": {}}', '{"version": 2, "pools": {}, "vms": {"a": {"name": "b", "volumes": {}}}}']) {
      const err = (() => { try { parseState(bad, '/x/state.json'); } catch (e) { return e; } })() as QvolError;
      expect(err.code).toBe('STATE_CORRUPT');
      expect(err.path).toBe('/x/state.json');
    }
  });

  it('treats names such as constructor and __proto__ as names', () => {
    const state = parseState('{"version": 2, "pools": {}, "vms": {}}', 'state.json');
    expect(state.vms.constructor).toBeUndefined();
    expect(Object.hasOwn(state.vms, 'toString')).toBe(false);
    const odd = parseState('{"version": 2, "pools": {}, "vms": {"__proto__": {"name": "__proto__", "class": "standalone", "volumes": {}}}}', 'state.json');
    expect(Object.keys(odd.vms)).toEqual(['__proto__']);
    expect(odd.vms.__proto__!.class).toBe('standalone');
  });
});
