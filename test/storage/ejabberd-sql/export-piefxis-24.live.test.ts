/** ejabberd 24.12's own export_piefxis read by xporta, imported into 24.12 (the suite is in support/ejabberd-piefxis-suite.ts). */
import { defineExportPiefxisSuite } from '../../support/storage/ejabberd-piefxis-suite.js';

defineExportPiefxisSuite('24.12');
