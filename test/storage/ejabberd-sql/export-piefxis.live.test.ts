/** ejabberd 23.01's own export_piefxis read by xporta: the committed fixture, and a live export (the suites are in support/ejabberd-piefxis-suite.ts). */
import { defineExportFixtureSuite, defineExportPiefxisSuite } from '../../support/storage/ejabberd-piefxis-suite.js';

defineExportFixtureSuite();
defineExportPiefxisSuite('23.01');
