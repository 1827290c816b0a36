/** Prosody's internal file storage (util/datamanager.lua, mod_storage_internal) as a storage backend. */
export { ProsodyFilesBackend, type ProsodyFilesOptions } from './backend.js';
export { DEFAULT_ARCHIVE_ITEM_LIMIT } from './import.js';
export type { FileLimits } from './files.js';
export { LuaParseError, parseDatFile, parseListItems, parseLuaValue, readListFile, type ListReadOptions, type LuaParseLimits } from './lua-parse.js';
export { LuaSerializeError, MAX_TABLE_DEPTH, formatG, serializeDatFile, serializeListItem, serializeLua, serializeLuaNumber, serializeLuaString } from './lua-serialize.js';
export { ListItemError, archiveItemFromList, archiveItemToList, stampOf } from './list-items.js';
export { PathError, decode, decodeCanonical, encode, getpath, hostDir, storeDir, storeEncode, type FileExtension } from './paths.js';
export { recoverJournals } from './journal.js';
export type { StagedFile } from './staged-file.js';
export { FileTransaction, type TransactionFaults } from './transaction.js';
