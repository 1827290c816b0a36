/**
 * Background jobs kept in xporta's own state (`xporta-jobs.sqlite` under dataDir, private mode),
 * so that they outlive the process that ran them. A job whose process is gone while it still
 * reads `running` is reported as `interrupted`: its accounts were each applied whole or not at
 * all (a savepoint or a transaction per account), and the job can be submitted again.
 *
 * Every process with the same dataDir (the service, `xporta jobs …`) sees the same jobs; a cancel
 * asked by any of them is seen by the running process at its next progress step.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { DEFAULT_FILE_MODE, ensurePrivateFile, type PrivateFileMode } from '../lib/private-files.js';

export const JOBS_FILE = 'xporta-jobs.sqlite';

export type JobState = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

export interface JobProgress {
  /** Accounts finished (applied or failed) and failed. */
  readonly done: number;
  readonly failed: number;
  /** Accounts in the document, when known. */
  readonly total?: number;
  /** Records (roster items, messages, …) read so far. */
  readonly records: number;
  /** Bytes of the document read so far, and its size. */
  readonly bytes: number;
  readonly totalBytes?: number;
  /** Fraction done, from bytes read (0…1), when the size is known; for a pull, from messages read. */
  readonly estimate?: number;
  /** A pull from another server: archived messages read so far… */
  readonly messages?: number;
  /** …and the archive size that server announced (its RSM count), once it did. */
  readonly archiveTotal?: number;
}

export interface JobRecord {
  readonly id: string;
  readonly type: string;
  /** The host (or, for an account's job, the account's JID) the job acts on: only principals allowed there may read it. */
  readonly host: string;
  readonly state: JobState;
  readonly progress: JobProgress;
  readonly result?: unknown;
  readonly error?: string;
  readonly cancelRequested: boolean;
  readonly startedAt: string;
  readonly finishedAt?: string;
}

interface JobRow {
  id: string;
  type: string;
  host: string;
  state: JobState;
  progress: string;
  result: string | null;
  error: string | null;
  cancel_requested: number;
  owner_pid: number;
  owner_instance: string;
  started_at: string;
  finished_at: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  host TEXT NOT NULL,
  state TEXT NOT NULL,
  progress TEXT NOT NULL,
  result TEXT,
  error TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  owner_pid INTEGER NOT NULL,
  owner_instance TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT
);
CREATE INDEX IF NOT EXISTS jobs_started ON jobs (started_at);
`;

/** This process, apart from an earlier one that had its pid (pid 1 in every container start). */
const INSTANCE = randomUUID();

function alive(pid: number, instance: string): boolean {
  if (pid === process.pid) return instance === INSTANCE;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function toRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    type: row.type,
    host: row.host,
    state: row.state,
    progress: JSON.parse(row.progress) as JobProgress,
    ...(row.result !== null ? { result: JSON.parse(row.result) as unknown } : {}),
    ...(row.error !== null ? { error: row.error } : {}),
    cancelRequested: row.cancel_requested === 1,
    startedAt: row.started_at,
    ...(row.finished_at !== null ? { finishedAt: row.finished_at } : {}),
  };
}

export class JobStore {
  private readonly db: Database.Database;

  private constructor(
    readonly path: string,
    mode: PrivateFileMode,
    /** Ended jobs are removed this long after they end. */
    private readonly retainMs: number,
  ) {
    ensurePrivateFile(path, mode);
    this.db = new Database(path, { timeout: 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.exec(SCHEMA);
  }

  static open(path: string, mode: PrivateFileMode = DEFAULT_FILE_MODE, retainMs = 7 * 24 * 3_600_000): JobStore {
    return new JobStore(path, mode, retainMs);
  }

  create(job: { id: string; type: string; host: string; progress: JobProgress }): JobRecord {
    this.prune();
    this.db
      .prepare('INSERT INTO jobs (id, type, host, state, progress, owner_pid, owner_instance, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(job.id, job.type, job.host, 'running', JSON.stringify(job.progress), process.pid, INSTANCE, new Date().toISOString());
    return this.get(job.id) as JobRecord;
  }

  /** Records progress; true when a cancel was asked for meanwhile. */
  progress(id: string, progress: JobProgress): boolean {
    this.db.prepare("UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running'").run(JSON.stringify(progress), id);
    const row = this.db.prepare('SELECT cancel_requested FROM jobs WHERE id = ?').get(id) as { cancel_requested: number } | undefined;
    return row?.cancel_requested === 1;
  }

  finish(id: string, state: 'succeeded' | 'failed' | 'cancelled', outcome: { result?: unknown; error?: string; progress?: JobProgress }): void {
    this.db
      .prepare("UPDATE jobs SET state = ?, result = ?, error = ?, progress = COALESCE(?, progress), finished_at = ? WHERE id = ? AND state = 'running'")
      .run(
        state,
        outcome.result !== undefined ? JSON.stringify(outcome.result) : null,
        outcome.error ?? null,
        outcome.progress ? JSON.stringify(outcome.progress) : null,
        new Date().toISOString(),
        id,
      );
  }

  /** Asks a running job to stop; false when there is no such running job. */
  requestCancel(id: string): boolean {
    this.markInterrupted();
    return this.db.prepare("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'").run(id).changes === 1;
  }

  get(id: string): JobRecord | undefined {
    this.markInterrupted();
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** Newest first. */
  list(limit = 100): JobRecord[] {
    this.markInterrupted();
    return (this.db.prepare('SELECT * FROM jobs ORDER BY started_at DESC LIMIT ?').all(limit) as JobRow[]).map(toRecord);
  }

  /** Running jobs whose process is gone become `interrupted`. */
  markInterrupted(): void {
    const running = this.db.prepare("SELECT id, owner_pid, owner_instance FROM jobs WHERE state = 'running'").all() as { id: string; owner_pid: number; owner_instance: string }[];
    const mark = this.db.prepare("UPDATE jobs SET state = 'interrupted', error = ?, finished_at = ? WHERE id = ? AND state = 'running'");
    for (const job of running) {
      if (!alive(job.owner_pid, job.owner_instance)) mark.run('the process running this job ended before it finished; each account was applied whole or not at all: submit the job again', new Date().toISOString(), job.id);
    }
  }

  private prune(now = Date.now()): void {
    this.db.prepare('DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?').run(new Date(now - this.retainMs).toISOString());
  }

  close(): void {
    this.db.close();
  }
}
