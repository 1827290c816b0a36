/**
 * Configuration: a JSON file (`--config` or XPORTA_CONFIG) overlaid with XPORTA_* environment
 * variables, validated once at start. Every problem names the field, so an operator can fix a
 * deployment from the first line of output. Secrets may come from files (`…File` fields) and are
 * never part of what gets logged (see {@link redactedConfig}).
 *
 * This module is the configuration's one entry point; its parts:
 * - types.ts: what a validated configuration holds, and ConfigError;
 * - load.ts: reading the file and the environment;
 * - fields.ts: typed readers that name the field they complain about;
 * - validate.ts, validate-storage.ts: every section's defaults and bounds;
 * - redact.ts: the configuration with its secrets replaced, for logs.
 */
export * from './types.js';
export { loadConfig, type LoadOptions } from './load.js';
export { redactedConfig } from './redact.js';
