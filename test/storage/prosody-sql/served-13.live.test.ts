/** Imports into an account a real Prosody 13 has already served, on PostgreSQL and MariaDB (support/prosody-13-served.ts). */
import { prosody13ServedAccountSuite } from '../../support/storage/prosody-13-served.js';

prosody13ServedAccountSuite('postgres');
prosody13ServedAccountSuite('mysql');
