/**
 * A host import's `users` list (each account's {@link HostAccountOutcome}) written as JSON one
 * outcome at a time, in exactly the text `JSON.stringify` gives for the whole list, compact or
 * indented: whoever reports a host of any size holds no account's outcome once it is written.
 */
import type { HostAccountOutcome } from './host-transfer.js';

export interface JsonLayout {
  /** Spaces per level, as JSON.stringify's third argument; 0 for compact JSON. */
  readonly indent: number;
  /** Spaces before the list's closing bracket: how deep the list sits in the document. */
  readonly depth: number;
}

const COMPACT: JsonLayout = { indent: 0, depth: 0 };

export class OutcomeListWriter {
  private count = 0;
  private readonly itemBreak: string;

  constructor(
    private readonly write: (text: string) => void,
    private readonly layout: JsonLayout = COMPACT,
  ) {
    this.itemBreak = layout.indent > 0 ? `\n${' '.repeat(layout.depth + layout.indent)}` : '';
    write('[');
  }

  /** Outcomes written so far. */
  get written(): number {
    return this.count;
  }

  add(outcome: HostAccountOutcome): void {
    const { indent } = this.layout;
    const json = indent > 0 ? JSON.stringify(outcome, null, indent).replaceAll('\n', this.itemBreak) : JSON.stringify(outcome);
    this.write(`${this.count === 0 ? '' : ','}${this.itemBreak}${json}`);
    this.count++;
  }

  /** Closes the list; nothing is added after it. */
  end(): void {
    this.write(this.count > 0 && this.layout.indent > 0 ? `\n${' '.repeat(this.layout.depth)}]` : ']');
  }
}
