/** File names of Prosody's internal storage, and proof that no JID can leave the data directory. */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProsodyFilesBackend } from '../../../src/storage/prosody-files/backend.js';
import { PathError, decode, decodeCanonical, encode, getpath, storeEncode } from '../../../src/storage/prosody-files/paths.js';
import type { UserRecord, UserStart } from '../../../src/records/model.js';
import { LUA, luaAvailable } from '../../support/storage/lua.js';

describe('encode / store_encode', () => {
  it('matches the reference examples', () => {
    expect(encode('zoë.o_brien+tag%~')).toBe('zo%c3%ab%2eo%5fbrien%2btag%25%7e');
    expect(encode('example.test')).toBe('example%2etest');
    expect(storeEncode('pep_urn:xmpp:bookmarks:1')).toBe('pep_urn%3axmpp%3abookmarks%3a1');
    expect(storeEncode('account_details')).toBe('account_details');
    expect(encode('../../etc/passwd')).toBe('%2e%2e%2f%2e%2e%2fetc%2fpasswd');
    expect(encode('a/b')).toBe('a%2fb');
    expect(encode('con')).toBe('con');
    expect(encode('nul\u0000')).toBe('nul%00');
    expect(encode('Ünï 🎻')).toBe('%c3%9cn%c3%af%20%f0%9f%8e%bb');
  });

  it('never lets `/`, `.` or NUL through, and decodes back', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('.', '..', '/', '\u0000', '~', '%2e')), (s) => {
        const e = encode(s);
        const se = storeEncode(s);
        expect(e).toMatch(/^[A-Za-z0-9%]*$/);
        expect(se).toMatch(/^[A-Za-z0-9_%]*$/);
        expect(decode(e)).toBe(s);
        expect(decode(se)).toBe(s);
        if (s !== '') expect(decodeCanonical(e)).toBe(s);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps every path one level below its directory', () => {
    const data = path.resolve('/srv/prosody-data');
    for (const user of ['../../etc/passwd', 'a/b', 'con', 'nul\u0000', '..', '.', '.hidden', '/abs', 'x\\y']) {
      for (const host of ['localhost', '..', '../..', 'a/b']) {
        const p = getpath(data, host, 'accounts', user, 'dat');
        expect(path.dirname(path.dirname(path.dirname(p)))).toBe(data);
        expect(path.basename(p)).toBe(`${encode(user)}.dat`);
        expect(path.basename(path.dirname(path.dirname(p)))).toBe(encode(host));
      }
    }
    expect(() => getpath(data, 'localhost', 'accounts', '', 'dat')).toThrow(PathError);
    expect(() => getpath(data, '', 'accounts', 'alice', 'dat')).toThrow(PathError);
  });

  it('only decodes names Prosody itself would have written', () => {
    expect(decodeCanonical('alice')).toBe('alice');
    expect(decodeCanonical('zo%c3%ab')).toBe('zoë');
    expect(decodeCanonical('zo%C3%AB')).toBeUndefined(); // upper-case hex: never written
    expect(decodeCanonical('a.b')).toBeUndefined(); // raw dot: never written
    expect(decodeCanonical('%ff')).toBeUndefined(); // not UTF-8
    expect(decodeCanonical('_global')).toBeUndefined();
    expect(decodeCanonical('pep_urn%3axmpp', true)).toBe('pep_urn:xmpp');
  });
});

describe.skipIf(!luaAvailable())("same as util/datamanager.lua's gsub patterns in Lua 5.4", () => {
  it('encodes every test name identically', () => {
    const names = ['zoë.o_brien+tag%~', '../../etc/passwd', 'a/b', 'con', 'nul\u0000x', 'Ünï 🎻', 'pep_urn:xmpp:bookmarks:1', '\u007f\u0080ÿ'];
    const script = `
      local encode = function (s) return (s:gsub("%W", function (c) return string.format("%%%02x", c:byte()); end)) end
      local store_encode = function (s) return (s:gsub("[^_%w]", function (c) return string.format("%%%02x", c:byte()); end)) end
      for line in io.lines() do
        local s = line:gsub("%%(%x%x)", function (h) return string.char(tonumber(h, 16)) end)
        io.write(encode(s), " ", store_encode(s), "\\n")
      end`;
    const input = names.map((n) => [...Buffer.from(n, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')).join('\n') + '\n';
    const result = spawnSync(LUA, ['-e', script], { input, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual(names.map((n) => `${encode(n)} ${storeEncode(n)}`));
  });
});

async function listTree(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listTree(full, base)));
    else out.push(path.relative(base, full));
  }
  return out.sort();
}

async function* records(list: UserRecord[]): AsyncGenerator<UserRecord> {
  yield* list;
}

describe('hostile user and host names against a real directory', () => {
  let sandbox: string;
  beforeEach(async () => {
    sandbox = await mkdtemp(path.join(tmpdir(), 'xporta-sandbox-'));
    await mkdir(path.join(sandbox, 'data'));
    await mkdir(path.join(sandbox, 'etc'));
    await writeFile(path.join(sandbox, 'etc', 'passwd'), 'root:x:0:0\n');
  });
  afterEach(async () => {
    await rm(sandbox, { recursive: true, force: true });
  });

  it('creates every file inside the data directory, under the encoded names', async () => {
    const users = ['../../etc/passwd', '../etc/passwd', 'a/b', 'con', 'nul\u0000x', '..', '.hidden', '/abs'];
    const hosts = ['localhost', '..', '../etc'];
    const backend = new ProsodyFilesBackend({
      path: path.join(sandbox, 'data'),
      hosts: Object.fromEntries(hosts.map((h) => [h, { passwordHash: 'SHA-1' as const }])),
    });
    for (const host of hosts) {
      for (const user of users) {
        const account: UserStart = { kind: 'user', name: user, password: 'pw', scram: [], extraAttributes: {} };
        const report = await backend.applyUser({ host, user }, account, records([{ kind: 'blocklist', items: ['spam@example.net'] }]), {
          mode: 'replace',
          dryRun: false,
          include: new Set(['credentials', 'blocklist']),
          createAccount: true,
        });
        expect(report.created).toBe(true);
      }
    }
    const tree = await listTree(sandbox);
    expect(tree.filter((f) => !f.startsWith('data/'))).toEqual(['etc/passwd']);
    expect(await readFile(path.join(sandbox, 'etc', 'passwd'), 'utf8')).toBe('root:x:0:0\n');
    const expected = hosts.flatMap((h) => users.flatMap((u) => ['accounts', 'blocklist'].map((s) => `data/${encode(h)}/${s}/${encode(u)}.dat`)));
    // Besides the stores, only xporta's own lock holder file (removed when the process exits) is in the data directory.
    const [holders, stores] = [tree.filter((f) => f.startsWith('data/.xporta-locks/')), tree.filter((f) => f.startsWith('data/') && !f.startsWith('data/.xporta-locks/'))];
    expect(holders.every((f) => /^data\/\.xporta-locks\/\.holders\/\d+-[0-9a-f-]{36}$/.test(f)), holders.join(', ')).toBe(true);
    expect(stores).toEqual(expected.sort());
    for (const host of hosts) {
      const listed: string[] = [];
      for await (const u of backend.listUsers(host)) listed.push(u);
      expect(listed.sort()).toEqual([...users].sort());
      expect(await backend.userExists({ host, user: '../../etc/passwd' })).toBe(true);
    }
    expect(await backend.listHosts()).toEqual([...hosts].sort());
  });
});
