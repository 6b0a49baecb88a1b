/**
 * The store a `TracingChannel`'s `start` is bound to so that an OpenTelemetry context is active
 * while a traced call runs (and in everything it awaits). Internal to sluice/otel.
 *
 * Why not the context manager's own AsyncLocalStorage, as some instrumentations do
 * (`context._getContextManager()._asyncLocalStorage`)? That is a private field, absent from
 * context managers not built on AsyncLocalStorage. `bindStore` only calls `store.run(value, fn)`
 * (Node 20 and later), and `context.with(value, fn)` is exactly that for the
 * AsyncLocalStorage context manager, and the right thing for any other: so the store is an object
 * whose `run` is `context.with`, through the public API only.
 *
 * @module
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import { type Context, context } from '@opentelemetry/api';

/** A store for `channel.bindStore(store, transform)` whose `run` activates an OTel context. */
export function contextStore(): AsyncLocalStorage<Context> {
  const store = {
    run<R>(value: Context, fn: () => R): R {
      return context.with(value, fn);
    },
  };
  return store as unknown as AsyncLocalStorage<Context>;
}
