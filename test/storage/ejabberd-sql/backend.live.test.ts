/** EjabberdSqlBackend against a real ejabberd 23.01 (the suite is in support/ejabberd-live-suite.ts). */
import { defineEjabberdLiveSuite } from '../../support/storage/ejabberd-live-suite.js';

defineEjabberdLiveSuite('23.01');
