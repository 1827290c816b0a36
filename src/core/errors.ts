/**
 * The service core's own refusals, apart from the layers below it (storage, transfer, the
 * document reader) and from auth (src/core/auth/errors.ts). Faces map them to their answers.
 */

/** What a refusal for want of capacity tells a caller to wait before trying again. */
export const BUSY_RETRY_AFTER_SECONDS = 30;

export class BusyError extends Error {
  constructor(
    /**
     * `account`: another operation holds the account's lease; `import-slots`: every import slot
     * is taken; `pull-slots`: `xmppClient.maxConcurrentPulls` pulls from other servers are running.
     */
    readonly code: 'account' | 'import-slots' | 'pull-slots',
    message: string,
  ) {
    super(message);
    this.name = 'BusyError';
  }
}

/**
 * A pull from another server carries more than `xmppClient.maxArchiveMessages` archived messages
 * (as the server announced, or as counted): the pull stops before anything is written.
 */
export class PullLimitError extends Error {
  constructor(
    readonly limit: number,
    /** The archive size the server announced, when it did. */
    readonly announced?: number,
  ) {
    super(
      announced !== undefined
        ? `the remote archive holds ${announced} messages, more than the ${limit} one pull may carry (xmppClient.maxArchiveMessages); nothing was written`
        : `the remote archive holds more than the ${limit} messages one pull may carry (xmppClient.maxArchiveMessages); nothing was written`,
    );
    this.name = 'PullLimitError';
  }
}
