/**
 * The CLI's host import report written as the import goes: the same text as
 * `JSON.stringify(report, null, 2)` of the whole {@link HostImportReport}, but each account's
 * outcome is written when it is final and then dropped, so a host of any size costs no memory
 * per account.
 */
import type { HostAccountOutcome, HostProgress } from '../transfer/host-transfer.js';

/** `json` (as JSON.stringify with 2 spaces gives it) with each line after the first indented by `spaces`. */
function nested(json: string, spaces: number): string {
  return json.replaceAll('\n', `\n${' '.repeat(spaces)}`);
}

export class HostReportStream {
  private hosts = 0;
  private users = 0;
  private ended = false;

  constructor(private readonly write: (text: string) => void) {}

  beginHost(host: string): void {
    this.write(`${this.hosts === 0 ? '{\n  "hosts": [' : ','}\n    {\n      "host": ${JSON.stringify(host)},\n      "users": [`);
    this.hosts++;
    this.users = 0;
  }

  user(outcome: HostAccountOutcome): void {
    this.write(`${this.users === 0 ? '' : ','}\n        ${nested(JSON.stringify(outcome, null, 2), 8)}`);
    this.users++;
  }

  endHost(progress: HostProgress): void {
    this.write(`${this.users === 0 ? ']' : '\n      ]'},\n      "progress": ${nested(JSON.stringify(progress, null, 2), 6)}\n    }`);
  }

  /** The end of the report; nothing is written after it. */
  end(skippedHosts: readonly string[]): void {
    if (this.ended) return;
    this.ended = true;
    this.write(`${this.hosts === 0 ? '{\n  "hosts": []' : '\n  ]'},\n  "skippedHosts": ${nested(JSON.stringify(skippedHosts, null, 2), 2)}\n}\n`);
  }
}
