/**
 * telemetry-event-mesh: what a program embedding TEM or writing processors imports.
 * The client SDK is separate: `telemetry-event-mesh/client`.
 */
export { startEmbedded, type EmbeddedServer } from './app/embedded.js';
export { loadConfig, ConfigError, type TemConfig } from './config/index.js';
export { NonRetryableError, type Processor, type ProcessorContext } from './worker/processors/types.js';
export type { TemEvent, EventStatus, EventUpdatePayload } from './core/types.js';
export { ERROR_TABLE, TemError, type ErrorCode } from './core/errors.js';
