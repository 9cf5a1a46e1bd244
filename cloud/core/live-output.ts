// Output new to the log, on its way to the people watching: every chunk a relay streams (or a
// segment brings that never came live) goes through fanOut to every viewer of the console, so this
// is the cloud's hot path; and it feeds the password-prompt tracker, which decides whether what
// the writer types next is audited redacted.
import { encode } from '../../protocol/codec.ts';
import type { AccessRules } from './access-rules.ts';
import { expiredAt, type CoreContext } from './core-context.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { ConsoleRecord } from './ports.ts';
import type { Rechecks } from './rechecks.ts';
import { SecretPromptTracker } from '../../protocol/secret-prompt.ts';

export class LiveOutput {
  private readonly prompts: SecretPromptTracker;

  constructor(private readonly c: CoreContext, private readonly access: AccessRules, private readonly rechecks: Rechecks, private readonly life: Lifecycle) {
    this.prompts = new SecretPromptTracker(c.opts.secretPrompt);
  }

  /** Sends live output to every viewer of a console; `b64` is `data` already encoded, if at hand.
   *  Per chunk: one lookup (the console's sessions), one frame encoded; per viewer: a map lookup
   *  for its rights and the send. */
  async fanOut(console: string, offset: number, data: Buffer, b64?: string): Promise<void> {
    const sessions = await this.c.p.sessions.byConsole(console);
    if (!sessions.length) return;
    // The rules come from the cache, read again at most every tokenRecheckMs on this path: no I/O
    // and no wait for nearly every chunk.
    const age = this.rechecks.rulesAgeOnTheWay();
    const { doc } = this.access.cached(age) ?? await this.access.rules(age);
    const frame = encode({ t: 'out', o: offset, d: b64 ?? data.toString('base64') });
    const live = { live: { console, offset, bytes: data.length } };
    const now = this.c.now();
    for (const s of sessions) {
      // A viewer whose token expired or who may no longer see the console gets no more output,
      // whether or not it ever speaks again (on Lambda no timer would find it).
      const expired = s.who && expiredAt(s.who, now);
      if (expired) { await this.life.endConnection(s.conn, s.who!, expired); continue; }
      if (!this.access.sessions.sees(doc, s) && !(await this.rechecks.rightsHold(s, doc))) continue;
      if (!(await this.c.p.sender.send(s.conn, frame, live))) await this.life.clientClosed(s.conn);
    }
  }

  /** Feeds output new to the log to the password-prompt tracker, and records in the registry when
   *  the console starts or stops showing a prompt (secret-prompt.ts). */
  async watchPrompt(rec: ConsoleRecord, fresh: { offset: number; data: Buffer }[]): Promise<void> {
    if (!this.c.opts.redactSecrets || !fresh.length) return;
    let secret = !!rec.secretPrompt;
    for (const f of fresh) secret = this.prompts.feed(rec.name, f.data, f.offset, secret);
    if (secret === !!rec.secretPrompt) return;
    const now = await this.c.p.consoles.get(rec.name); // re-read: the fan-out awaited
    if (now) await this.c.p.consoles.putIf({ ...now, secretPrompt: secret || undefined }, now.relay);
  }
}
