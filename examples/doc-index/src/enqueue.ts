/**
 * `enqueue`: one message per PDF on a queue, for `serve` processes to index. Paths are expanded
 * like `index` does (folders → `*.pdf`, recursively) and sent absolute, so any `serve` that sees
 * the same file system can take them.
 *
 * @module
 */
import { type BrokerSpec, describeSpec } from './broker-url.js';
import { UsageError } from './errors.js';
import { openProducer } from './queue.js';
import type { DocumentMessage } from './serve.js';
import { requirePdfs } from './sources.js';

const BATCH = 500;

/**
 * Sends `{"path": "<absolute path>"}` for every PDF under `inputs`; returns how many.
 *
 * @throws UsageError when an input does not exist, the inputs hold no PDF, or the broker cannot
 *   be reached.
 * @example
 * ```ts
 * await runEnqueue(['docs/'], parseBrokerUrl('redis://127.0.0.1:6379/docs', '--to'));
 * ```
 */
export async function runEnqueue(inputs: readonly string[], spec: BrokerSpec): Promise<number> {
  const paths = await requirePdfs(inputs);
  const producer = await openProducer(spec).catch((err: Error) => {
    throw new UsageError(`cannot open ${describeSpec(spec)}: ${err.message}`);
  });
  try {
    for (let i = 0; i < paths.length; i += BATCH) {
      const batch: DocumentMessage[] = paths.slice(i, i + BATCH).map((path) => ({ path }));
      await producer.send(batch);
    }
    return paths.length;
  } finally {
    await producer.close();
  }
}
