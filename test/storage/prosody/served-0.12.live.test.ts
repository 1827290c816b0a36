/** Imports into an account a real Prosody 0.12 has already served, on SQLite and in files (support/prosody-13-served.ts). */
import { prosodyServedAccountSuite } from '../../support/storage/prosody-13-served.js';

prosodyServedAccountSuite('sqlite', '0.12');
prosodyServedAccountSuite('internal', '0.12');
