export { OutboxRelay, type OutboxRelayOptions, type RelayMetrics } from './relay.js';
