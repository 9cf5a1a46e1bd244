// Input typed at a password prompt is not written to the audit trail in clear (the audit shows
// that something was typed, how much, by whom, but not what). The cloud decides from what the
// console shows: its last line, with terminal escapes removed, ends like a password prompt
// ("Password: ", "Enter passphrase for key '/root/.ssh/id': ", "PIN:"). Output after the prompt
// (the newline that follows Enter) ends it.
//
// The state lives in the console registry (ConsoleRecord.secretPrompt) and is written only when
// it changes, so every Lambda instance sees it; the last bytes each console showed are carried
// per process to catch a prompt split across output messages.

/** Default prompt pattern, matched against the last line (case-insensitive). */
export const SECRET_PROMPT_DEFAULT = /(?:password|passphrase|passcode|pass phrase|\bpin\b|secret|token code)[^\n:]{0,60}:\s*$/i;

/** Bytes of output kept per console to read the last line from. */
const CARRY = 256;
// CSI / OSC / two-byte escape sequences, and other C0 controls except \n.
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]|[\x00-\x09\x0b-\x1f\x7f]/g;

export class SecretPromptTracker {
  private readonly tails = new Map<string, string>();
  constructor(private readonly re: RegExp = SECRET_PROMPT_DEFAULT, private readonly maxConsoles = 10_000) {}

  /** Feeds output; returns whether the console now shows a secret prompt. */
  feed(console: string, data: Buffer): boolean {
    let tail = (this.tails.get(console) ?? '') + data.subarray(Math.max(0, data.length - CARRY)).toString('latin1');
    if (tail.length > CARRY) tail = tail.slice(-CARRY);
    this.tails.delete(console); // re-inserted last: the map stays in least-recently-fed order
    if (this.tails.size >= this.maxConsoles) this.tails.delete(this.tails.keys().next().value!);
    this.tails.set(console, tail);
    return showsSecretPrompt(tail, this.re);
  }
}

export function showsSecretPrompt(text: string, re: RegExp = SECRET_PROMPT_DEFAULT): boolean {
  const clean = text.replace(ESCAPES, '');
  const line = clean.slice(clean.lastIndexOf('\n') + 1);
  return re.test(line);
}
