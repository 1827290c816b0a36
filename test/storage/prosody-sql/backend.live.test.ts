/** ProsodySqlBackend against a real Prosody 0.12 on each SQL driver (the suite is in support/prosody-sql-live-suite.ts). */
import { defineProsodySqlLiveSuite } from '../../support/storage/prosody-sql-live-suite.js';

defineProsodySqlLiveSuite('0.12');
