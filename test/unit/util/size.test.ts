import { describe, expect, it } from 'vitest';
import { formatBytes, parseSize } from '../../../src/util/size.js';
import { UsageError } from '../../../src/errors/index.js';

describe('parseSize', () => {
  it.each([
    ['4096', 4096],
    ['512M', 512 * 2 ** 20],
    ['10G', 10 * 2 ** 30],
    ['10GiB', 10 * 2 ** 30],
    ['1.5k', 1536],
    [' 2t ', 2 * 2 ** 40],
    ['0', 0],
  ])('reads %s', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', '-1', '10X', 'G', '1e3', '0.3', '99999999P'])('refuses %j with a UsageError naming it', (text) => {
    expect(() => parseSize(text, '--size')).toThrow(UsageError);
    expect(() => parseSize(text, '--size')).toThrow(/--size/);
  });
});

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(4 * 2 ** 30)).toBe('4.00 GiB');
    expect(formatBytes(409 * 2 ** 20)).toBe('409.0 MiB');
  });
});
