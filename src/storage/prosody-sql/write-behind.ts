/**
 * Writes sent ahead on a connection that executes statements in order (pg, mysql2): an import
 * otherwise waits idle for each INSERT (40% of a PostgreSQL import's time), while it could be
 * parsing the next batch.
 */

/** Writes in flight at most: each is one multi-row INSERT of a few hundred KB. */
const MAX_OUTSTANDING = 2;

export class WriteBehind {
  private readonly outstanding: Promise<void>[] = [];
  private failure: { readonly error: unknown } | undefined;

  /** Tracks a write just sent; resolves once at most {@link MAX_OUTSTANDING} are in flight. */
  async add(write: Promise<unknown>): Promise<void> {
    // Tracked before anything can throw, so that its rejection is always handled.
    this.outstanding.push(
      write.then(
        () => undefined,
        (error: unknown) => {
          this.failure ??= { error };
        },
      ),
    );
    while (this.outstanding.length > MAX_OUTSTANDING) await this.outstanding.shift();
    this.throwIfFailed();
  }

  /** Waits for every write in flight; throws the first one's failure. */
  async settle(): Promise<void> {
    await Promise.all(this.outstanding.splice(0));
    this.throwIfFailed();
  }

  /** Waits for every write in flight, whatever their outcome (before a rollback). */
  async drain(): Promise<void> {
    await Promise.all(this.outstanding.splice(0));
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
