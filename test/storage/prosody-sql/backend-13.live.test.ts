/**
 * ProsodySqlBackend against a real Prosody 13 on each SQL driver: the suite every generation
 * passes (support/prosody-sql-live-suite.ts), then imports into an account 13 has already served
 * on SQLite (support/prosody-13-served.ts; PostgreSQL and MariaDB in prosody-sql-served-13.test.ts).
 */
import { prosody13ServedAccountSuite } from '../../support/storage/prosody-13-served.js';
import { defineProsodySqlLiveSuite } from '../../support/storage/prosody-sql-live-suite.js';

defineProsodySqlLiveSuite('13');
prosody13ServedAccountSuite('sqlite');
