import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { element, firstChild, textOf, type XmlElement, type XmlNode } from '../../src/records/model.js';
import { NS } from '../../src/records/namespaces.js';
import { AVATAR_DATA_NODE, AVATAR_METADATA_NODE, PepProfile, VCARD4_NODE, vcardTempToPep } from '../../src/records/vcard-legacy.js';

const t = (name: string, ...children: XmlNode[]): XmlElement => element(name, NS.vcardTemp, {}, children);
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

describe('vcardTempToPep (mod_vcard_legacy vcard_to_pep)', () => {
  const vcard = t(
    'vCard',
    t('FN', 'Alice Example'),
    t('N', t('FAMILY', 'Example'), t('GIVEN', 'Alice')),
    t('NICKNAME', 'alice'),
    t('EMAIL', t('USERID', 'alice@example.org'), t('INTERNET'), t('WORK')),
    t('TEL', t('NUMBER', '+1 555'), t('HOME')),
    t('ADR', t('STREET', 'Main St 1'), t('CTRY', 'NL')),
    t('ORG', t('ORGNAME', 'Example Inc')),
    t('JABBERID', 'alice@localhost'),
    t('PHOTO', t('TYPE', 'image/png'), t('BINVAL', PNG)),
  );

  it('gives the vcard4 item and an avatar whose id is the SHA-1 of the image', () => {
    const { vcard4, avatar } = vcardTempToPep(vcard);
    expect(vcard4.xmlns).toBe(NS.vcard4);
    expect(textOf(firstChild(firstChild(vcard4, 'fn')!, 'text')!)).toBe('Alice Example');
    const id = createHash('sha1').update(Buffer.from(PNG, 'base64')).digest('hex');
    expect(avatar?.id).toBe(id);
    expect(firstChild(avatar!.metadata, 'info')?.attrs).toEqual({ bytes: String(Buffer.from(PNG, 'base64').length), id, type: 'image/png' });
    expect(textOf(avatar!.data)).toBe(PNG);
  });

  it('is read back by the vcard-temp view Prosody serves from PEP', () => {
    const { vcard4, avatar } = vcardTempToPep(vcard);
    const profile = new PepProfile();
    profile.add({ kind: 'pep-item', node: VCARD4_NODE, id: 'current', payload: vcard4 });
    profile.add({ kind: 'pep-item', node: AVATAR_METADATA_NODE, id: avatar!.id, payload: avatar!.metadata });
    profile.add({ kind: 'pep-item', node: AVATAR_DATA_NODE, id: avatar!.id, payload: avatar!.data });
    const served = profile.toVCardTemp();
    const text = (name: string): string | undefined => {
      const child = firstChild(served, name, NS.vcardTemp);
      return child ? textOf(child) : undefined;
    };
    expect(text('FN')).toBe('Alice Example');
    expect(text('NICKNAME')).toBe('alice');
    expect(text('JABBERID')).toBe('alice@localhost');
    const email = firstChild(served, 'EMAIL', NS.vcardTemp)!;
    expect(textOf(firstChild(email, 'USERID', NS.vcardTemp)!)).toBe('alice@example.org');
    expect(firstChild(email, 'WORK', NS.vcardTemp)).toBeDefined();
    const tel = firstChild(served, 'TEL', NS.vcardTemp)!;
    expect(textOf(firstChild(tel, 'NUMBER', NS.vcardTemp)!)).toBe('+1 555');
    expect(firstChild(tel, 'HOME', NS.vcardTemp)).toBeDefined();
    const photo = firstChild(served, 'PHOTO', NS.vcardTemp)!;
    expect(textOf(firstChild(photo, 'BINVAL', NS.vcardTemp)!)).toBe(PNG);
  });

  it('a PHOTO by URL gives no avatar', () => {
    expect(vcardTempToPep(t('vCard', t('PHOTO', t('EXTVAL', 'https://example.org/a.png')))).avatar).toBeUndefined();
  });
});
