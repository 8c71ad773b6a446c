/**
 * Qubes' `isodate`: UTC, no offset suffix, `YYYY-MM-DDTHH:MM:SS`, with microseconds only when
 * the time has a fraction.
 */
export function isodate(seconds: number): string {
  const whole = Math.floor(seconds);
  const base = new Date(whole * 1000).toISOString().slice(0, 19);
  const micros = Math.round((seconds - whole) * 1e6);
  return micros === 0 ? base : `${base}.${String(micros).padStart(6, '0')}`;
}
