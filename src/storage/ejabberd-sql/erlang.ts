/**
 * The few Erlang terms ejabberd writes as text into SQL columns (`pubsub_node_option.val`, via
 * misc:term_to_expr): atoms, integers, binaries `<<"…">>` and lists of those. Anything else
 * (tuples, maps, floats) is refused rather than guessed at.
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
        out += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : (e ?? '');
      } else out += c;
    }
  }

  private binaryTerm(): ErlangTerm {
    this.pos += 2;
    this.space();
    let value = '';
    if (this.text[this.pos] === '"') {
      const raw = this.quoted('"');
      // misc:term_to_expr writes UTF-8 binaries as `<<"…"/utf8>>`; plain ones are Latin-1 bytes.
      this.space();
      if (this.text.startsWith('/utf8', this.pos)) {
        this.pos += 5;
        value = raw;
      } else {
        value = Buffer.from(raw, 'latin1').toString('utf8');
      }
    }
    this.space();
    if (!this.text.startsWith('>>', this.pos)) throw new ErlangTermError(`unsupported binary in ${this.text}`);
    this.pos += 2;
    return binary(value);
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

export function parseTerm(text: string): ErlangTerm {
  return new Parser(text).parse();
}

function escape(value: string, q: string): string {
  return value.replace(/[\\"'\n\r\t]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return c === q || c === '\\' ? `\\${c}` : c;
  });
}

export function formatTerm(term: ErlangTerm): string {
  switch (term.type) {
    case 'atom':
      return /^[a-z][A-Za-z0-9_@]*$/.test(term.value) ? term.value : `'${escape(term.value, "'")}'`;
    case 'integer':
      return String(term.value);
    case 'binary':
      // The /utf8 form keeps non-ASCII text intact whatever the reader's source encoding.
      return /^[\x20-\x7e]*$/.test(term.value) ? `<<"${escape(term.value, '"')}">>` : `<<"${escape(term.value, '"')}"/utf8>>`;
    case 'list':
      return `[${term.items.map(formatTerm).join(',')}]`;
  }
}
