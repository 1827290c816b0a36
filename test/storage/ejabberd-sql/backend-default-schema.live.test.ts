/**
 * EjabberdSqlBackend on PostgreSQL and MariaDB with ejabberd's default (old) schema, for both
 * generations (the suite is in support/ejabberd-live-suite.ts; SQLite runs both schemas there).
 */
import { defineEjabberdLiveSuite, type EjabberdVariant } from '../../support/storage/ejabberd-live-suite.js';

const DEFAULT_SCHEMA: readonly EjabberdVariant[] = [
  { storage: 'postgres', newSchema: false },
  { storage: 'mysql', newSchema: false },
];

defineEjabberdLiveSuite('23.01', DEFAULT_SCHEMA, false);
defineEjabberdLiveSuite('24.12', DEFAULT_SCHEMA, false);
