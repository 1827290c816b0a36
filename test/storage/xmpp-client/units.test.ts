/**
 * Units of the client-protocol reader: SASL against the RFCs' worked examples, mechanism
 * choice, `xmppClient.services` entries, and the retry of throttled requests (with a stand-in
 * stream: the one function under test is the reader's request loop).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/config.js';
import { parseServiceEntry } from '../../../src/storage/xmpp-client/index.js';
import { XmppPullError, XmppStanzaError } from '../../../src/storage/xmpp-client/errors.js';
import { RemoteAccountReader, type PullNotes } from '../../../src/storage/xmpp-client/reader.js';
import { chooseSasl, startSasl } from '../../../src/storage/xmpp-client/scram.js';
import type { ClientStream } from '../../../src/storage/xmpp-client/stream.js';
import { element, type UserRecord, type XmlElement } from '../../../src/records/model.js';

describe('SASL', () => {
  it('SCRAM-SHA-1 gives the RFC 5802 §5 example exchange', () => {
    const sasl = startSasl('SCRAM-SHA-1', 'user', 'pencil', { clientNonce: 'fyko+d2lbbFgONRv9qkxdawL' });
    expect(sasl.initial().toString()).toBe('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
    const final = sasl.challenge(Buffer.from('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'));
    expect(final.toString()).toBe('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
    expect(() => sasl.success(Buffer.from('v=rmF9pqV8S7suAoZWja4dJRkFsKQ='))).not.toThrow();
  });

  it('SCRAM-SHA-256 gives the RFC 7677 §3 example exchange', () => {
    const sasl = startSasl('SCRAM-SHA-256', 'user', 'pencil', { clientNonce: 'rOprNGfwEbeRWgbNEkqO' });
    expect(sasl.initial().toString()).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const final = sasl.challenge(Buffer.from('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'));
    expect(final.toString()).toBe('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    expect(() => sasl.success(Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='))).not.toThrow();
  });

  it('refuses a server that cannot prove it knows the password, and a nonce it did not extend', () => {
    const sasl = startSasl('SCRAM-SHA-1', 'user', 'pencil', { clientNonce: 'fyko+d2lbbFgONRv9qkxdawL' });
    sasl.challenge(Buffer.from('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'));
    expect(() => sasl.success(Buffer.from('v=AAAAAAAAAAAAAAAAAAAAAAAAAAA='))).toThrow(/signature/);
    expect(() => sasl.success(Buffer.alloc(0))).toThrow(/signature/);
    const other = startSasl('SCRAM-SHA-1', 'user', 'pencil', { clientNonce: 'abc' });
    expect(() => other.challenge(Buffer.from('r=xyz,s=QSXCR+Q6sek8bf92,i=4096'))).toThrow(/malformed/);
  });

  it('sends user name and password as UTF-8 (PLAIN), never mangled to Latin-1', () => {
    const plain = startSasl('PLAIN', 'zoë', 'pässwörd');
    expect(plain.initial()).toEqual(Buffer.from('\0zoë\0pässwörd', 'utf8'));
    expect(startSasl('SCRAM-SHA-1', 'zoë', 'x', { clientNonce: 'n' }).initial()).toEqual(Buffer.from('n,,n=zoë,r=n', 'utf8'));
  });

  it('prefers SCRAM-SHA-256, and offers PLAIN only on an encrypted stream', () => {
    const chooseMechanism = (offered: string[], encrypted: boolean): string | undefined => chooseSasl(offered, encrypted)?.mechanism;
    expect(chooseMechanism(['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256'], true)).toBe('SCRAM-SHA-256');
    expect(chooseMechanism(['PLAIN', 'SCRAM-SHA-1'], false)).toBe('SCRAM-SHA-1');
    expect(chooseMechanism(['PLAIN'], true)).toBe('PLAIN');
    expect(chooseMechanism(['PLAIN'], false)).toBeUndefined();
    // -PLUS needs binding data of the connection: none is given here.
    expect(chooseMechanism(['SCRAM-SHA-1-PLUS', 'X-OAUTH2'], true)).toBeUndefined();
  });
});

describe('xmppClient.services entries', () => {
  it('parses domain=host:port and the /tls suffix', () => {
    expect(parseServiceEntry('Old.Example=10.0.0.5:5222')).toEqual({ domain: 'old.example', service: { host: '10.0.0.5', port: 5222, directTls: false } });
    expect(parseServiceEntry('old.example=[::1]:5223/tls')).toEqual({ domain: 'old.example', service: { host: '::1', port: 5223, directTls: true } });
    expect(() => parseServiceEntry('old.example=10.0.0.5')).toThrow();
    expect(() => parseServiceEntry('old.example=10.0.0.5:70000')).toThrow();
  });
});

describe('xmppClient configuration', () => {
  it('has safe defaults and refuses malformed service entries', () => {
    const config = loadConfig({ env: {}, cwd: '/srv/xporta' });
    expect(config.xmppClient).toEqual({ allowPlaintext: false, services: [], timeoutMs: 30_000, pageSize: 250, maxConcurrentPulls: 4, maxArchiveMessages: 2_000_000 });
    const custom = loadConfig({ env: { XPORTA_XMPP_CLIENT: JSON.stringify({ caFile: 'ca.pem', services: ['old.example=10.0.0.5:5223/tls'] }) }, cwd: '/srv/xporta' });
    expect(custom.xmppClient.caFile).toBe('/srv/xporta/ca.pem');
    expect(() => loadConfig({ env: { XPORTA_XMPP_CLIENT: JSON.stringify({ services: ['old.example'] }) }, cwd: '/srv/xporta' })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { XPORTA_XMPP_CLIENT: JSON.stringify({ plaintext: true }) }, cwd: '/srv/xporta' })).toThrow(ConfigError);
  });
});

describe('throttled requests', () => {
  const rosterResult = (): XmlElement =>
    element('iq', 'jabber:client', { type: 'result' }, [element('query', 'jabber:iq:roster', {}, [element('item', 'jabber:iq:roster', { jid: 'bob@example.org', subscription: 'both' })])]);

  async function readRoster(answers: (() => XmlElement)[]): Promise<{ records: UserRecord[]; notes: PullNotes; calls: number }> {
    let calls = 0;
    const stream = {
      iq: async (): Promise<XmlElement> => {
        const answer = answers[Math.min(calls++, answers.length - 1)];
        return (answer as () => XmlElement)();
      },
    } as unknown as ClientStream;
    const notes: PullNotes = { refused: [], warnings: [], archiveRead: 0 };
    const records: UserRecord[] = [];
    for await (const r of new RemoteAccountReader(stream, 'alice@example.org', notes).records({ include: new Set(['roster']), pageSize: 10, backoffMs: 1 })) records.push(r);
    return { records, notes, calls };
  }

  const throttled = (condition: string, type: string) => (): XmlElement => {
    throw new XmppStanzaError(condition, type);
  };

  it('retries resource-constraint and wait-type errors with backoff, then reads', async () => {
    const { records, notes, calls } = await readRoster([throttled('resource-constraint', 'wait'), throttled('policy-violation', 'wait'), rosterResult]);
    expect(calls).toBe(3);
    expect(records).toEqual([{ kind: 'roster', items: [{ jid: 'bob@example.org', subscription: 'both', groups: [] }] }]);
    expect(notes.refused).toEqual([]);
  });

  it('fails the pull with `throttled` after the attempts; other errors are listed at once and the pull goes on', async () => {
    const persistent = await readRoster([throttled('resource-constraint', 'wait')]).catch((e: unknown) => e);
    expect(persistent).toBeInstanceOf(XmppPullError);
    expect((persistent as XmppPullError).code).toBe('throttled');
    expect((persistent as XmppPullError).message).toContain('roster: still resource-constraint after 5 attempts');
    const refused = await readRoster([throttled('service-unavailable', 'cancel')]);
    expect(refused.calls).toBe(1);
    expect(refused.notes.refused).toEqual(['roster: service-unavailable']);
  });
});
