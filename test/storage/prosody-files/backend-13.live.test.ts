/**
 * ProsodyFilesBackend against a real Prosody 13: the suite every generation passes
 * (support/prosody-files-live-suite.ts), then imports into an account 13 has already served
 * (support/prosody-13-served.ts).
 */
import { prosody13ServedAccountSuite } from '../../support/storage/prosody-13-served.js';
import { defineProsodyFilesLiveSuite } from '../../support/storage/prosody-files-live-suite.js';

defineProsodyFilesLiveSuite('13');
prosody13ServedAccountSuite('internal');
