import { describe, expect, it } from 'vitest';
import { HostReportStream } from '../../src/cli/host-report-stream.js';
import type { HostAccountOutcome, HostProgress } from '../../src/transfer/host-transfer.js';

interface Host {
  readonly host: string;
  readonly users: readonly HostAccountOutcome[];
  readonly progress: HostProgress;
}

function streamed(hosts: readonly Host[], skippedHosts: readonly string[]): string {
  let text = '';
  const out = new HostReportStream((chunk) => (text += chunk));
  for (const { host, users, progress } of hosts) {
    out.beginHost(host);
    for (const user of users) out.user(user);
    out.endHost(progress);
  }
  out.end(skippedHosts);
  return text;
}

const ok: HostAccountOutcome = {
  user: 'juliet@capulet.example',
  mode: 'merge',
  dryRun: false,
  created: true,
  counts: { credentials: 1, roster: 2, archive: 3 },
  skipped: [{ kind: 'other', reason: 'a "quoted" reason' }],
  unsupported: ['privacy'],
  warnings: ['line one\nline two'],
};
const failed: HostAccountOutcome = { user: 'romeo@montague.example', error: 'busy' };

describe('HostReportStream', () => {
  const cases: [string, Host[], string[]][] = [
    ['no host', [], []],
    ['one host, no account', [{ host: 'a.example', users: [], progress: { done: 0, failed: 0 } }], []],
    ['one host', [{ host: 'a.example', users: [ok, failed], progress: { done: 2, failed: 1, total: 2 } }], ['skipped.example']],
    [
      'two hosts',
      [
        { host: 'a.example', users: [ok], progress: { done: 1, failed: 0 } },
        { host: 'b.example', users: [], progress: { done: 0, failed: 0, total: 0 } },
      ],
      ['c.example', 'd.example'],
    ],
  ];
  it.each(cases)('writes what JSON.stringify of the whole report writes: %s', (_name, hosts, skippedHosts) => {
    expect(streamed(hosts, skippedHosts)).toBe(`${JSON.stringify({ hosts, skippedHosts }, null, 2)}\n`);
  });
});
