/**
 * The document structure of XEP-0227: the state machine that decides, element by element, what
 * an open element is (`<server-data>`, `<host>`, `<user>`, a streamed container, a record to
 * capture, something to skip), validates hosts and users, and turns each captured subtree into
 * records (records.ts), which it queues in document order.
 *
 * Accepted dialects besides the XEP's own: Prosody's mod_storage_xep0227 (pending presences
 * without a namespace, `subscribed=` on PEP subscriptions, roster `version=`, extended-xep0227
 * attributes, archived messages without `jabber:client`) and ejabberd's export_piefxis (the
 * pre-1.0 namespace, double-base64 SCRAM values, XIncluded host files).
 *
 * Nothing inside `<user>` is dropped: elements without a typed record become `opaque` records,
 * unknown children of the streamed containers (archive, offline-messages, pubsub items) become
 * opaque records wrapped in their container, so that writing them back gives the same tree.
 * Unknown children of `<server-data>` and `<host>` are skipped.
 */
import type { SaxesTagNS } from 'saxes';
import { NS, type OpaqueRecord, type ScramCredentials, type UserRecord, type UserStart, type XmlElement } from '../../records/model.js';
import { ElementBuilder, attributeKey } from '../../xml/parse.js';
import { DocumentInput } from './input.js';
import {
  RecordError,
  STANZA_NS_TO_ADOPT,
  invalid,
  normaliseJid,
  toArchive,
  toBlocklist,
  toOffline,
  toPending,
  toPepItem,
  toPepNodes,
  toPrivacy,
  toRoster,
  toScram,
  wrapIn,
  type JidForm,
} from './records.js';
import type { RootKind } from './shared.js';
import { IncludeRequest, MAX_INCLUDE_DEPTH, includeTarget } from './xinclude.js';

const PIE_NAMESPACES: ReadonlySet<string> = new Set([NS.pie, NS.pieLegacy]);

/** What an open element is, for deciding what its children are. */
type Frame =
  | { readonly kind: 'server-data' | 'host' | 'user' | 'skip' | 'capture' | 'private' | 'archive' | 'pubsub' }
  | { readonly kind: 'offline'; readonly ns: string }
  | { readonly kind: 'items'; readonly node: string };

/** What a captured subtree becomes when it closes. */
type Capture =
  | { readonly kind: 'scram' | 'roster' | 'presence' | 'vcard' | 'private' | 'pep-owner' | 'archive' | 'offline' }
  | { readonly kind: 'blocklist' | 'privacy' | 'opaque' }
  | { readonly kind: 'pep-item'; readonly node: string }
  | { readonly kind: 'wrapped'; readonly wrap: (el: XmlElement) => XmlElement };

interface OpenUser {
  readonly name: string;
  readonly jid: string;
  readonly start: Omit<UserStart, 'scram'>;
  readonly scram: ScramCredentials[];
  readonly warnings: string[];
  /** Records met before the user could be emitted (SCRAM sets of unknown mechanisms). */
  readonly deferred: UserRecord[];
  emitted: boolean;
}

/** The parser of one document: the main one or an XIncluded file. */
export class DocumentParser extends DocumentInput {
  private readonly stack: Frame[] = [];
  private host: string | undefined;
  private user: OpenUser | undefined;
  private capture: Capture | undefined;
  /** Elements opened in the current capture, its root included. */
  private captureNodes = 0;
  /** 1 when the main document's root is `<host>`: depths count as if `<server-data>` were around it. */
  private rootShift = 0;

  protected inArchive(): boolean {
    return this.stack[this.stack.length - 1]?.kind === 'archive';
  }

  protected openDepth(): number {
    return this.stack.length + this.ctx.depthOffset + this.rootShift;
  }

  protected archiveOwner(): string {
    return this.user?.jid ?? '';
  }

  /** Named at the record's start tag, as an element over the byte limit is. */
  private tooManyNodes(): never {
    this.fail(
      'too-many-nodes',
      `an element holds more than ${this.shared.maxElementNodes} elements`,
      this.positions[0] ?? this.tagLine,
      this.positions[1] ?? this.tagColumn,
    );
  }

  protected onOpen(tag: SaxesTagNS): void {
    const depth = this.stack.length + 1 + this.ctx.depthOffset + this.rootShift;
    if (depth > this.shared.maxDepth) {
      this.fail('too-deep', `elements are nested deeper than ${this.shared.maxDepth} levels`, this.tagLine, this.tagColumn);
    }
    if (this.builder) {
      if (++this.captureNodes > this.shared.maxElementNodes) this.tooManyNodes();
      this.builder.open(tag);
      this.positions.push(this.tagLine, this.tagColumn);
      this.stack.push({ kind: 'capture' });
      return;
    }
    const parent = this.stack[this.stack.length - 1];
    if (!parent) return this.openRoot(tag);
    switch (parent.kind) {
      // Unknown children of <server-data> and <host> are skipped, not kept: the model has no
      // host-level record, and XEP-0227 puts no user data there.
      case 'server-data':
        if (tag.uri === NS.xinclude && tag.local === 'include') return this.openInclude(tag, new Set(['server-data', 'host']), depth);
        if (tag.local === 'host' && PIE_NAMESPACES.has(tag.uri)) return this.openHost(tag);
        return this.push({ kind: 'skip' });
      case 'host':
        if (tag.uri === NS.xinclude && tag.local === 'include') return this.openInclude(tag, new Set(['user']), depth);
        if (tag.local === 'user' && PIE_NAMESPACES.has(tag.uri)) return this.openUser(tag);
        return this.push({ kind: 'skip' });
      case 'user':
        return this.openUserChild(tag);
      case 'private':
        return this.startCapture(tag, { kind: 'private' });
      case 'archive':
        if (tag.local === 'result' && tag.uri === NS.mam) return this.startCapture(tag, { kind: 'archive' });
        return this.startCapture(tag, { kind: 'wrapped', wrap: (el) => wrapIn('archive', NS.mamArchive, {}, el) });
      case 'offline': {
        if (tag.local === 'message' && (tag.uri === NS.client || STANZA_NS_TO_ADOPT.has(tag.uri))) {
          return this.startCapture(tag, { kind: 'offline' });
        }
        const ns = parent.ns;
        return this.startCapture(tag, { kind: 'wrapped', wrap: (el) => wrapIn('offline-messages', ns, {}, el) });
      }
      case 'pubsub':
        if (tag.local === 'items' && tag.uri === NS.pubsub) {
          const node = tag.attributes.node?.value;
          if (node === undefined) this.fail('missing-attribute', "<items> has no 'node' attribute", this.tagLine, this.tagColumn);
          return this.push({ kind: 'items', node });
        }
        return this.startCapture(tag, { kind: 'wrapped', wrap: (el) => wrapIn('pubsub', NS.pubsub, {}, el) });
      case 'items': {
        const node = parent.node;
        if (tag.local === 'item' && tag.uri === NS.pubsub) return this.startCapture(tag, { kind: 'pep-item', node });
        return this.startCapture(tag, {
          kind: 'wrapped',
          wrap: (el) => wrapIn('pubsub', NS.pubsub, {}, wrapIn('items', NS.pubsub, { node }, el)),
        });
      }
      case 'skip':
      case 'capture':
        return this.push({ kind: 'skip' });
    }
  }

  private push(frame: Frame): void {
    this.stack.push(frame);
    this.mark();
  }

  private openRoot(tag: SaxesTagNS): void {
    const kind = tag.local as RootKind;
    if (!this.ctx.roots.has(kind)) {
      const expected = [...this.ctx.roots].map((r) => `<${r}>`).join(' or ');
      this.fail('wrong-root', `the root element must be ${expected}, not <${tag.local}>`, this.tagLine, this.tagColumn);
    }
    if (!PIE_NAMESPACES.has(tag.uri)) {
      this.fail(
        'wrong-namespace',
        `<${tag.local}> must be in namespace ${NS.pie}, not ${tag.uri === '' ? 'no namespace' : tag.uri}`,
        this.tagLine,
        this.tagColumn,
      );
    }
    if (kind === 'server-data') return this.push({ kind: 'server-data' });
    if (kind === 'host') {
      if (this.ctx.includeDepth === 0) this.rootShift = 1;
      return this.openHost(tag);
    }
    this.host = this.ctx.host;
    return this.openUser(tag);
  }

  private attr(tag: SaxesTagNS, name: string): string {
    const value = tag.attributes[name]?.value;
    if (value === undefined) this.fail('missing-attribute', `<${tag.local}> has no '${name}' attribute`, this.tagLine, this.tagColumn);
    return value;
  }

  private jid(value: string, form: JidForm, what: string): string {
    try {
      return normaliseJid(value, form);
    } catch (err) {
      return this.fail('invalid-jid', `${what} '${value}' is not a valid JID: ${(err as Error).message}`, this.tagLine, this.tagColumn);
    }
  }

  private openHost(tag: SaxesTagNS): void {
    const jid = this.jid(this.attr(tag, 'jid'), 'domain', 'host');
    this.host = jid;
    this.queue.push({ kind: 'host', jid });
    this.push({ kind: 'host' });
  }

  private openUser(tag: SaxesTagNS): void {
    const host = this.host ?? this.fail('wrong-root', '<user> outside a host', this.tagLine, this.tagColumn);
    const raw = this.attr(tag, 'name');
    if (raw.includes('@') || raw.includes('/')) {
      this.fail('invalid-jid', `user name '${raw}' is not a valid localpart`, this.tagLine, this.tagColumn);
    }
    const jid = this.jid(`${raw}@${host}`, 'bare', 'user');
    const name = jid.slice(0, jid.lastIndexOf('@'));
    let names = this.shared.users.get(host);
    if (!names) {
      names = new Set();
      this.shared.users.set(host, names);
    }
    if (names.has(name)) this.fail('duplicate-user', `user '${name}' appears twice in host ${host}`, this.tagLine, this.tagColumn);
    names.add(name);
    let password: string | undefined;
    const extraAttributes: Record<string, string> = {};
    for (const attr of Object.values(tag.attributes)) {
      const key = attributeKey(attr);
      if (key === undefined || key === 'name') continue;
      if (key === 'password') {
        if (this.shared.credentials) password = attr.value;
      } else {
        extraAttributes[key] = attr.value;
      }
    }
    this.user = {
      name,
      jid,
      start: { kind: 'user', name, ...(password === undefined ? {} : { password }), extraAttributes },
      scram: [],
      warnings: [],
      deferred: [],
      emitted: false,
    };
    this.push({ kind: 'user' });
  }

  /** Emits the `user` event once its credentials (which must come first) are known. */
  private flushUser(): void {
    const user = this.user;
    if (!user || user.emitted) return;
    user.emitted = true;
    const start: UserStart = { ...user.start, scram: user.scram, ...(user.warnings.length > 0 ? { warnings: user.warnings } : {}) };
    this.queue.push(start, ...user.deferred);
  }

  private openUserChild(tag: SaxesTagNS): void {
    const { uri, local } = tag;
    if (local === 'scram-credentials' && uri === NS.scram && !this.shared.credentials) return this.push({ kind: 'skip' });
    if (local === 'scram-credentials' && uri === NS.scram) {
      if (this.user?.emitted) {
        this.fail(
          'invalid-value',
          '<scram-credentials> must come before the other children of <user>',
          this.tagLine,
          this.tagColumn,
        );
      }
      return this.startCapture(tag, { kind: 'scram' });
    }
    if (uri === NS.xinclude && local === 'include') {
      this.fail('xinclude', 'xi:include is only supported as a child of <server-data> or <host>', this.tagLine, this.tagColumn);
    }
    this.flushUser();
    if (local === 'query' && uri === NS.roster) return this.startCapture(tag, { kind: 'roster' });
    if (local === 'presence' && (uri === NS.client || PIE_NAMESPACES.has(uri))) return this.startCapture(tag, { kind: 'presence' });
    if (local === 'vCard' && uri === NS.vcardTemp) return this.startCapture(tag, { kind: 'vcard' });
    if (local === 'query' && uri === NS.private) return this.push({ kind: 'private' });
    if (local === 'pubsub' && uri === NS.pubsubOwner) return this.startCapture(tag, { kind: 'pep-owner' });
    if (local === 'pubsub' && uri === NS.pubsub) return this.push({ kind: 'pubsub' });
    if (local === 'archive' && uri === NS.mamArchive) return this.push({ kind: 'archive' });
    if (local === 'offline-messages' && PIE_NAMESPACES.has(uri)) return this.push({ kind: 'offline', ns: uri });
    if (local === 'blocklist' && uri === NS.blocking) return this.startCapture(tag, { kind: 'blocklist' });
    if (local === 'query' && uri === NS.privacy) return this.startCapture(tag, { kind: 'privacy' });
    return this.startCapture(tag, { kind: 'opaque' });
  }

  private openInclude(tag: SaxesTagNS, roots: ReadonlySet<RootKind>, depth: number): void {
    if (!this.shared.allowXInclude) {
      this.fail('xinclude', 'XInclude is not allowed for this document', this.tagLine, this.tagColumn);
    }
    if (this.ctx.includeDepth >= MAX_INCLUDE_DEPTH) {
      this.fail('xinclude', `XIncludes are nested deeper than ${MAX_INCLUDE_DEPTH} levels`, this.tagLine, this.tagColumn);
    }
    const attrs: Record<string, string> = {};
    for (const attr of Object.values(tag.attributes)) {
      const key = attributeKey(attr);
      if (key !== undefined) attrs[key] = attr.value;
    }
    let target: string;
    try {
      target = includeTarget(attrs);
    } catch (err) {
      return this.fail('xinclude', (err as Error).message, this.tagLine, this.tagColumn);
    }
    const host = roots.has('user') ? this.host : undefined;
    this.queue.push(new IncludeRequest(target, roots, host, depth, this.tagLine, this.tagColumn));
    this.push({ kind: 'skip' });
  }

  protected onClose(): void {
    const frame = this.stack.pop();
    if (frame?.kind === 'capture') {
      const el = this.builder?.close();
      if (el) this.finishCapture(el);
      return;
    }
    this.mark();
    if (frame?.kind === 'user') {
      this.flushUser();
      this.queue.push({ kind: 'user-end' });
      this.user = undefined;
    } else if (frame?.kind === 'host') {
      this.queue.push({ kind: 'host-end' });
      this.host = undefined;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Captured subtrees

  private startCapture(tag: SaxesTagNS, capture: Capture): void {
    this.builder = new ElementBuilder();
    this.capture = capture;
    this.positions = [this.tagLine, this.tagColumn];
    this.captureNodes = 1;
    this.builder.open(tag);
    // Not push(): the bytes since the previous event (this start tag) count towards the element.
    this.stack.push({ kind: 'capture' });
  }

  private finishCapture(el: XmlElement): void {
    const capture = this.capture;
    this.builder = undefined;
    this.capture = undefined;
    const total = this.bytesSinceMark();
    if (total > this.shared.maxElementBytes) {
      this.fail('element-too-large', `an element is larger than ${this.shared.maxElementBytes} bytes`, this.positions[0] ?? 1, this.positions[1] ?? 1);
    }
    this.mark();
    if (!capture) return;
    try {
      this.convert(el, capture);
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      const [line, column] = this.positionOf(el, err.at);
      this.fail(err.code, err.message, line, column);
    }
  }

  private convert(el: XmlElement, capture: Capture): void {
    const user = this.user;
    switch (capture.kind) {
      case 'scram': {
        const read = toScram(el);
        if (!user) return;
        if (!read) {
          user.deferred.push({ kind: 'opaque', element: el });
          return;
        }
        const { scram, warning } = read;
        if (user.scram.some((s) => s.mechanism === scram.mechanism)) invalid(el, `${scram.mechanism} credentials appear twice`);
        user.scram.push(scram);
        if (warning !== undefined) user.warnings.push(warning);
        return;
      }
      case 'roster':
        return void this.queue.push(toRoster(el));
      case 'presence':
        return void this.queue.push(toPending(el));
      case 'vcard':
        return void this.queue.push({ kind: 'vcard', vcard: el });
      case 'private':
        return void this.queue.push({ kind: 'private', element: el });
      case 'pep-owner':
        return void this.queue.push(...toPepNodes(el));
      case 'pep-item':
        return void this.queue.push(toPepItem(el, capture.node));
      case 'archive':
        return void this.queue.push(toArchive(el, user?.jid ?? ''));
      case 'offline':
        return void this.queue.push(toOffline(el));
      case 'blocklist':
        return void this.queue.push(toBlocklist(el));
      case 'privacy':
        return void this.queue.push(toPrivacy(el));
      case 'opaque':
        return void this.queue.push({ kind: 'opaque', element: el } satisfies OpaqueRecord);
      case 'wrapped':
        return void this.queue.push({ kind: 'opaque', element: capture.wrap(el) });
    }
  }

  /** Position of `target` inside the captured `root`: elements were opened in document order. */
  private positionOf(root: XmlElement, target: XmlElement): [number, number] {
    let index = 0;
    let found = -1;
    const walk = (el: XmlElement): void => {
      if (found !== -1) return;
      if (el === target) {
        found = index;
        return;
      }
      index++;
      for (const child of el.children) if (typeof child !== 'string') walk(child);
    };
    walk(root);
    const i = Math.max(0, found) * 2;
    return [this.positions[i] ?? 1, this.positions[i + 1] ?? 1];
  }
}
