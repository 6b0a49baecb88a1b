/**
 * sluice — Go's worker-pool discipline for Node.js.
 *
 * @packageDocumentation
 */
export {
  type BackoffFunction,
  type BackoffOptions,
  type ConsumeOptions,
  type Consumer,
  type ConsumerOperation,
  type ConsumerReport,
  type ConsumerStats,
  consume,
  type Decoder,
  type HandlerContext,
  jsonDecode,
  type MessageHandler,
} from './brokers/consumer.js';
export type { BrokerMessage, BrokerSource, MessagingTarget } from './brokers/source.js';
export { Channel, type ChannelOpOptions } from './channel.js';
export {
  AbortError,
  ChannelClosedError,
  ConnectConfigError,
  ConnectTimeoutError,
  DeliveryLimitError,
  JobFailedError,
  LeaseLostError,
  MalformedMessageError,
  NotConnectedError,
  PoolClosedError,
  PublishTimeoutError,
  QueueFullError,
  RateLimiterError,
  SelfDeadlockError,
  SettleTimeoutError,
  SluiceError,
  type SluiceErrorCode,
  TimeoutError,
  UnroutableError,
  WorkerCrashedError,
  WorkerStartupError,
} from './errors.js';
export {
  AdaptiveConcurrency,
  type AdaptiveOptions,
  type AimdOptions,
  adaptive,
  type GradientOptions,
  isOverload,
  type LimitChange,
  type LimitReason,
  type LimitSample,
  type LimitStats,
} from './gates/adaptive.js';
export type { GateOptions, PerKeyOptions } from './gates/gate-options.js';
export type { RateLimiter } from './gates/rate-limiter.js';
export type { RetryOptions } from './gates/retry.js';
export { type RateLimit, rateLimiter } from './gates/sliding-window.js';
export type { JobContext, WorkerFunction } from './internal/job-run.js';
export {
  type JobAcceptedMessage,
  type JobEventBase,
  type JobRetriedMessage,
  type JobSettledMessage,
  type JobTraceContext,
  type PoolEventBase,
  type PoolKind,
  type PoolLimitMessage,
  type PoolState,
  type PoolStateMessage,
  SLUICE_JOB,
  SLUICE_JOB_ACCEPTED,
  SLUICE_JOB_RETRIED,
  SLUICE_JOB_SETTLED,
  SLUICE_POOL_LIMIT,
  SLUICE_POOL_STATE,
} from './observability/channels.js';
export {
  type EnqueueTraceContext,
  type MessagingSystem,
  SLUICE_ENQUEUE,
} from './observability/enqueue-channel.js';
export {
  type JobRateLimitedMessage,
  type PoolCreatedMessage,
  type PoolSnapshot,
  type RateGateKind,
  SLUICE_JOB_RATE_LIMITED,
  SLUICE_POOL_CREATED,
} from './observability/gate-channels.js';
export {
  type MessageDeadLetteredMessage,
  type MessageEventBase,
  type MessageLeaseLostMessage,
  type MessageOutcome,
  type MessageSettledMessage,
  SLUICE_MESSAGE_DEAD_LETTERED,
  SLUICE_MESSAGE_LEASE_LOST,
  SLUICE_MESSAGE_SETTLED,
} from './observability/message-channels.js';
export {
  type JobStuckMessage,
  type JobZombieMessage,
  SLUICE_JOB_STUCK,
  SLUICE_JOB_ZOMBIE,
  type StuckJob,
  type WatchdogOptions,
  type ZombieJob,
} from './observability/watchdog.js';
export {
  Pipeline,
  type PipelineDrainReport,
  type PipelineOptions,
  pipeline,
  type StageOptions,
  type StageRunner,
  type StageStats,
} from './pipeline.js';
export { type DrainReport, Pool, type PoolOptions, type SubmitOptions, type Task } from './pool.js';
export type { PipelineResult, Result } from './result.js';
export { type RunPoolOptions, runPool } from './run-pool.js';
export { type ShutdownContext, type ShutdownOptions, shutdownOn } from './shutdown.js';
export { type GateWaiting, type Percentiles, type PoolStats, STATS_WINDOW } from './stats.js';
export {
  type ThreadJobContext,
  ThreadPool,
  type ThreadPoolOptions,
  type ThreadPoolStats,
  type ThreadStats,
  type ThreadSubmitOptions,
} from './threads/pool.js';
export type { ThreadModule, ThreadModuleJob, ThreadModuleResult } from './threads/types.js';
