/**
 * SASLprep (RFC 4013), which Prosody applies to a password before hashing it
 * (util/sasl/scram.lua `get_scram_hasher`) and before comparing a plain one. Prosody calls
 * libidn's stringprep without the strict flag, so unassigned code points are allowed; the RFC
 * 3454 §6 bidirectional rule refuses a password mixing right-to-left and left-to-right letters,
 * as Prosody does. The maintained @mongodb-js/saslprep implements all of it.
 */
import saslprepLibrary from '@mongodb-js/saslprep';

/** The prepared string, or undefined when SASLprep refuses it. */
export function saslprep(value: string): string | undefined {
  try {
    return saslprepLibrary(value, { allowUnassigned: true });
  } catch {
    return undefined;
  }
}
