/**
 * The server generations the test rig runs side by side: the Debian 12 packages (Prosody 0.12,
 * ejabberd 23.01) where apt put them, and the current ones (Prosody 13, ejabberd 24.12) that
 * scripts/install-test-deps.sh unpacks from bookworm-backports under RIG_DIR.
 */
import { join } from 'node:path';

export type ProsodyVersion = '0.12' | '13';
export type EjabberdVersion = '23.01' | '24.12';

export const PROSODY_VERSIONS: readonly ProsodyVersion[] = ['0.12', '13'];
export const EJABBERD_VERSIONS: readonly EjabberdVersion[] = ['23.01', '24.12'];

/** Where install-test-deps.sh unpacks the backports generation. */
export const RIG_DIR = process.env.XPORTA_RIG_DIR ?? '/opt/xporta-rig';

function pick<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if ((allowed as readonly string[]).includes(raw)) return raw as T;
  throw new Error(`${name}=${raw} is not one of ${allowed.join(', ')}`);
}

/** The generation a test gets when it does not name one: XPORTA_PROSODY_VERSION, else 0.12. */
export function defaultProsodyVersion(): ProsodyVersion {
  return pick('XPORTA_PROSODY_VERSION', PROSODY_VERSIONS, '0.12');
}

/** The generation a test gets when it does not name one: XPORTA_EJABBERD_VERSION, else 23.01. */
export function defaultEjabberdVersion(): EjabberdVersion {
  return pick('XPORTA_EJABBERD_VERSION', EJABBERD_VERSIONS, '23.01');
}

export interface ProsodyBinaries {
  readonly prosody: string;
  readonly prosodyctl: string;
  readonly migrator: string;
  /** What to install when they are missing. */
  readonly installHint: string;
}

export function prosodyBinaries(version: ProsodyVersion): ProsodyBinaries {
  if (version === '0.12') {
    return {
      prosody: process.env.XPORTA_PROSODY_BIN ?? '/usr/bin/prosody',
      prosodyctl: process.env.XPORTA_PROSODYCTL_BIN ?? '/usr/bin/prosodyctl',
      migrator: process.env.XPORTA_PROSODY_MIGRATOR_BIN ?? '/usr/bin/prosody-migrator',
      installHint: 'apt-get install prosody prosody-modules lua-dbi-sqlite3 lua-dbi-postgresql lua-dbi-mysql',
    };
  }
  const bin = join(RIG_DIR, 'prosody-13', 'bin');
  return {
    prosody: join(bin, 'prosody'),
    prosodyctl: join(bin, 'prosodyctl'),
    migrator: join(bin, 'prosody-migrator'),
    installHint: 'bash scripts/install-test-deps.sh (unpacks prosody 13 from bookworm-backports)',
  };
}

export interface EjabberdInstall {
  /** ERL_LIBS for `erl`: the directories holding ejabberd's and its dependencies' OTP applications. */
  readonly erlLibs: string;
  /** ejabberd's SQL schema files (lite.sql, pg.new.sql, …). */
  readonly sqlDir: string;
  /** A file that exists only when this generation is installed. */
  readonly marker: string;
  readonly installHint: string;
}

export function ejabberdInstall(version: EjabberdVersion): EjabberdInstall {
  if (version === '23.01') {
    const libs = process.env.XPORTA_EJABBERD_LIBS ?? '/usr/lib/x86_64-linux-gnu';
    return {
      erlLibs: libs,
      sqlDir: process.env.XPORTA_EJABBERD_SQL_DIR ?? '/usr/share/ejabberd/sql',
      marker: join(libs, 'ejabberd-23.01-1', 'ebin', 'ejabberd.app'),
      installHint: 'apt-get install ejabberd erlang-p1-sqlite3 erlang-p1-pgsql erlang-p1-mysql',
    };
  }
  const prefix = join(RIG_DIR, 'ejabberd-24.12');
  const arch = join(prefix, 'usr', 'lib', 'x86_64-linux-gnu');
  return {
    // ERL_LIBS comes before OTP's own lib dir in the code path, so 24.12's dependencies win over
    // bookworm's older copies there; bookworm's ejabberd 23.01 (in /usr/lib/x86_64-linux-gnu) is
    // not on this path at all.
    erlLibs: `${arch}:${join(prefix, 'usr', 'lib', 'erlang', 'lib')}`,
    sqlDir: join(prefix, 'usr', 'share', 'ejabberd', 'sql'),
    marker: join(arch, 'ejabberd-24.12', 'ebin', 'ejabberd.app'),
    installHint: 'bash scripts/install-test-deps.sh (unpacks ejabberd 24.12 from bookworm-backports)',
  };
}
