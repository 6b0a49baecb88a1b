/**
 * Outcome names as sluice/otel writes them (span attribute and metric attribute): snake_case,
 * the same values as sluice/prometheus's `outcome` label. Internal.
 *
 * @module
 */
import type { Outcome } from '../stats.js';

export const OUTCOME: Readonly<Record<Outcome, string>> = {
  succeeded: 'succeeded',
  failed: 'failed',
  timedOut: 'timed_out',
  canceled: 'canceled',
  crashed: 'crashed',
};
