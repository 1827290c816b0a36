/**
 * The CLI's help texts: the overview and one page per command.
 */

export const USAGE = `usage: xporta <command> [options] [--config FILE]

commands:
  serve                               run the HTTP service (the default)
  export JID [--include K,…] [--exclude K,…] [--output FILE] [--gzip]
                                      write the account's XEP-0227 document to standard output
  export --host HOST                  every account of a host
  import JID FILE|- [--mode replace|merge] [--dry-run] [--create-account] [--include K,…]
                                      apply a document (gzip recognised by content; - reads standard input);
                                      prints the report as JSON. Into another JID than the
                                      document's, subscriptions are not claimed for the new JID
                                      (report: contactsToAsk) unless --keep-subscriptions
  import --host FILE|- [HOST] [--mode merge|replace] [--dry-run] [--create-account] [--include K,…]
                                      every account of a document with any number of users:
                                      xporta's export --host, ejabberd's export_piefxis main file
                                      (XIncluded host files are read from FILE's directory) or
                                      export_piefxis_host file (a <host> root); HOST imports only
                                      that host. The whole document is validated first, then each
                                      account is applied on its own; exit 65 if any account failed
  import JID --from-xmpp OLD-JID --password-file F [--mode replace|merge] [--dry-run] [--server …]
                                      log in to the old account on another server as its user and
                                      import it into JID, archive included, all or nothing
  token JID [--scopes export,import] [--ttl SECONDS]
                                      mint a short-lived user token (needs auth.userTokenSecret)
  token --operator [--name NAME] [--scopes export,import,admin] [--hosts H,…|*]
                                      make an operator token in the token store (works at once);
                                      with --print-entry, print a config-file entry instead
  token list                          operator tokens (config file and token store), no values
  token revoke ID | token rotate ID   revoke a token-store token, or give it a new value
  pull JID --password-file F [--ca-file F] [--server HOST:PORT[/tls]] [--allow-plaintext] [--include K,…]
                                      log in to a remote account as its user and write it as a
                                      XEP-0227 document to standard output (archive included)
  transfer OLD NEW --from-password-file F --to-password-file G [--move] [--ca-file F] [--include K,…]
                                      copy an account between two other XMPP servers over the
                                      client protocol, logged in as its user on both; --move also
                                      publishes the moved statement and notifies the contacts
                                      (XEP-0283); prints the report as JSON
  jobs list | jobs show ID | jobs cancel ID
                                      background jobs of the service (kept in dataDir); cancel
                                      asks a running job to stop between accounts
  config --check                      validate the configuration, print it with secrets redacted

Every command takes --help. On a terminal, export and import show a progress line on standard
error (--quiet hides it). Exit codes follow sysexits.h: 64 usage, 65 bad data, 66 no input file,
67 no such account, 69 storage unavailable, 70 internal error, 73 cannot create the output, 74
I/O error, 75 account busy (another import or export holds it; try again), 78 configuration.

Data kinds: credentials, roster, vcard, private, pep, archive, offline, blocklist, privacy, other.
The configuration file may also be given as XPORTA_CONFIG; XPORTA_* variables override fields
(XPORTA_LISTEN__PORT=8080 sets listen.port). See config.example.json.`;

const KINDS_HELP = `Data kinds (--include, --exclude): credentials, roster, vcard, private, pep, archive, offline,
blocklist, privacy, other. Common options: --config FILE (or XPORTA_CONFIG), --help.`;

/** `xporta COMMAND --help`. */
export const COMMAND_HELP: Readonly<Record<string, string>> = {
  serve: `usage: xporta serve [--config FILE]

Runs the HTTP service (and the XMPP component when enabled) until SIGTERM or SIGINT, then
finishes the requests in flight within limits.shutdownTimeoutMs. SIGHUP reloads the operator
tokens, user-token keys, quota and log level.`,
  export: `usage: xporta export JID [--include K,…] [--exclude K,…] [--output FILE] [--gzip] [--quiet]
       xporta export --host HOST [same options]

Writes the account's (or with --host, every account's of HOST) XEP-0227 document to standard
output, or with --output to FILE (created 0600, under its name only once complete). --gzip
compresses it. On a terminal a progress line (records, messages, bytes, rate) goes to standard
error; --quiet hides it. Closing the reading end of a pipe (| head) ends the export quietly.

${KINDS_HELP}`,
  import: `usage: xporta import JID FILE|- [--mode replace|merge] [--dry-run] [--create-account]
                           [--keep-subscriptions] [--include K,…] [--exclude K,…] [--quiet]
       xporta import --host FILE|- [HOST] [same options]
       xporta import JID --from-xmpp OLD-JID --password-file F [--mode replace|merge] [--dry-run]
                           [--create-account] [--ca-file F] [--server HOST:PORT[/tls]]
                           [--allow-plaintext] [--include K,…] [--exclude K,…]

Applies a XEP-0227 document holding one account to JID, all or nothing, and prints the report
as JSON. FILE - reads standard input; gzip is recognised by its content, whatever the name.
--mode replace (default) replaces the selected kinds; merge adds to them. --dry-run checks
and reports without writing. --create-account creates JID when it does not exist. On a terminal
a progress line goes to standard error; --quiet hides it. A missing FILE exits 66. Into another
JID than the document's, roster subscriptions are not claimed for the new JID (the report lists
contactsToAsk) unless --keep-subscriptions.

With --host, FILE holds any number of accounts: xporta's export --host, ejabberd's export_piefxis
main file (XIncluded host files are read from FILE's directory) or export_piefxis_host file (a
<host> root); HOST imports only that host. The whole document is validated first, then each
account is applied on its own; exit 65 if any account failed.

With --from-xmpp, the document is read from the old account OLD-JID on another server, over the
client protocol with its password (from --password-file, used for this session only), as
\`xporta pull\` reads it; the report adds what the old server refused. Credentials, offline
messages and server-specific stores are not read. An archive larger than
xmppClient.maxArchiveMessages fails the import (exit 65) before anything is written.

${KINDS_HELP}`,
  token: `usage: xporta token JID [--scopes export,import] [--ttl SECONDS]
       xporta token --operator [--name NAME] [--scopes export,import,admin] [--hosts H,…|*] [--print-entry]
       xporta token list
       xporta token revoke ID
       xporta token rotate ID

A user token for JID (needs auth.userTokenSecret), or an operator token in the token store (the
running service accepts it at once; --hosts limits it to some hosts; --print-entry prints a
config-file entry instead). The value is printed once, alone on standard output.`,
  transfer: `usage: xporta transfer OLD@DOMAIN NEW@DOMAIN --from-password-file F --to-password-file G
                        [--move] [--ca-file F] [--allow-plaintext] [--include K,…] [--exclude K,…]

Logs in to both accounts as their user (client protocol; the new account first, then the old:
a wrong password writes nothing) and writes into the new account what a client may set: roster
items with names and groups, vCard, private XML, PEP items with their access model, blocklist,
privacy lists. The archive, offline messages and subscription states cannot be carried; the
report (JSON on standard output) lists them. With --move, the old account then publishes the
XEP-0283 moved statement and the new account sends each old contact a subscription request
carrying <moved/>. Servers come from DNS SRV or xmppClient.services. Exit 77 when a login is
refused, 69 when a server cannot be reached.

${KINDS_HELP}`,
  jobs: `usage: xporta jobs list | xporta jobs show ID | xporta jobs cancel ID [--config FILE]

Background jobs the service runs (host imports with ?async=true), read from xporta-jobs.sqlite
under dataDir, as JSON. A job whose process ended before it finished shows as interrupted; each
of its accounts was applied whole or not at all. cancel asks a running job to stop: the service
sees it between accounts (the account being applied is rolled back). Exit 67 for an unknown job,
65 when it is no longer running.`,
  config: `usage: xporta config --check [--config FILE]

Validates the configuration (file and XPORTA_* variables) and prints it with secrets redacted;
exits 78 naming the first wrong field.`,
};
