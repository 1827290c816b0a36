/** What every part of one user's import into ejabberd's tables works on. */
import type { UserRef } from '../../backend.js';
import type { ImportTally } from '../../import/tally.js';
import type { SqlSession } from '../../sql/dialect.js';
import type { Tables } from '../tables.js';

export interface ImportTarget {
  /** The session of the transaction the caller owns. */
  readonly db: SqlSession;
  readonly t: Tables;
  readonly ref: UserRef;
  /** The user's bare JID, `user@host`: PEP nodes are keyed by it. */
  readonly jid: string;
  /** Where counts, skips and warnings go. */
  readonly tally: ImportTally;
}

