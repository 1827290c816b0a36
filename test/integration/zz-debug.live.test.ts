import { it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { populateAccount } from '../support/populate.js';
import { startProsody } from '../support/prosody.js';
import { probeAccount } from '../support/account-probe.js';
it('dbg', async () => {
  const dir = join(await mkdtemp(join(tmpdir(), 'p18-')), 'src');
  const p = await startProsody({ dir });
  const s = await populateAccount(p, { messages: 2 });
  await p.stop();
  const q = await startProsody({ dir });
  try {
    const r = await probeAccount({ service: q.service, domain: 'localhost', username: 'alice', password: s.alice.password }, { pepNodes: s.pep.map((n) => n.node) });
    console.log(JSON.stringify({ ...r, pep: Object.keys(r.pep) }));
  } finally { await q.stop(); }
}, 60000);
