/**
 * Proves the rig runs both generations of both servers side by side: each starts on its own
 * ports, reports its own version, logs nothing at error level, and a real client logs in.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { describeWithEjabberd, startEjabberd, type EjabberdHandle } from '../support/ejabberd.js';
import { EJABBERD_VERSIONS, PROSODY_VERSIONS } from '../support/server-versions.js';
import { getRoster, loginAs, setRosterItem, type XmppClient } from '../support/xmpp-client.js';

for (const version of PROSODY_VERSIONS) {
  describeWithProsody(
    `Prosody ${version} rig`,
    () => {
      let prosody: ProsodyHandle;
      let client: XmppClient | undefined;
      beforeAll(async () => {
        prosody = await startProsody({ version, storage: 'sqlite' });
        await createUser(prosody, 'alice', 'localhost', 'alice-pw');
      });
      afterAll(async () => {
        await client?.close();
        await prosody?.stop();
      });

      it(`is Prosody ${version}`, async () => {
        const about = await prosody.prosodyctl(['about']);
        expect(about.stdout).toMatch(new RegExp(`Prosody ${version.replace('.', '\\.')}[.\\s]`));
      });

      it('logs a real client in and keeps its roster, with no error in the log', async () => {
        client = await loginAs(prosody, 'alice', 'alice-pw');
        await setRosterItem(client, 'bob@localhost', 'Bob', ['Friends']);
        expect(await getRoster(client)).toEqual([{ jid: 'bob@localhost', name: 'Bob', subscription: 'none', groups: ['Friends'] }]);
        const log = await readFile(prosody.logPath, 'utf8');
        expect(log.split('\n').filter((l) => /\terror\t/.test(l))).toEqual([]);
      });
    },
    version,
  );
}

for (const version of EJABBERD_VERSIONS) {
  describeWithEjabberd(
    `ejabberd ${version} rig`,
    () => {
      let ej: EjabberdHandle;
      let client: XmppClient | undefined;
      beforeAll(async () => {
        ej = await startEjabberd({ version, storage: 'sqlite' });
        await ej.register('alice', 'localhost', 'alice-pw');
      });
      afterAll(async () => {
        await client?.close();
        await ej?.stop();
      });

      it(`is ejabberd ${version}`, async () => {
        const status = await ej.ctl(['status']);
        expect(status.stdout).toContain(`ejabberd ${version}`);
      });

      it('logs a real client in and keeps its roster, with no error in the log', async () => {
        client = await loginAs(ej, 'alice', 'alice-pw');
        await setRosterItem(client, 'bob@localhost', 'Bob', ['Friends']);
        expect(await getRoster(client)).toEqual([{ jid: 'bob@localhost', name: 'Bob', subscription: 'none', groups: ['Friends'] }]);
        expect(ej.logErrors()).toEqual([]);
      });
    },
    version,
  );
}
