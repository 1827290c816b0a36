/** ejabberd 23.01's own import_piefxis on xporta's documents (the suite is in support/ejabberd-import-piefxis-suite.ts). */
import { defineImportPiefxisSuite } from '../../support/storage/ejabberd-import-piefxis-suite.js';

defineImportPiefxisSuite('23.01');
