import type { Config } from './types.js';

/** The config with every secret replaced, for logs and `xporta config --check`. */
export function redactedConfig(config: Config): unknown {
  return JSON.parse(
    JSON.stringify(config, (key, value: unknown) =>
      ['password', 'secret', 'userTokenSecret', 'previousUserTokenSecrets', 'sha256'].includes(key) && value !== undefined ? '[redacted]' : value,
    ),
  );
}
