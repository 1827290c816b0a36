/** EjabberdSqlBackend against a real ejabberd 24.12 (the suite is in support/ejabberd-live-suite.ts). */
import { defineEjabberdLiveSuite } from '../../support/storage/ejabberd-live-suite.js';

defineEjabberdLiveSuite('24.12');
