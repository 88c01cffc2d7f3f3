// A mailbox's STATUS counters (RFC 9051 §6.3.11; RFC 8438 SIZE; RFC 7162
// HIGHESTMODSEQ) from its row: both backends keep the same counter columns.
import type { MailboxStatus } from './types.js';

/** The counter columns of a mailbox row (sqlite/messages.ts and postgres/messages.ts MailboxRow). */
export interface MailboxCounters {
  msg_count: number;
  unseen_count: number;
  deleted_count: number;
  total_size: number;
  uid_next: number;
  uid_validity: number;
  highest_modseq: number;
}

/** STATUS of a mailbox row; `recent` is counted by the caller (messages above the row's recent mark). */
export function mailboxStatusOf(mb: MailboxCounters, recent: number): MailboxStatus {
  return {
    messages: mb.msg_count,
    unseen: mb.unseen_count,
    deleted: mb.deleted_count,
    size: mb.total_size,
    uidNext: mb.uid_next,
    uidValidity: mb.uid_validity,
    highestModseq: mb.highest_modseq,
    recent,
  };
}
