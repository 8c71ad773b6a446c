import { describe, expect, it } from 'vitest';
import { native } from '../../../src/native/binding.js';
import { capabilities } from '../../../src/io/capabilities.js';

const impls: Array<'memeqzero' | 'avx2'> = ['memeqzero', ...(capabilities().avx2 ? ['avx2' as const] : [])];

describe.each(impls)('isZero (%s)', (impl) => {
  it('finds zeros at every length, and a single set byte anywhere', () => {
    for (const len of [0, 1, 15, 16, 17, 127, 128, 129, 255, 4096, 4097, 65536 + 3]) {
      const buf = Buffer.alloc(len);
      expect(native.isZeroSync(buf, impl)).toBe(true);
      for (const at of new Set([0, len >> 1, len - 1, Math.min(len - 1, 129)])) {
        if (at < 0 || at >= len) continue;
        buf[at] = 1;
        expect(native.isZeroSync(buf, impl), `len ${len} byte ${at}`).toBe(false);
        buf[at] = 0;
      }
    }
  });

  it('is not fooled by an unaligned view', () => {
    const big = Buffer.alloc(8192 + 1);
    big[0] = 0xff;
    expect(native.isZeroSync(big.subarray(1), impl)).toBe(true);
    big[8192] = 1;
    expect(native.isZeroSync(big.subarray(1), impl)).toBe(false);
  });

  // Its speed is measured by the benchmark (npm run bench: "zero detection"), not asserted
  // here, where a loaded or emulated machine would make it flaky.
});

describe('capabilities', () => {
  it('reports the kernel and the zero-scan implementation in use', () => {
    const caps = capabilities();
    expect(caps.kernel).toMatch(/^\d+\.\d+/);
    expect(caps.zeroScan).toBe(caps.avx2 ? 'avx2' : 'memeqzero');
  });
});

describe('argument checks', () => {
  it('throws TypeError and RangeError instead of crashing', () => {
    expect(() => native.isZeroSync('x' as unknown as Buffer)).toThrow(TypeError);
    expect(() => native.mapExtents(-1, 0, 0)).toThrow(RangeError);
    expect(() => native.mapExtents(0, -5, 0)).toThrow(RangeError);
    expect(() => native.mapExtents(0, 2 ** 60, 0)).toThrow(RangeError);
    expect(() => native.zeroScanRateSync(100, 1, 'auto')).toThrow(RangeError);
  });
});
