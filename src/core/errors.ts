/**
 * The service core's own refusals, apart from the layers below it (storage, transfer, the
 * document reader) and from auth (src/core/auth/errors.ts). Faces map them to their answers.
 */

/** What a refusal for want of capacity tells a caller to wait before trying again. */
export const BUSY_RETRY_AFTER_SECONDS = 30;

export class BusyError extends Error {
  constructor(
    /** `account`: another operation holds the account's lease; `import-slots`: every import slot is taken. */
    readonly code: 'account' | 'import-slots',
    message: string,
  ) {
    super(message);
    this.name = 'BusyError';
  }
}
