/** ProsodyFilesBackend against a real Prosody 0.12 (the suite is in support/prosody-files-live-suite.ts). */
import { defineProsodyFilesLiveSuite } from '../../support/storage/prosody-files-live-suite.js';

defineProsodyFilesLiveSuite('0.12');
