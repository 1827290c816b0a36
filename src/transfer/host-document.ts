/**
 * Documents with any number of hosts and users, as peers write them (a `<server-data>` with one
 * or more hosts, XIncluded host files, a `<host>` root). A first pass surveys and validates the
 * whole document; the apply pass then takes one host's events at a time.
 */
import { TransferError } from './account-transfer.js';
import type { DocumentEvent } from '../records/model.js';

export interface SurveyedHost {
  readonly host: string;
  /** Account names in document order. */
  readonly users: readonly string[];
  /** Records of each account, in the same order. */
  readonly sizes: readonly number[];
}

/**
 * Reads the whole document (so that a malformed tail is found before anything is applied) and
 * lists its hosts with their users. A host that appears twice (two host elements or files) is
 * one host; the reader refuses a user that appears twice in it.
 */
export async function surveyDocument(events: AsyncIterable<DocumentEvent>): Promise<SurveyedHost[]> {
  const hosts = new Map<string, { users: string[]; sizes: number[] }>();
  let current: { users: string[]; sizes: number[] } | undefined;
  for await (const event of events) {
    if (event.kind === 'host') {
      current = hosts.get(event.jid);
      if (!current) {
        current = { users: [], sizes: [] };
        hosts.set(event.jid, current);
      }
    } else if (event.kind === 'user') {
      if (!current) throw new TransferError('wrong-structure', 'a user outside a host');
      current.users.push(event.name);
      current.sizes.push(0);
    } else if (event.kind === 'host-end') {
      current = undefined;
    } else if (event.kind !== 'user-end' && current && current.sizes.length > 0) {
      current.sizes[current.sizes.length - 1] = (current.sizes[current.sizes.length - 1] ?? 0) + 1;
    }
  }
  if (hosts.size === 0) throw new TransferError('wrong-structure', 'the document contains no host');
  return [...hosts].map(([host, { users, sizes }]) => ({ host, users, sizes }));
}

/** The events of one host of a multi-host document, as a one-host document: `host`, its users, `host-end`. */
export async function* eventsOfHost(events: AsyncIterable<DocumentEvent>, host: string): AsyncGenerator<DocumentEvent> {
  let inside = false;
  let opened = false;
  for await (const event of events) {
    if (event.kind === 'host') {
      inside = event.jid === host;
      if (inside && !opened) {
        opened = true;
        yield event;
      }
    } else if (event.kind === 'host-end') {
      inside = false;
    } else if (inside) {
      yield event;
    }
  }
  if (opened) yield { kind: 'host-end' };
}
