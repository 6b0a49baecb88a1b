// Pool: a long-lived service pool. `await submit()` is the backpressure; drain on shutdown.
import { Pool, PoolClosedError, shutdownOn } from 'sluice';

export async function main(jobMs = 2): Promise<{ succeeded: number; failed: number }> {
  const pool = new Pool(
    async (order: { id: number; amount: number }) => {
      await new Promise((resolve) => setTimeout(resolve, jobMs));
      if (order.amount < 0) throw new RangeError(`order ${order.id}: negative amount`);
      return order.amount * 100;
    },
    { concurrency: 8, queueSize: 16, timeout: 5_000 },
  );
  const uninstall = shutdownOn(['SIGTERM', 'SIGINT'], () => pool.drain({ timeout: 10_000 }));
  try {
    for (let id = 0; id < 100; id++) {
      const task = await pool.submit({ id, amount: id % 10 === 9 ? -1 : id }); // waits while full
      void task.result; // settles as { ok, value } or { ok: false, error }; never rejects
    }
  } catch (error) {
    // SIGTERM closed the pool while a submit waited for room: stop producing, and let the
    // drain finish the jobs already accepted. Anything else is a bug: let it through.
    if (!(error instanceof PoolClosedError)) throw error;
  }
  await pool.drain();
  uninstall();
  const { succeeded, failed } = pool.stats();
  return { succeeded, failed };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await main());
