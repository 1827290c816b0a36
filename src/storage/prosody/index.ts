/** Prosody's storage formats, independent of the storage driver (SQL or internal files). */
export * from './lua.js';
export * from './json.js';
export * from './stanza.js';
export * from './values.js';
export * from './keyval.js';
export * from './accounts.js';
export * from '../../lib/saslprep.js';
export * from './roster.js';
export * from './vcard.js';
export * from './private.js';
export * from './pep.js';
export * from './archive.js';
export * from './blocklist.js';
export * from './privacy.js';
export * from './opaque.js';
export * from './stores.js';
export * from './util.js';
