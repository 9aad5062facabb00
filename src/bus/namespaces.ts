/** Namespace resolvers: from a loaded config, or the documented defaults (tests, embedded tools). */
import { namespaceOptions, SETTINGS, type NamespaceOptions, type TemConfig } from '../config/index.js';
import type { NamespaceResolver } from './types.js';

const DEFAULTS: NamespaceOptions = Object.freeze({
  historySize: SETTINGS.historySize.default,
  historyTtlMs: SETTINGS.historyTtlMs.default,
  presence: true,
  joinLeave: true,
  clientPublish: false,
});

export const defaultNamespaces: NamespaceResolver = () => DEFAULTS;

export function namespaceResolver(config: TemConfig): NamespaceResolver {
  return (channel) => namespaceOptions(config, channel);
}
