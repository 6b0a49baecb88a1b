/**
 * The options every broker source shares, with one name, one default and one check each
 * (internal; the public doc is on {@link CommonSourceOptions}). Broker-specific extras
 * (`deleteOnAck`, `prefetch`, `maxAckPending`, …) stay with their adapter.
 *
 * @module
 */
import { invalidOption, MAX_TIMER_MS, numberAtLeast } from '../internal/options.js';

/**
 * The options with one meaning on every broker source. Durations in ms.
 *
 * | option           | Redis                         | NATS                     | RabbitMQ            | PostgreSQL                 |
 * | ---------------- | ----------------------------- | ------------------------ | ------------------- | -------------------------- |
 * | `fetchWait`      | `XREADGROUP BLOCK`            | pull `expires` (>= 1000) | wait for a push     | poll when no `NOTIFY`      |
 * | `lease`          | pending idle before a claim   | consumer `ack_wait`      | — (channel-bound)   | row lease (`run_at`)       |
 * | `connectTimeout` | each connection's handshake   | the first connection     | each (re)connect    | each pooled connection     |
 */
export interface CommonSourceOptions {
  /**
   * Longest time one `fetch` waits on an empty queue before it returns nothing (the consumer
   * loop then asks again). Shorter means a faster `close()` on some brokers and more idle
   * round trips; it also bounds how late a Redis delayed job can be handed out.
   * @default 1000
   */
  fetchWait?: number;
  /**
   * How long a delivered message stays this consumer's without an ack: past it, the broker (or
   * another consumer) hands it out again. The consumer loop heartbeats every `lease / 3` ms
   * while the handler runs, so only a crashed or stalled process loses its lease. Not on
   * RabbitMQ, where a message belongs to its channel until the channel closes.
   * @default 30000
   */
  lease?: number;
  /**
   * Longest wait for a connection's handshake: a server that accepts TCP and never answers
   * fails the source with `ConnectTimeoutError` (`ERR_CONNECT_TIMEOUT`) instead of hanging.
   * @default 10000
   */
  connectTimeout?: number;
}

/** The defaults of {@link CommonSourceOptions}, ms. The README table is checked against these. */
export const SOURCE_DEFAULTS = { fetchWait: 1000, lease: 30_000, connectTimeout: 10_000 } as const;

/**
 * Names of 0.1 that became a common name: passing one (a value other than undefined or null)
 * fails at construction with `ERR_INVALID_OPTION` naming the new option, rather than being
 * ignored.
 */
export const RENAMED_OPTIONS: Readonly<Record<string, keyof CommonSourceOptions>> = {
  block: 'fetchWait',
  blockMs: 'fetchWait',
  pollInterval: 'fetchWait',
  claimIdle: 'lease',
  ackWait: 'lease',
};

/** What differs per broker in the checks. */
export interface CommonLimits {
  /** Smallest `fetchWait` the broker takes (NATS: 1000, a pull's shortest `expires`). @default 1 */
  fetchWaitMin?: number;
  /** Whole ms only (Redis takes integers for BLOCK and min-idle-time). */
  integer?: boolean;
  /** Smallest `lease`; `false` when the broker has none (RabbitMQ). @default 1 */
  leaseMin?: number | false;
  /** The broker's name, for the message of a refused `lease`. */
  broker: string;
}

/**
 * Each broker's limits on the common options (the README's table is checked against these).
 * NATS: a pull's `expires` and an `ack_wait` worth heartbeating are at least 1 s; Redis takes
 * whole ms for `BLOCK` and `XAUTOCLAIM`'s min-idle-time; RabbitMQ has no lease.
 */
export const BROKER_LIMITS = {
  redis: { integer: true, broker: 'Redis' },
  nats: { fetchWaitMin: 1000, leaseMin: 1000, broker: 'NATS' },
  amqp: { leaseMin: false, broker: 'RabbitMQ' },
  postgres: { broker: 'PostgreSQL' },
} as const satisfies Record<string, CommonLimits>;

/** The common options, checked and with their defaults filled in. */
export type ResolvedCommon = Required<CommonSourceOptions>;

/**
 * Checks the common options of `opts` (and refuses the old names) and fills in the defaults.
 *
 * @throws TypeError/RangeError `ERR_INVALID_OPTION` naming the option, its value and what was
 *   expected; for an old name, the name that replaced it.
 */
export function resolveCommon(opts: CommonSourceOptions, limits: CommonLimits): ResolvedCommon {
  const given = opts as Record<string, unknown>;
  for (const [old, replacement] of Object.entries(RENAMED_OPTIONS)) {
    if (given[old] != null) {
      invalidOption(old, given[old], `nothing: it is now "${replacement}" (same unit, ms)`);
    }
  }
  const ms = { unit: 'ms' as const, integer: limits.integer === true };
  const fetchWait =
    numberAtLeast('fetchWait', opts.fetchWait, limits.fetchWaitMin ?? 1, ms) ??
    SOURCE_DEFAULTS.fetchWait;
  // null or undefined: not given, as for every option (nothing to default to here).
  if (limits.leaseMin === false && opts.lease != null) {
    invalidOption(
      'lease',
      opts.lease,
      `nothing: ${limits.broker} holds a message until its channel closes (the server's consumer_timeout bounds it)`,
    );
  }
  const lease =
    numberAtLeast('lease', opts.lease, limits.leaseMin || 1, ms) ?? SOURCE_DEFAULTS.lease;
  const connectTimeout =
    numberAtLeast('connectTimeout', opts.connectTimeout, 1, { unit: 'ms' }) ??
    SOURCE_DEFAULTS.connectTimeout;
  return { fetchWait, lease, connectTimeout: Math.min(connectTimeout, MAX_TIMER_MS) };
}
