/** Imports into an account a real Prosody 0.12 has already served, on PostgreSQL and MariaDB (support/prosody-13-served.ts). */
import { prosodyServedAccountSuite } from '../../support/storage/prosody-13-served.js';

prosodyServedAccountSuite('postgres', '0.12');
prosodyServedAccountSuite('mysql', '0.12');
