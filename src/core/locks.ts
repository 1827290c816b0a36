/**
 * One operation at a time per account: exports share an account, an import holds it alone.
 * In-process leases are the fast first gate; behind them, a lock every process on the same
 * storage honours (the database's own, or lock files under dataDir/locks), so the CLI, the
 * service and replicas on one database never import into one account at once.
 */
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import { fileAccountLocker, type AccountLocker } from '../storage/account-lock.js';
import type { StorageBackend } from '../storage/backend.js';
import { BusyError } from './errors.js';

export type LockMode = 'shared' | 'exclusive';

/** How long {@link AccountLocks.acquire} waits by default, and how often it asks again. */
const LEASE_WAIT_MS = 60_000;
const LEASE_POLL_MS = 50;

export interface Lease {
  release(): void;
}

export class AccountLocks {
  /** jid → number of shared holders, or -1 while held exclusively. */
  private readonly holders = new Map<string, number>();

  /** `crossProcess` is asked after the in-process gate admits a lease. */
  constructor(private readonly crossProcess?: AccountLocker) {}

  /** A lease, or undefined when the account is busy in a conflicting mode, here or in another process. */
  async tryAcquire(jid: string, mode: LockMode): Promise<Lease | undefined> {
    const local = this.tryAcquireLocal(jid, mode);
    if (!local || !this.crossProcess) return local;
    let outer;
    try {
      outer = await this.crossProcess(jid, mode);
    } catch (err) {
      local.release();
      throw err;
    }
    if (!outer) {
      local.release();
      return undefined;
    }
    const held = outer;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        // The in-process gate opens at once: a database lock session runs its statements in
        // order, so the unlock goes before any next attempt from here, and lock files go synchronously.
        void held.release().catch(() => undefined);
        local.release();
      },
    };
  }

  /**
   * A lease, waiting while the account is busy: for a transfer that cannot answer "busy" halfway
   * (a host export between two accounts). Throws {@link BusyError} after `timeoutMs`, or the
   * signal's reason when it aborts.
   */
  async acquire(jid: string, mode: LockMode, options: { readonly signal?: AbortSignal; readonly timeoutMs?: number } = {}): Promise<Lease> {
    const deadline = Date.now() + (options.timeoutMs ?? LEASE_WAIT_MS);
    for (;;) {
      options.signal?.throwIfAborted();
      const lease = await this.tryAcquire(jid, mode);
      if (lease) return lease;
      if (Date.now() >= deadline) throw new BusyError('account', `another operation on ${jid} is running`);
      await new Promise((resolve) => setTimeout(resolve, LEASE_POLL_MS));
    }
  }

  private tryAcquireLocal(jid: string, mode: LockMode): Lease | undefined {
    const current = this.holders.get(jid) ?? 0;
    if (current === -1 || (mode === 'exclusive' && current > 0)) return undefined;
    this.holders.set(jid, mode === 'exclusive' ? -1 : current + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const now = this.holders.get(jid) ?? 0;
        if (now === -1 || now <= 1) this.holders.delete(jid);
        else this.holders.set(jid, now - 1);
      },
    };
  }

  isBusy(jid: string): boolean {
    return this.holders.has(jid);
  }
}

/** The lock every process on this storage honours: the storage's own, else lock files under dataDir/locks. */
export function crossProcessLocker(config: Config, storage: StorageBackend): AccountLocker {
  const lockAccount = storage.lockAccount;
  if (lockAccount) {
    return (jid, mode) => {
      const at = jid.indexOf('@');
      return lockAccount({ user: jid.slice(0, at), host: jid.slice(at + 1) }, mode);
    };
  }
  return fileAccountLocker(join(config.dataDir, 'locks'), config.files.mode);
}

/** A counting semaphore without waiting: the caller answers "busy" instead of queueing. */
export class Slots {
  private used = 0;

  constructor(
    readonly capacity: number,
    /** Told the number in use after every take and release (a gauge follows it). */
    private readonly onChange?: (inUse: number) => void,
  ) {}

  tryTake(): Lease | undefined {
    if (this.used >= this.capacity) return undefined;
    this.used++;
    this.onChange?.(this.used);
    let released = false;
    return {
      release: () => {
        if (!released) {
          released = true;
          this.used--;
          this.onChange?.(this.used);
        }
      },
    };
  }

  get inUse(): number {
    return this.used;
  }
}
