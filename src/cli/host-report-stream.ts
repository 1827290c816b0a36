/**
 * The CLI's host import report written as the import goes: the same text as
 * `JSON.stringify(report, null, 2)` of the whole {@link HostImportReport}, but each account's
 * outcome is written when it is final and then dropped (OutcomeListWriter), so a host of any
 * size costs no memory per account.
 */
import type { HostAccountOutcome, HostProgress } from '../transfer/host-transfer.js';
import { OutcomeListWriter } from '../transfer/host-report.js';

/** `json` (as JSON.stringify with 2 spaces gives it) with each line after the first indented by `spaces`. */
function nested(json: string, spaces: number): string {
  return json.replaceAll('\n', `\n${' '.repeat(spaces)}`);
}

export class HostReportStream {
  private hosts = 0;
  private users: OutcomeListWriter | undefined;
  private ended = false;

  constructor(private readonly write: (text: string) => void) {}

  beginHost(host: string): void {
    this.write(`${this.hosts === 0 ? '{\n  "hosts": [' : ','}\n    {\n      "host": ${JSON.stringify(host)},\n      "users": `);
    this.hosts++;
    this.users = new OutcomeListWriter(this.write, { indent: 2, depth: 6 });
  }

  user(outcome: HostAccountOutcome): void {
    this.users?.add(outcome);
  }

  endHost(progress: HostProgress): void {
    this.users?.end();
    this.users = undefined;
    this.write(`,\n      "progress": ${nested(JSON.stringify(progress, null, 2), 6)}\n    }`);
  }

  /** The end of the report; nothing is written after it. */
  end(skippedHosts: readonly string[]): void {
    if (this.ended) return;
    this.ended = true;
    this.write(`${this.hosts === 0 ? '{\n  "hosts": []' : '\n  ]'},\n  "skippedHosts": ${nested(JSON.stringify(skippedHosts, null, 2), 2)}\n}\n`);
  }
}
