/** ejabberd 23.01's SQL storage (new or default schema) as a storage backend. */
export {
  EjabberdSqlBackend,
  type EjabberdHostOptions,
  type EjabberdSqlConnection,
  type EjabberdSqlOptions,
  type EjabberdSqlSettings,
} from './backend.js';
