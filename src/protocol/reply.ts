// What a command handler returns. One handler serves every protocol; each encoder turns these
// values into its own bytes (see line.ts).
import type { ReplyError } from '../errors.ts';

/**
 * - string: text (a status or a human-readable value)
 * - Buffer: bytes returned exactly as they are (ECHO)
 * - number: an integer
 * - null: no value
 * - ReplyError: an error reply
 * - Reply[]: a list
 */
export type Reply = string | Buffer | number | null | ReplyError | readonly Reply[];
