/**
 * The dedicated `LISTEN` connection of the PostgreSQL source. A notification only shortens a
 * wait; the source polls anyway, so when this connection drops (server restart) nothing is
 * missed — it reconnects in the background with a growing pause and polling covers the gap.
 *
 * @module
 */
import pg from 'pg';
import { sleep, wakeAll } from '../sleep.js';

/** Waits for `NOTIFY <channel>`; reconnects on its own. */
export class PgListener {
  /** Set by every notification; the source clears it before a claim to catch a notify that raced it. */
  notified = false;
  readonly #config: pg.ClientConfig;
  readonly #channel: string;
  #client: pg.Client | undefined;
  #wakers = new Set<() => void>();
  #closed = false;
  #failures = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(config: pg.ClientConfig, channel: string) {
    this.#config = config;
    this.#channel = channel;
  }

  /** Connects and listens. @throws the connection error (only on the first connect). */
  static async start(config: pg.ClientConfig, channel: string): Promise<PgListener> {
    const listener = new PgListener(config, channel);
    await listener.#connect();
    return listener;
  }

  /** Resolves on a notification, after `ms`, or when `signal` aborts — whichever is first. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.notified) return Promise.resolve();
    return sleep(ms, signal, this.#wakers);
  }

  /** Wakes the waiter as a notification would (e.g. this process made a row due). */
  poke(): void {
    this.notified = true;
    wakeAll(this.#wakers);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    wakeAll(this.#wakers);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.#config);
    client.on('error', () => this.#lost(client));
    client.on('end', () => this.#lost(client));
    client.on('notification', () => this.poke());
    await client.connect();
    await client.query(`LISTEN "${this.#channel}"`);
    this.#client = client;
    this.#failures = 0;
  }

  #lost(client: pg.Client): void {
    if (this.#closed || this.#client !== client) return;
    this.#client = undefined;
    client.end().catch(() => {});
    this.#reconnectLater();
  }

  #reconnectLater(): void {
    const delay = Math.min(5000, 100 * 2 ** this.#failures++);
    this.#retryTimer = setTimeout(() => {
      if (this.#closed) return;
      this.#connect().then(
        // Rows may have arrived while we were deaf: wake the waiter so it claims now.
        () => this.poke(),
        () => this.#reconnectLater(),
      );
    }, delay);
    this.#retryTimer.unref();
  }
}
