/**
 * One RabbitMQ connection with a consumer channel and a confirm channel, rebuilt (topology
 * included) whenever either dies. Internal to `sluice/amqp`.
 *
 * Every delivery is stamped with the generation of the channel it came on. A delivery tag is
 * only meaningful on that channel: after a reconnect the broker has already requeued every
 * unacked message of the dead channel, so an old tag must never be acked on the new one (at
 * best it is refused, at worst it acks a different message).
 *
 * @module
 */
import {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  connect,
  type Message,
} from 'amqplib';
import { ConnectConfigError, ConnectTimeoutError, NotConnectedError } from '../../errors.js';
import {
  connectWithin,
  maskUserinfo,
  readsAsCutPassword,
  unreachable,
} from '../connect-deadline.js';
import { sleep } from '../sleep.js';
import { type AmqpTopology, declareAmqpTopology } from './topology.js';

export interface Delivery {
  readonly msg: ConsumeMessage;
  readonly generation: number;
}

export interface LinkOptions extends AmqpTopology {
  url: string;
  /** Connection heartbeat (s): how soon a silent broker is noticed. */
  heartbeat: number;
  /** Longest one connection attempt may take (ms), from TCP connect to the declared topology. */
  connectTimeout: number;
}

interface Attempt {
  abandoned: boolean;
  /** Destroys the socket (net.Socket's `signal` option): amqplib gives no other handle on it. */
  readonly abort: AbortController;
  conn?: ChannelModel;
}

const FIRST_RETRY = 100;
const MAX_RETRY = 5_000;

export class AmqpLink {
  readonly #o: LinkOptions;
  #conn: ChannelModel | undefined;
  #ch: Channel | undefined;
  #pub: ConfirmChannel | undefined;
  #generation = 0;
  #prefetch = 0;
  #consumerTag: string | undefined;
  #closed = false;
  #connecting: Promise<void> | undefined;
  /** Deliveries not yet handed out; only ever from the current generation. */
  readonly buffer: Delivery[] = [];
  /** Called on every delivery, reconnect and close (the source wakes its waiting fetch). */
  onChange: () => void = () => {};
  /** Called for every `basic.return` on the confirm channel (a mandatory publish routed nowhere). */
  onReturn: (msg: Message) => void = () => {};
  /** Number of times the link was rebuilt after losing the broker. */
  reconnects = 0;
  /** The last connection error (diagnostics only). */
  lastError: unknown;
  /**
   * The broker's own reason for closing the last generation that ended, when it gave one (a
   * `channel.close` or `connection.close` with a reply code: 404 NOT_FOUND for a publish to a
   * deleted exchange, 406 PRECONDITION_FAILED, 320 CONNECTION_FORCED): amqplib fails what was
   * in flight on that channel with a bare "channel closed", which would hide it.
   */
  #closedBy: { generation: number; error: Error } | undefined;

  constructor(o: LinkOptions) {
    this.#o = o;
  }

  get generation(): number {
    return this.#generation;
  }

  /** The consumer channel, when it is open. */
  get channel(): Channel | undefined {
    return this.#ch;
  }

  /** The confirm channel for republishing, when it is open. */
  get publisher(): ConfirmChannel | undefined {
    return this.#pub;
  }

  /** Connects (retrying with backoff until it works or the link closes). */
  start(): Promise<void> {
    this.#connecting ??= this.#connectLoop().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /** True while a consumer is active on the current channel. */
  get consuming(): boolean {
    return this.#consumerTag !== undefined;
  }

  /** Starts (or resumes) consuming with `prefetch` unacked messages at most. */
  async consume(prefetch: number): Promise<void> {
    this.#prefetch = prefetch;
    const ch = this.#ch;
    if (!ch || this.#consumerTag !== undefined) return;
    const gen = this.#generation;
    await ch.prefetch(prefetch);
    const { consumerTag } = await ch.consume(this.#o.queue, (msg) => {
      // null: the broker canceled the consumer (queue deleted): rebuild everything.
      if (msg === null) return this.#lost(gen, new Error('consumer canceled by the broker'));
      if (gen !== this.#generation) return;
      this.buffer.push({ msg, generation: gen });
      this.onChange();
    });
    if (gen === this.#generation) this.#consumerTag = consumerTag;
  }

  /** Stops deliveries (e.g. while draining); buffered ones stay for the caller to release. */
  async pause(): Promise<void> {
    const tag = this.#consumerTag;
    this.#consumerTag = undefined;
    this.#prefetch = 0;
    if (tag !== undefined && this.#ch) await this.#ch.cancel(tag).catch(() => {});
  }

  /** Declares the topology again on the confirm channel (after it vanished under us). */
  async redeclare(): Promise<void> {
    const pub = this.#pub;
    if (!pub) throw new NotConnectedError('RabbitMQ');
    await declareAmqpTopology(pub, this.#o);
  }

  /** The broker's reason for ending generation `generation` (see `#closedBy`), if it gave one. */
  closedBy(generation: number | undefined): Error | undefined {
    const closed = this.#closedBy;
    return closed !== undefined && closed.generation === generation ? closed.error : undefined;
  }

  /** True when `d` came on the channel that is open now (its tag can still be acked). */
  isLive(d: Delivery): boolean {
    return d.generation === this.#generation && this.#ch !== undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onChange();
    const { conn, ch, pub } = { conn: this.#conn, ch: this.#ch, pub: this.#pub };
    this.#conn = this.#ch = this.#pub = undefined;
    this.buffer.length = 0;
    // Close the channels first and wait for their Close-Ok: RabbitMQ runs each channel in its
    // own process, and a connection.close can end it before it has applied the acks already
    // sent on it (they would be requeued). A channel's Close-Ok comes after its earlier frames.
    await Promise.all([ch?.close().catch(() => {}), pub?.close().catch(() => {})]);
    await conn?.close().catch(() => {});
  }

  /** One connection attempt, failing fast (for the first connection: a wrong URL must throw). */
  connectOnce(): Promise<void> {
    return this.#open();
  }

  async #connectLoop(): Promise<void> {
    let wait = FIRST_RETRY;
    while (!this.#closed) {
      try {
        await this.#open();
        return;
      } catch (err) {
        this.lastError = err;
        await sleep(wait);
        wait = Math.min(wait * 2, MAX_RETRY);
      }
    }
  }

  /**
   * One attempt, bounded by `connectTimeout`: amqplib waits forever for a peer that accepts TCP
   * and never speaks AMQP (its socket `timeout` is an idle timer, which a trickling peer resets,
   * and nothing bounds the channel opens and declarations after the handshake).
   */
  async #open(): Promise<void> {
    const attempt: Attempt = { abandoned: false, abort: new AbortController() };
    // Ends the attempt wherever it is stuck (handshake, channel opens, declarations), so no
    // socket stays open to the unresponsive peer.
    const abandon = () => {
      attempt.abandoned = true;
      attempt.abort.abort();
      void attempt.conn?.close().catch(() => {});
    };
    try {
      await connectWithin(
        this.#openWithin(attempt),
        this.#o.connectTimeout,
        'RabbitMQ',
        abandon,
        () => this.#timeoutError(),
      );
    } catch (err) {
      // amqplib's own socket timeout may fire first: report it the same way.
      if (err instanceof Error && err.message === 'connect ETIMEDOUT') throw this.#timeoutError();
      throw handshakeRefusal(err, this.#o.url);
    }
  }

  #timeoutError(): Error {
    // The deadline covers the AMQP handshake, opening the channels and declaring the topology.
    return new ConnectTimeoutError(
      `RabbitMQ at ${maskUserinfo(this.#o.url)}`,
      this.#o.connectTimeout,
    );
  }

  async #openWithin(attempt: Attempt): Promise<void> {
    const url = new URL(this.#o.url);
    if (!url.searchParams.has('heartbeat'))
      url.searchParams.set('heartbeat', String(this.#o.heartbeat));
    // `signal` goes through amqplib (typed without it) to net.connect's socket options.
    // Named (`connection_name`, shown by `rabbitmqctl list_connections name`), so an operator
    // can tell which connection consumes which queue.
    // `noDelay`: amqplib leaves Nagle's algorithm on, so a small frame written while an earlier
    // one is unacknowledged waits for the peer's delayed ACK (40 ms on Linux): a `basic.cancel`
    // after the last acks took 40-48 ms, a tenth of a 10,000-message run (see BENCHMARKS.md).
    const socketOptions = {
      noDelay: true,
      timeout: this.#o.connectTimeout,
      signal: attempt.abort.signal,
      clientProperties: { connection_name: `sluice:${this.#o.queue}` },
    };
    const conn = await connect(url.toString(), socketOptions);
    attempt.conn = conn;
    try {
      if (attempt.abandoned) throw new Error('connection attempt abandoned after connectTimeout');
      const gen = this.#generation + 1;
      const lost = (err?: unknown) => this.#lost(gen, err);
      conn.on('error', lost);
      conn.on('close', lost);
      const pub = await conn.createConfirmChannel();
      const ch = await conn.createChannel();
      for (const c of [pub, ch]) {
        c.on('error', lost);
        c.on('close', lost);
      }
      pub.on('return', (msg: Message) => this.onReturn(msg));
      await declareAmqpTopology(pub, this.#o);
      if (this.#closed) throw new Error('closed while connecting');
      // Timed out: the caller has been told so already; this late connection must not be used.
      if (attempt.abandoned) throw new Error('connection attempt abandoned after connectTimeout');
      this.#conn = conn;
      this.#ch = ch;
      this.#pub = pub;
      this.#generation = gen;
      this.#consumerTag = undefined;
      // No consuming here: the source starts it on its next fetch, once the consumer loop has
      // room for a full prefetch. Handlers of the dead channel's messages may still be running
      // (the broker requeued those messages, but the loop holds them until they settle), and a
      // new channel given its full prefetch at once would double what the process holds.
      this.onChange();
    } catch (err) {
      await conn.close().catch(() => {});
      throw err;
    }
  }

  #lost(gen: number, err?: unknown): void {
    if (gen !== this.#generation || this.#closed || this.#ch === undefined) return;
    this.lastError = err;
    // amqplib's error for a close frame carries the broker's reply code as a number (a socket's
    // error a string code): the first event of a generation's end is its cause.
    if (err instanceof Error && typeof (err as { code?: unknown }).code === 'number') {
      this.#closedBy = { generation: gen, error: err };
    }
    const conn = this.#conn;
    this.#conn = this.#ch = this.#pub = undefined;
    this.#consumerTag = undefined;
    // The broker requeues every unacked message of the dead channel; ours are just forgotten.
    this.buffer.length = 0;
    void conn?.close().catch(() => {});
    this.reconnects++;
    this.onChange();
    void this.start();
  }
}

/**
 * A connection's failure, coded: a socket or DNS failure as `NotConnectedError` (see
 * `unreachable`); amqplib's uncoded errors for a handshake the broker refused, as
 * `ConnectConfigError` (`ERR_CONNECT_CONFIG`, amqplib's error as `cause`) naming what in `url`
 * to check: the login
 * (`403 ACCESS-REFUSED`) and the virtual host (the broker answers `connection.open` with a
 * `connection.close`: no such vhost, or the user may not use it — amqplib says only "Expected
 * ConnectionOpenOk; got <ConnectionClose channel:0>"). Anything else as it is.
 */
export function handshakeRefusal(error: unknown, url: string): unknown {
  const where = `RabbitMQ at ${maskUserinfo(url)}`;
  const failed = unreachable(
    error,
    'RabbitMQ',
    where,
    readsAsCutPassword(url)
      ? '; if the text between ":" and "@" was meant as a password, percent-encode its "/" (%2F)'
      : '',
  );
  if (failed !== error) return failed;
  if (!(error instanceof Error) || (error as { code?: unknown }).code !== undefined) return error;
  if (/^Handshake terminated by server: 403\b/.test(error.message)) {
    return new ConnectConfigError(
      'RabbitMQ',
      `${where} refused the login (${error.message.replace(/^Handshake terminated by server: /, '')}): check the user and password in url`,
      { cause: error },
    );
  }
  if (/^Expected ConnectionOpenOk; got <ConnectionClose/.test(error.message)) {
    let vhost = '/';
    try {
      vhost = decodeURIComponent(new URL(url).pathname.slice(1)) || '/';
    } catch {
      // checked at construction; the default vhost otherwise
    }
    return new ConnectConfigError(
      'RabbitMQ',
      `${where} refused to open virtual host ${JSON.stringify(vhost)} (it does not exist, or the user may not access it): check the path of url`,
      { cause: error },
    );
  }
  return error;
}
