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
import { createReadStream, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { DEFAULT_FILE_MODE, directoryModeFor, ensurePrivateFile, type PrivateFileMode } from '../lib/private-files.js';

export const JOBS_FILE = 'xporta-jobs.sqlite';
/** Beside the jobs file: files a job's result keeps apart (a host import's `users` list). */
export const JOBS_DIR = 'xporta-jobs';

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
  users_file: number;
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

/**
 * 1 when the result's `users` list is the job's users file ({@link JobStore.usersFile}) and the
 * stored result holds an empty list in its place.
 */
const USERS_FILE_COLUMN = 'ALTER TABLE jobs ADD COLUMN users_file INTEGER NOT NULL DEFAULT 0';

/** Stands for the users list in a record's JSON until the file's text replaces it. */
const USERS_MARK = '\u0000users-file\u0000';

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
  private readonly dir: string;
  /** Records read without their users list: the file that holds it. */
  private readonly usersOf = new WeakMap<JobRecord, string>();

  private constructor(
    readonly path: string,
    mode: PrivateFileMode,
    /** Ended jobs are removed this long after they end. */
    private readonly retainMs: number,
  ) {
    ensurePrivateFile(path, mode);
    this.dir = join(dirname(path), JOBS_DIR);
    mkdirSync(this.dir, { recursive: true, mode: directoryModeFor(mode) });
    this.db = new Database(path, { timeout: 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.exec(SCHEMA);
    const columns = this.db.prepare('PRAGMA table_info(jobs)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'users_file')) this.db.exec(USERS_FILE_COLUMN);
  }

  /**
   * Where a running job writes its result's `users` list (a JSON array, see outcome-file.ts)
   * when it ends with {@link finish}'s `usersInFile`; removed with the job.
   */
  usersFile(id: string): string {
    return join(this.dir, `${id}.users.json`);
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

  /**
   * Ends a running job. With `usersInFile`, the result's `users` list is the job's
   * {@link usersFile} (closed by now), and `result` carries an empty `users` in its place.
   */
  finish(id: string, state: 'succeeded' | 'failed' | 'cancelled', outcome: { result?: unknown; error?: string; progress?: JobProgress; usersInFile?: boolean }): void {
    this.db
      .prepare("UPDATE jobs SET state = ?, result = ?, users_file = ?, error = ?, progress = COALESCE(?, progress), finished_at = ? WHERE id = ? AND state = 'running'")
      .run(
        state,
        outcome.result !== undefined ? JSON.stringify(outcome.result) : null,
        outcome.result !== undefined && outcome.usersInFile === true ? 1 : 0,
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

  /**
   * The job, whole. With `users: false`, a result whose users list is in the job's file is
   * left with an empty one: {@link json} then gives the whole record's text without holding it.
   */
  get(id: string, read: { users?: boolean } = {}): JobRecord | undefined {
    this.markInterrupted();
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row ? this.recordOf(row, read.users ?? true) : undefined;
  }

  /** Newest first; `read` as for {@link get}. */
  list(limit = 100, read: { users?: boolean } = {}): JobRecord[] {
    this.markInterrupted();
    return (this.db.prepare('SELECT * FROM jobs ORDER BY started_at DESC LIMIT ?').all(limit) as JobRow[]).map((row) => this.recordOf(row, read.users ?? true));
  }

  /**
   * The record's JSON text, as JSON.stringify gives it for the whole record, in pieces: a users
   * list left in the job's file (`get(id, { users: false })`) is read from it as it is sent.
   */
  async *json(record: JobRecord): AsyncGenerator<string | Buffer> {
    const file = this.usersOf.get(record);
    if (file === undefined) {
      yield JSON.stringify(record);
      return;
    }
    const text = JSON.stringify({ ...record, result: { ...(record.result as object), users: USERS_MARK } });
    const mark = `"users":${JSON.stringify(USERS_MARK)}`;
    const at = text.indexOf(mark);
    yield text.slice(0, at + '"users":'.length);
    yield* createReadStream(file) as AsyncIterable<Buffer>;
    yield text.slice(at + mark.length);
  }

  private recordOf(row: JobRow, users: boolean): JobRecord {
    const record = toRecord(row);
    if (row.users_file !== 1 || record.result === undefined) return record;
    const file = this.usersFile(row.id);
    if (!users) {
      this.usersOf.set(record, file);
      return record;
    }
    return { ...record, result: { ...(record.result as object), users: JSON.parse(readFileSync(file, 'utf8')) as unknown } };
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
    const before = new Date(now - this.retainMs).toISOString();
    const ended = this.db.prepare('SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?').all(before) as { id: string }[];
    this.db.prepare('DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?').run(before);
    for (const { id } of ended) rmSync(this.usersFile(id), { force: true });
  }

  close(): void {
    this.db.close();
  }
}
