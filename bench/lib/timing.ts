/** Runs `fn` once and returns its result with the elapsed wall time in nanoseconds. */
export async function timed<T>(fn: () => Promise<T> | T): Promise<{ value: T; elapsedNs: number }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { value, elapsedNs: Number(process.hrtime.bigint() - start) };
}
