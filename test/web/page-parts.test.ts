import { describe, expect, it } from 'vitest';
import { escapeHtml, html, layout } from '../../src/web/html.js';
import { downloadDisposition, megabytes } from '../../src/web/plugin.js';
import { SessionStore, tokensEqual } from '../../src/web/sessions.js';

describe('the web page’s parts', () => {
  it('escapes every interpolated value once, and nests templates without escaping them again', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`<p>${inner}${['<', html`<br>`]}${undefined}${3}</p>`.value).toBe('<p><b>&lt;i&gt;</b>&lt;<br>3</p>');
    const page = layout({ title: '<script>', base: '/web', jid: 'a"b@example.org', csrf: 't' }, html``);
    expect(page).not.toContain('<script>alert');
    expect(page).toContain('&lt;script&gt;');
    expect(page).toContain('a&quot;b@example.org');
    expect(page).not.toMatch(/<script>(?!<\/script>)/);
  });

  it('names downloads by RFC 6266, UTF-8 for any JID and ASCII for old clients', () => {
    expect(downloadDisposition('jürgen@example.org.xml')).toBe(`attachment; filename="j_rgen@example.org.xml"; filename*=UTF-8''j%C3%BCrgen%40example.org.xml`);
    expect(downloadDisposition('a"b;c@x.xml')).toBe(`attachment; filename="a_b_c@x.xml"; filename*=UTF-8''a%22b%3Bc%40x.xml`);
  });

  it('states sizes in words', () => {
    expect(megabytes(1024 * 1024)).toBe('1 MB');
    expect(megabytes(256 * 1024 * 1024)).toBe('256 MB');
    expect(megabytes(4096)).toBe('4 KB');
  });

  it('keeps sessions by a digest of their id, ends them after their time, and compares tokens whole', () => {
    const store = new SessionStore(60);
    try {
      const { id, session } = store.create('alice@localhost', ['export']);
      expect(store.get(id)).toBe(session);
      expect(store.get(`${id}x`)).toBeUndefined();
      expect(store.get(id, Date.now() + 61_000)).toBeUndefined();
      expect(store.get(id)).toBeUndefined();
      const second = store.create('alice@localhost', ['export']);
      store.destroy(second.id);
      expect(store.get(second.id)).toBeUndefined();
    } finally {
      store.close();
    }
    expect(tokensEqual('abc', 'abc')).toBe(true);
    expect(tokensEqual('abc', 'abd')).toBe(false);
    expect(tokensEqual(undefined, 'abc')).toBe(false);
  });
});
