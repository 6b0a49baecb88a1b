/**
 * `sluice-doc-index dead-letters list|replay|purge --from <queue URL>`: the documents `serve`
 * gave up on, through sluice's dead-letter operations (the broker's client is imported only
 * here, when the command runs).
 *
 *   list    one page, newest failure first: id, failure times, attempts, code, error, path
 *   replay  back to the queue, as new messages (their delivery count starts at 1 again)
 *   purge   deleted for good
 *
 * replay and purge act on `--all`, on `--id` (repeatable), or on the letters matching `--code`
 * / `--error` / `--before` (all given must hold); with none of them they refuse to run, so a bare
 * `purge` never deletes everything by accident.
 *
 * @module
 */
import type { DeadLetter, DeadLetterFilter, DeadLetterSelection, DeadLetters } from 'sluice/redis';
import { type BrokerSpec, describeSpec } from './broker-url.js';
import { UsageError } from './errors.js';

/** How long a wrong broker URL may take to fail, ms. */
const CONNECT_TIMEOUT = 5000;

/** The flags of `replay` and `purge` that select letters. */
export interface SelectFlags {
  all?: boolean;
  id?: string[];
  code?: string;
  error?: string;
  before?: Date;
}

/** The dead letters of the queue `spec` names. */
export async function openDeadLetters(spec: BrokerSpec): Promise<DeadLetters> {
  try {
    switch (spec.kind) {
      case 'redis': {
        const { redisDeadLetters } = await import('sluice/redis');
        return await redisDeadLetters({
          url: spec.url,
          stream: spec.stream,
          connectTimeout: CONNECT_TIMEOUT,
        });
      }
      case 'nats': {
        const { natsDeadLetters } = await import('sluice/nats');
        return await natsDeadLetters({
          servers: spec.servers,
          stream: spec.stream,
          connectTimeout: CONNECT_TIMEOUT,
        });
      }
      case 'amqp': {
        const { amqpDeadLetters } = await import('sluice/amqp');
        return await amqpDeadLetters({
          url: spec.url,
          queue: spec.queue,
          connectTimeout: CONNECT_TIMEOUT,
        });
      }
      case 'postgres': {
        const { postgresDeadLetters } = await import('sluice/postgres');
        return await postgresDeadLetters({
          connectionString: spec.url,
          table: spec.table,
          connectTimeout: CONNECT_TIMEOUT,
        });
      }
    }
  } catch (err) {
    throw new UsageError(
      `cannot open the dead letters of ${describeSpec(spec)}: ${(err as Error).message}`,
    );
  }
}

/**
 * The selection the flags describe.
 * @throws UsageError when none is given, or `--all` is mixed with another.
 */
export function selectionOf(flags: SelectFlags, command: string): DeadLetterSelection {
  const filter: DeadLetterFilter = {
    ...(flags.code === undefined ? {} : { code: flags.code }),
    ...(flags.error === undefined ? {} : { error: flags.error }),
    ...(flags.before === undefined ? {} : { failedBefore: flags.before }),
  };
  const kinds = [flags.all === true, (flags.id?.length ?? 0) > 0, Object.keys(filter).length > 0];
  const given = kinds.filter(Boolean).length;
  if (given === 0) {
    throw new UsageError(
      `${command} needs --all, --id <id> or a filter (--code, --error, --before)`,
    );
  }
  if (given > 1) throw new UsageError(`${command}: give only one of --all, --id or filters`);
  if (flags.all) return 'all';
  return flags.id?.length ? flags.id : filter;
}

/** A letter as JSON: the body as text (the documents' messages are JSON), times as ISO. */
export function letterJson(letter: DeadLetter) {
  return {
    id: letter.id,
    messageId: letter.messageId ?? null,
    error: letter.error,
    code: letter.code ?? null,
    attempts: letter.attempts,
    firstFailedAt: letter.firstFailedAt?.toISOString() ?? null,
    lastFailedAt: letter.lastFailedAt.toISOString(),
    body: new TextDecoder().decode(letter.body),
  };
}

/** One letter per block: id, times and attempts, then the error and the document. */
export function formatLetter(letter: DeadLetter): string {
  const j = letterJson(letter);
  let what = j.body;
  try {
    const path = (JSON.parse(j.body) as { path?: unknown }).path;
    if (typeof path === 'string') what = path;
  } catch {
    // not JSON: shown as it is
  }
  if (what.length > 200) what = `${what.slice(0, 199)}…`;
  const first = j.firstFailedAt ? `  first failed ${j.firstFailedAt}` : '';
  const message = j.messageId ? `  message ${j.messageId}` : '';
  return (
    `${j.id}${message}  failed ${j.lastFailedAt}${first}  attempts ${j.attempts}` +
    `${j.code ? `  code ${j.code}` : ''}\n    error: ${j.error}\n    ${what}`
  );
}

/** `dead-letters list`: one page; the cursor of the next one is printed last (or in the JSON). */
export async function listCommand(flags: {
  from: BrokerSpec;
  limit: number;
  cursor?: string;
  json?: boolean;
}): Promise<void> {
  const dead = await openDeadLetters(flags.from);
  try {
    const page = await dead
      .list({ limit: flags.limit, ...(flags.cursor ? { cursor: flags.cursor } : {}) })
      .catch((err: Error & { code?: string }) => {
        // A bad --cursor or --limit: the list's options are refused as options.
        if (err.code === 'ERR_INVALID_OPTION') throw new UsageError(err.message);
        throw err;
      });
    if (flags.json) {
      const json = { letters: page.letters.map(letterJson), next: page.next ?? null };
      process.stdout.write(`${JSON.stringify(json)}\n`);
      return;
    }
    if (page.letters.length === 0) {
      process.stdout.write(`No dead letters on ${describeSpec(flags.from)}.\n`);
      return;
    }
    process.stdout.write(`${page.letters.map(formatLetter).join('\n')}\n`);
    if (page.next) process.stdout.write(`more: --cursor ${page.next}\n`);
  } finally {
    await dead.close();
  }
}

/** `dead-letters replay` / `dead-letters purge`: prints how many letters it acted on. */
export async function actCommand(
  action: 'replay' | 'purge',
  flags: SelectFlags & { from: BrokerSpec; json?: boolean },
): Promise<void> {
  const which = selectionOf(flags, action);
  const dead = await openDeadLetters(flags.from);
  try {
    const count = action === 'replay' ? await dead.replay(which) : await dead.purge(which);
    const verb = action === 'replay' ? 'replayed' : 'purged';
    if (flags.json) process.stdout.write(`${JSON.stringify({ [verb]: count })}\n`);
    else {
      const where = action === 'replay' ? ' back to ' : ' from ';
      process.stdout.write(
        `${verb} ${count} dead letter${count === 1 ? '' : 's'}${where}${describeSpec(flags.from)}\n`,
      );
    }
    // Ids named but not found: most often a message's id (what `serve` prints), not the letter's.
    if (Array.isArray(which) && count < which.length) {
      const missing = which.length - count;
      throw new UsageError(
        `${action}: ${missing} of the ${which.length} --id given ${missing === 1 ? 'is' : 'are'} not a dead letter on ${describeSpec(flags.from)} — use the ids \`dead-letters list\` prints (a letter's own id; the message's id is shown beside it as "message")`,
      );
    }
  } finally {
    await dead.close();
  }
}
