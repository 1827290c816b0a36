/**
 * A user with 1,000,000 archived messages, generated lazily, written and read back in one
 * process: the heap must not grow with the archive.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { NS, type DocumentEvent } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { writeDocument } from '../../src/xep0227/writer.js';

const MESSAGES = 1_000_000;
const SAMPLE_EVERY = 50_000;

/** `gc()` without `--expose-gc` on the command line: the flag can be set at run time. */
function exposeGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function* archive(): Generator<DocumentEvent> {
  yield { kind: 'host', jid: 'capulet.example' };
  yield { kind: 'user', name: 'juliet', scram: [], extraAttributes: {} };
  const start = Date.UTC(2020, 0, 1);
  for (let i = 0; i < MESSAGES; i++) {
    const outgoing = i % 2 === 0;
    yield {
      kind: 'archive',
      id: `m-${i}`,
      timestamp: new Date(start + i * 1000).toISOString(),
      with: 'romeo@montague.example',
      stanza: {
        name: 'message',
        xmlns: NS.client,
        attrs: outgoing
          ? { from: 'juliet@capulet.example/balcony', to: 'romeo@montague.example', type: 'chat', id: `id-${i}` }
          : { from: 'romeo@montague.example/orchard', to: 'juliet@capulet.example', type: 'chat', id: `id-${i}` },
        children: [{ name: 'body', xmlns: NS.client, attrs: {}, children: [`Message number ${i} — wherefore art thou?`] }],
      },
    };
  }
  yield { kind: 'user-end' };
  yield { kind: 'host-end' };
}

describe('memory', () => {
  it(`streams ${MESSAGES.toLocaleString('en')} archived messages writer → reader in bounded memory`, async () => {
    const gc = exposeGc();
    gc();
    const baseline = process.memoryUsage().heapUsed;
    let peak = baseline;
    let rawPeak = baseline;
    let records = 0;
    let bytes = 0;
    const started = performance.now();

    async function* counted(): AsyncGenerator<Buffer> {
      for await (const chunk of writeDocument(archive())) {
        bytes += chunk.length;
        yield chunk;
      }
    }

    for await (const event of readDocument(counted())) {
      if (event.kind !== 'archive') continue;
      records++;
      if (records % 10_000 === 0) {
        rawPeak = Math.max(rawPeak, process.memoryUsage().heapUsed);
        // Writer and reader meet in promises alone, which never reach the event loop: without a
        // macrotask now and then, the test runner's worker cannot answer its own RPC for the whole
        // run and reports a timeout afterwards.
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (records % SAMPLE_EVERY === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const growthMb = (peak - baseline) / 1024 / 1024;
    const rawMb = (rawPeak - baseline) / 1024 / 1024;
    console.log(
      `memory: ${records.toLocaleString('en')} archived messages, ${(bytes / 1024 / 1024).toFixed(0)} MiB of XML, ` +
        `heap growth ${growthMb.toFixed(1)} MB after GC (${rawMb.toFixed(1)} MB peak including garbage), ${seconds.toFixed(1)} s`,
    );
    expect(records).toBe(MESSAGES);
    expect(growthMb).toBeLessThan(64);
    expect(rawMb).toBeLessThan(64);
  }, 600_000);
});
