/** What a case can tell the parent while it runs. */
export interface CaseContext {
  /**
   * Has the parent read the child's RSS now and store it under `label` (e.g. 'start' after
   * warm-up); resolves once the parent has taken the reading.
   */
  mark(label: string): Promise<void>;
}

/** One benchmark case: runs inside an isolated child and returns a JSON-serialisable value. */
export type CaseFn = (params: never, ctx: CaseContext) => unknown;

/** The cases a suite exports, by name: `export const cases = { floor, runPool } satisfies Cases;` */
export type Cases = Record<string, CaseFn>;

/** Messages from a child to its parent over the fork IPC channel. */
export type ChildMessage =
  | { type: 'mark'; label: string }
  | { type: 'result'; value: unknown; maxRssBytes: number }
  | { type: 'error'; message: string };

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) throw new Error('serveChild must run in a forked child (no IPC channel)');
    process.send(message, undefined, {}, () => resolve());
  });
}

/** Messages from the parent: the acknowledgement of a mark. */
export type ParentMessage = { type: 'marked'; label: string };

function mark(label: string): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (message: ParentMessage) => {
      if (message.type !== 'marked' || message.label !== label) return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
    void send({ type: 'mark', label });
  });
}

/**
 * Entry of an isolated child: runs `cases[argv[2]]` with the JSON params in argv[3], sends the
 * value and the process's lifetime peak RSS (`process.resourceUsage().maxRSS`) to the parent,
 * then disconnects so the child exits on its own.
 */
export async function serveChild(cases: Cases): Promise<void> {
  const [name = '', json = '{}'] = process.argv.slice(2);
  const fn = cases[name];
  try {
    if (!fn) throw new Error(`unknown case '${name}'; known: ${Object.keys(cases).join(', ')}`);
    const ctx: CaseContext = { mark };
    const value = await fn(JSON.parse(json) as never, ctx);
    await send({ type: 'result', value, maxRssBytes: process.resourceUsage().maxRSS * 1024 });
  } catch (err) {
    await send({
      type: 'error',
      message: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
    process.exitCode = 1;
  }
  process.disconnect();
}
