// One LMTP connection (RFC 2033): LHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT,
// with PIPELINING (RFC 2920), ENHANCEDSTATUSCODES (RFC 2034 / RFC 3463),
// 8BITMIME (RFC 6152), SIZE (RFC 1870) and SMTPUTF8 (RFC 6531: UTF-8
// addresses in MAIL / RCPT of a transaction that declares it).
//
// Commands are handled strictly one after another in arrival order, so
// pipelined commands get their replies in order (RFC 2920 §3.1). After the
// final "." of DATA there is one reply per accepted RCPT, in RCPT order
// (RFC 2033 §4.2), each written only once the message is durable for that
// recipient (§4.2: the server "MUST NOT lose the message").

import { randomBytes } from 'node:crypto';
import { LmtpDecoder, parsePathArg, splitCommand, type DecoderEvent } from './codec.js';
import type { LmtpOptions } from './options.js';
import { deliverTo, failureReply, isOverQuota, overQuotaReply, resolveRecipient, type DeliveryTarget, type Verdict } from './recipients.js';
import type { MailStore } from '../store/types.js';
import { encodeBinaryParts } from '../mime/index.js';

/** Bytes of pipelined commands buffered before we stop reading from the socket until they are handled. */
const MAX_PENDING_INPUT = 256 * 1024;

/** The transport a session talks through (a net.Socket in production, anything in tests). */
export interface LmtpTransport {
  write(data: string): void;
  end(): void;
  pause(): void;
  resume(): void;
  readonly remoteAddress: string;
}

interface Recipient {
  address: string;
  target: DeliveryTarget;
}

export class LmtpSession {
  private readonly decoder: LmtpDecoder;
  private busy = false;
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  private paused = false;
  private lhlo: string | null = null;
  private from: string | null = null;
  /** RFC 6531 §3.4: this transaction's MAIL carried the SMTPUTF8 parameter. */
  private utf8 = false;
  private rcpts: Recipient[] = [];
  private bad = 0;
  private readonly id = randomBytes(6).toString('hex');

  constructor(
    private readonly io: LmtpTransport,
    private readonly store: MailStore,
    private readonly opts: LmtpOptions,
  ) {
    this.decoder = new LmtpDecoder(opts.limits.lineLength, opts.limits.maxMessageSize);
  }

  greet(): void {
    this.reply(`220 ${this.opts.hostname} LMTP Quire ready`);
  }

  /** Feed bytes received from the client. */
  receive(chunk: Buffer): void {
    if (this.closed) return;
    this.decoder.push(chunk);
    void this.pump();
  }

  /** Resolves when no command (in particular no delivery) is being handled. */
  whenIdle(): Promise<void> {
    return this.busy ? new Promise((r) => this.idleWaiters.push(r)) : Promise.resolve();
  }

  /** The connection is gone (or the server is stopping): stop processing. */
  close(reason?: string): void {
    if (this.closed) return;
    if (reason) this.reply(reason);
    this.closed = true;
    this.io.end();
  }

  private reply(line: string): void {
    if (!this.closed) this.io.write(`${line}\r\n`);
  }

  private async pump(): Promise<void> {
    if (this.busy) {
      if (!this.paused && this.decoder.pending > MAX_PENDING_INPUT) {
        this.paused = true;
        this.io.pause();
      }
      return;
    }
    this.busy = true;
    try {
      for (;;) {
        if (this.closed) return;
        const ev = this.decoder.next();
        if (!ev) break;
        await this.handle(ev);
      }
    } catch (err) {
      this.opts.log.error('LMTP session failed', { id: this.id, error: err instanceof Error ? err.message : String(err) });
      this.close('421 4.3.0 Internal error, closing connection');
    } finally {
      this.busy = false;
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
    if (this.paused) {
      this.paused = false;
      this.io.resume();
    }
  }

  private resetTransaction(): void {
    this.from = null;
    this.utf8 = false;
    this.rcpts = [];
  }

  private badCommand(line: string): void {
    this.bad++;
    if (this.bad >= this.opts.limits.maxBadCommands) {
      this.reply(line);
      this.close('421 4.7.0 Too many errors, closing connection');
      return;
    }
    this.reply(line);
  }

  private async handle(ev: DecoderEvent): Promise<void> {
    if (ev.type === 'line-too-long') return this.badCommand('500 5.5.2 Line too long');
    if (ev.type === 'data') return this.finishData(ev.chunks, ev.size, ev.tooBig);
    const { verb, arg } = splitCommand(ev.line);
    switch (verb) {
      case 'LHLO':
        return this.cmdLhlo(arg);
      case 'HELO':
      case 'EHLO':
        // RFC 2033 §4.1: MUST NOT return a positive reply; 500 recommended.
        return this.badCommand('500 5.5.1 This is LMTP: use LHLO');
      case 'MAIL':
        return this.cmdMail(arg);
      case 'RCPT':
        return this.cmdRcpt(arg);
      case 'DATA':
        return this.cmdData(arg);
      case 'RSET':
        if (arg.trim() !== '') return this.badCommand('501 5.5.4 RSET takes no arguments');
        this.resetTransaction();
        return this.reply('250 2.0.0 Ok');
      case 'NOOP':
        return this.reply('250 2.0.0 Ok');
      case 'VRFY':
        // RFC 5321 §3.5.3: 252 when we will not verify.
        return this.reply('252 2.5.0 Cannot verify, but will accept the message and attempt delivery');
      case 'QUIT':
        this.reply(`221 2.0.0 ${this.opts.hostname} closing connection`);
        this.closed = true;
        this.io.end();
        return;
      default:
        return this.badCommand('500 5.5.1 Unknown command');
    }
  }

  private cmdLhlo(arg: string): void {
    const name = arg.trim();
    if (name === '' || /\s/.test(name)) return this.badCommand('501 5.5.4 Syntax: LHLO hostname');
    this.lhlo = name;
    this.resetTransaction(); // RFC 5321 §4.1.4: EHLO (so LHLO) resets the transaction
    // RFC 6531 §3: SMTPUTF8 (which needs 8BITMIME, offered too).
    const lines = [this.opts.hostname, 'PIPELINING', 'ENHANCEDSTATUSCODES', '8BITMIME', 'SMTPUTF8', `SIZE ${this.opts.limits.maxMessageSize}`];
    lines.forEach((l, i) => this.reply(`250${i === lines.length - 1 ? ' ' : '-'}${l}`));
  }

  private cmdMail(arg: string): void {
    if (this.lhlo === null) return this.badCommand('503 5.5.1 Send LHLO first');
    if (this.from !== null) return this.badCommand('503 5.5.1 Nested MAIL command');
    const p = parsePathArg(arg, 'FROM');
    if (!p) return this.badCommand('501 5.5.4 Syntax: MAIL FROM:<address>');
    // RFC 6531 §3.4: the SMTPUTF8 parameter (no value) allows UTF-8 in this transaction's addresses.
    const utf8 = p.params.has('SMTPUTF8');
    if (utf8 && p.params.get('SMTPUTF8') !== null) return this.badCommand('501 5.5.4 SMTPUTF8 takes no value');
    const from = addressOf(p.address, 'sender', utf8);
    if (!from.ok) return this.badCommand(from.reply);
    for (const [key, value] of p.params) {
      if (key === 'SIZE') {
        // RFC 1870 §6.3: a declared size above our limit is refused with 552 at MAIL.
        if (value === null || !/^\d{1,20}$/.test(value)) return this.badCommand('501 5.5.4 Bad SIZE parameter');
        if (Number(value) > this.opts.limits.maxMessageSize) return this.reply('552 5.3.4 Message size exceeds fixed maximum message size');
      } else if (key === 'BODY') {
        // RFC 6152 §2: BODY=7BIT or BODY=8BITMIME.
        if (value === null || !/^(7BIT|8BITMIME)$/i.test(value)) return this.badCommand('501 5.5.4 Unsupported BODY type');
      } else if (key === 'SMTPUTF8') {
        // checked above
      } else {
        return this.badCommand(`555 5.5.4 Unsupported parameter ${key}`);
      }
    }
    this.from = from.address;
    this.utf8 = utf8;
    this.reply('250 2.1.0 Ok');
  }

  private async cmdRcpt(arg: string): Promise<void> {
    if (this.from === null) return this.badCommand('503 5.5.1 Need MAIL command first');
    const p = parsePathArg(arg, 'TO');
    if (!p || p.address === '') return this.badCommand('501 5.5.4 Syntax: RCPT TO:<address>');
    const to = addressOf(p.address, 'recipient', this.utf8);
    if (!to.ok) return this.badCommand(to.reply);
    const address = to.address;
    if (p.params.size > 0) return this.badCommand(`555 5.5.4 Unsupported parameter ${[...p.params.keys()][0]}`);
    // RFC 5321 §4.5.3.1.10: too many recipients is a temporary 452 so the client sends the rest later.
    if (this.rcpts.length >= this.opts.limits.maxRecipients) return this.reply('452 4.5.3 Too many recipients');
    let target: DeliveryTarget | null;
    try {
      target = await resolveRecipient(this.store, address, this.opts);
      if (target && (await isOverQuota(this.store, target.userId))) return this.reply(overQuotaReply(this.opts, address));
    } catch (err) {
      return this.reply(failureReply(err, address, this.opts));
    }
    if (!target) return this.reply(`550 5.1.1 <${address}> User unknown`);
    this.rcpts.push({ address, target });
    this.reply(`250 2.1.5 <${address}> Ok`);
  }

  private cmdData(arg: string): void {
    if (this.from === null) return this.badCommand('503 5.5.1 Need MAIL command first');
    // RFC 2033 §4.2: DATA without a successful RCPT MUST fail with 503.
    if (this.rcpts.length === 0) return this.badCommand('503 5.5.1 No valid recipients');
    if (arg.trim() !== '') return this.badCommand('501 5.5.4 DATA takes no arguments');
    this.reply('354 3.0.0 End data with <CR><LF>.<CR><LF>');
    this.decoder.startData();
  }

  /**
   * Trace fields of final delivery: Return-Path (RFC 5321 §4.4), Delivered-To
   * and Received. Delivered-To (RFC 9228) names the recipient, as Dovecot's
   * LMTP writes it: after Return-Path, the address without brackets, and only
   * when the transaction has one recipient (the stored copy is shared otherwise).
   */
  private traceHeaders(): Buffer {
    const date = new Date().toUTCString().replace(/GMT$/, '+0000');
    const from = this.lhlo ?? 'unknown';
    const received =
      `Received: from ${from} (${this.io.remoteAddress})\r\n` +
      // RFC 6531 §3.7.3 trace information; §4.3 registers "UTF8LMTP" for a transaction that used SMTPUTF8.
      `\tby ${this.opts.hostname} (Quire) with ${this.utf8 ? 'UTF8LMTP' : 'LMTP'} id ${this.id}\r\n` +
      (this.rcpts.length === 1 ? `\tfor <${this.rcpts[0]!.address}>; ${date}\r\n` : `\t; ${date}\r\n`);
    const deliveredTo = this.rcpts.length === 1 ? `Delivered-To: ${this.rcpts[0]!.address}\r\n` : '';
    // With SMTPUTF8 the addresses are UTF-8 (RFC 6532 §3.2 header fields); otherwise every char is one byte.
    return Buffer.from(`Return-Path: <${this.from ?? ''}>\r\n${deliveredTo}${received}`, this.utf8 ? 'utf8' : 'latin1');
  }

  private async finishData(chunks: Buffer[], size: number, tooBig: boolean): Promise<void> {
    const rcpts = this.rcpts;
    try {
      if (tooBig) {
        for (const r of rcpts) this.reply(`552 5.3.4 <${r.address}> Message too big (limit ${this.opts.limits.maxMessageSize} bytes)`);
        return;
      }
      const trace = this.traceHeaders();
      const joined = Buffer.concat([trace, ...chunks], trace.length + size);
      // NULs or binary parts (no BINARYMIME here, but a hostile client may send them) are stored base64, as for APPEND.
      const data = encodeBinaryParts(joined) ?? joined;
      chunks.length = 0;
      // One delivery per distinct target (the same mailbox named twice gets the message once), started together.
      const byTarget = new Map<string, Promise<Verdict>>();
      const verdicts = rcpts.map((r) => {
        const key = `${r.target.userId}\0${r.target.mailbox}`;
        let v = byTarget.get(key);
        if (!v) {
          v = deliverTo(this.store, r.target, data, this.opts);
          byTarget.set(key, v);
        }
        return { r, v };
      });
      // RFC 2033 §4.2 / §5: one reply per RCPT, in RCPT order, each as soon as it is known.
      for (const { r, v } of verdicts) {
        const verdict = await v;
        this.reply(verdict(r.address));
      }
    } finally {
      this.resetTransaction();
    }
  }
}

/**
 * The address of MAIL / RCPT as text, or the reply refusing it. The LMTP line
 * is decoded as latin1 (each char one byte). 7-bit addresses pass. With
 * SMTPUTF8 (RFC 6531 §3.3) a UTF-8 address is decoded and passes; without it
 * RFC 5321 §4.1.2's ASCII Mailbox syntax applies: UTF-8 addresses get 553
 * 5.6.7 (RFC 6531 §3.5 and its X.6.7 code, "non-ASCII addresses not
 * permitted"). Bytes that are not even UTF-8 are a syntax error either way,
 * 501 5.1.7 / 5.1.3 (RFC 3463 bad sender / destination syntax). A refused
 * address is never echoed (it would come back as mojibake).
 */
function addressOf(address: string, role: 'sender' | 'recipient', utf8: boolean): { ok: true; address: string } | { ok: false; reply: string } {
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7f]/.test(address)) return { ok: true, address };
  const bytes = Buffer.from(address, 'latin1');
  const text = bytes.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(bytes)) {
    if (utf8) return { ok: true, address: text };
    return { ok: false, reply: `553 5.6.7 Non-ASCII ${role} address not permitted without the SMTPUTF8 parameter` };
  }
  return { ok: false, reply: role === 'sender' ? '501 5.1.7 Bad sender address syntax (8-bit bytes)' : '501 5.1.3 Bad recipient address syntax (8-bit bytes)' };
}
