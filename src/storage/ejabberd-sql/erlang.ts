/**
 * The few Erlang terms ejabberd writes as text into SQL columns (`pubsub_node_option.val`, via
 * misc:term_to_expr): atoms, integers, binaries and lists of those. Anything else (tuples, maps,
 * floats) is refused rather than guessed at.
 *
 * Binaries hold UTF-8 bytes, and ejabberd reads the column back with misc:expr_to_term, which
 * scans the column's bytes one character per byte. So a binary is written as ejabberd's own
 * term_to_expr writes it: `<<"…">>` with the UTF-8 bytes as they are when every byte is a
 * printable Latin-1 character (`<<"desc ü">>`), else as a byte list (`<<78,111,195,171>>`).
 * A `<<"…"/utf8>>` form would be read back byte by byte and encoded a second time (mojibake).
 */

export type ErlangTerm =
  | { readonly type: 'atom'; readonly value: string }
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'binary'; readonly value: string }
  | { readonly type: 'list'; readonly items: readonly ErlangTerm[] };

export class ErlangTermError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ErlangTermError';
  }
}

export const atom = (value: string): ErlangTerm => ({ type: 'atom', value });
export const integer = (value: number): ErlangTerm => ({ type: 'integer', value });
export const binary = (value: string): ErlangTerm => ({ type: 'binary', value });
export const list = (items: readonly ErlangTerm[]): ErlangTerm => ({ type: 'list', items });

class Parser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parse(): ErlangTerm {
    const term = this.term();
    this.space();
    if (this.pos !== this.text.length) throw new ErlangTermError(`unexpected text after term: ${this.text}`);
    return term;
  }

  private space(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos] ?? '')) this.pos++;
  }

  private term(): ErlangTerm {
    this.space();
    const rest = this.text.slice(this.pos);
    if (rest.startsWith('<<')) return this.binaryTerm();
    if (rest.startsWith('[')) return this.listTerm();
    const int = /^-?\d+/.exec(rest);
    if (int) {
      this.pos += int[0].length;
      return integer(Number(int[0]));
    }
    const bare = /^[a-z][A-Za-z0-9_@]*/.exec(rest);
    if (bare) {
      this.pos += bare[0].length;
      return atom(bare[0]);
    }
    if (rest.startsWith("'")) return atom(this.quoted("'"));
    throw new ErlangTermError(`unsupported Erlang term: ${this.text}`);
  }

  private quoted(q: string): string {
    this.pos++;
    let out = '';
    for (;;) {
      const c = this.text[this.pos++];
      if (c === undefined) throw new ErlangTermError(`unterminated string in ${this.text}`);
      if (c === q) return out;
      if (c === '\\') {
        const e = this.text[this.pos++];
        out += e === undefined ? '' : (UNESCAPES[e] ?? e);
      } else out += c;
    }
  }

  /**
   * `<<>>`, `<<"…">>`, `<<"…"/utf8>>`, `<<78,111>>` and comma-separated mixes. The column text
   * arrives decoded from UTF-8, so a plain string segment is already the text its bytes spell;
   * a `/utf8` segment (older xporta versions wrote them) is taken as the text it names.
   */
  private binaryTerm(): ErlangTerm {
    this.pos += 2;
    const bytes: Buffer[] = [];
    this.space();
    if (this.text.startsWith('>>', this.pos)) {
      this.pos += 2;
      return binary('');
    }
    for (;;) {
      this.space();
      if (this.text[this.pos] === '"') {
        const raw = this.quoted('"');
        this.space();
        if (this.text.startsWith('/utf8', this.pos)) this.pos += 5;
        bytes.push(Buffer.from(raw, 'utf8'));
      } else {
        const int = /^\d{1,3}/.exec(this.text.slice(this.pos));
        if (!int || Number(int[0]) > 255) throw new ErlangTermError(`unsupported binary in ${this.text}`);
        this.pos += int[0].length;
        bytes.push(Buffer.from([Number(int[0])]));
      }
      this.space();
      if (this.text.startsWith('>>', this.pos)) {
        this.pos += 2;
        return binary(Buffer.concat(bytes).toString('utf8'));
      }
      if (this.text[this.pos] !== ',') throw new ErlangTermError(`unsupported binary in ${this.text}`);
      this.pos++;
    }
  }

  private listTerm(): ErlangTerm {
    this.pos++;
    const items: ErlangTerm[] = [];
    this.space();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return list(items);
    }
    for (;;) {
      items.push(this.term());
      this.space();
      const c = this.text[this.pos++];
      if (c === ']') return list(items);
      if (c !== ',') throw new ErlangTermError(`unsupported list in ${this.text}`);
    }
  }
}

const ESCAPES: Readonly<Record<string, string>> = { '\n': 'n', '\r': 'r', '\t': 't', '\v': 'v', '\b': 'b', '\f': 'f', '\x1b': 'e' };
const UNESCAPES: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(ESCAPES).map(([c, e]) => [e, c]));

/** io_lib:printable_latin1_list's characters, as bytes: what erl_prettypr writes as a string. */
function printableLatin1(byte: number): boolean {
  return (byte >= 0x20 && byte <= 0x7e) || byte >= 0xa0 || (byte >= 0x08 && byte <= 0x0d) || byte === 0x1b;
}

export function parseTerm(text: string): ErlangTerm {
  return new Parser(text).parse();
}

/** Quotes, backslashes and the control characters with an Erlang escape (built from ESCAPES: a literal may not name ESC). */
const TO_ESCAPE = new RegExp(`[\\\\"'${Object.keys(ESCAPES).join('')}]`, 'g');

function escape(value: string, q: string): string {
  return value.replace(TO_ESCAPE, (c) => {
    const e = ESCAPES[c];
    if (e !== undefined) return `\\${e}`;
    return c === q || c === '\\' ? `\\${c}` : c;
  });
}

export function formatTerm(term: ErlangTerm): string {
  switch (term.type) {
    case 'atom':
      return /^[a-z][A-Za-z0-9_@]*$/.test(term.value) ? term.value : `'${escape(term.value, "'")}'`;
    case 'integer':
      return String(term.value);
    case 'binary': {
      const bytes = Buffer.from(term.value, 'utf8');
      if (bytes.length === 0) return '<<>>';
      // Written as UTF-8, the text's bytes are the binary's bytes: see the module comment.
      if (bytes.every(printableLatin1)) return `<<"${escape(term.value, '"')}">>`;
      return `<<${bytes.join(',')}>>`;
    }
    case 'list':
      return `[${term.items.map(formatTerm).join(',')}]`;
  }
}
