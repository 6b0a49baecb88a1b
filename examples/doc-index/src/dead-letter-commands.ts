/**
 * The `dead-letters` command and its three subcommands, registered on the CLI's program (the
 * work is in dead-letters.ts).
 *
 * @module
 */
import { type Command, InvalidArgumentError } from 'commander';
import { BROKER_URL_HELP, type BrokerSpec } from './broker-url.js';
import { actCommand, listCommand } from './dead-letters.js';

const HELP = `${BROKER_URL_HELP}
list shows one page, newest failure first; pass the printed --cursor for the next page.
replay puts letters back on the queue as new messages (their delivery count starts at 1);
purge deletes them. Both need --all, --id <id> (repeatable) or filters (--code, --error,
--before; all given must hold). A replay is at-least-once: interrupted, it loses no letter,
and a letter may end up both queued and still dead (replayed twice), never neither.
Exit code 2: usage error (bad flags or URL, no selection, unreachable broker).
`;

function pageSize(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 1000)
    throw new InvalidArgumentError('expected an integer from 1 to 1000');
  return n;
}

function isoTime(value: string): Date {
  const at = new Date(value);
  if (!/^\d{4}-\d\d-\d\d/.test(value) || Number.isNaN(at.getTime()))
    throw new InvalidArgumentError('expected an ISO 8601 time, e.g. 2026-01-31T12:00:00Z');
  return at;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Adds `dead-letters list|replay|purge` to `program`; `from` parses the queue URL. */
export function addDeadLetterCommands(program: Command, from: (value: string) => BrokerSpec): void {
  const group = program
    .command('dead-letters')
    .description('list, replay or purge the documents serve dead-lettered');
  group
    .command('list')
    .description('one page of dead letters, newest failure first')
    .requiredOption('--from <url>', 'queue URL (see below)', from)
    .option('--limit <n>', 'letters per page (1-1000)', pageSize, 20)
    .option('--cursor <cursor>', 'the cursor a previous page printed')
    .option('--json', 'print the page as JSON on stdout')
    .addHelpText('after', HELP)
    .action((flags) => listCommand(flags));
  for (const action of ['replay', 'purge'] as const) {
    group
      .command(action)
      .description(
        action === 'replay'
          ? 'put dead letters back on the queue (delivery count reset)'
          : 'delete dead letters for good',
      )
      .requiredOption('--from <url>', 'queue URL (see below)', from)
      .option('--all', 'every dead letter')
      .option('--id <id>', 'a letter id from list (repeatable)', collect, [])
      .option('--code <code>', 'letters whose error code is this')
      .option('--error <text>', 'letters whose error message contains this')
      .option('--before <time>', 'letters that failed before this ISO time', isoTime)
      .option('--json', 'print the count as JSON on stdout')
      .addHelpText('after', HELP)
      .action((flags) => actCommand(action, flags));
  }
}
