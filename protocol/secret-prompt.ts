// Input typed at a password prompt is not written to the audit trail in clear (the audit shows
// that something was typed, how much, by whom, but not what). The cloud decides from what the
// console shows: the line at its cursor as a terminal would show it (terminal-line.ts: escapes
// print nothing, `\b \b` erases, UTF-8, any split across output messages).
//
// What counts as a password prompt (secret-prompt.corpus.ts holds the real ones this is tested on):
// - the line ends in a colon (`:`, the full-width `：` of Chinese and Japanese), optionally followed
//   by blanks (French puts one before the colon too), by what the console echoes per key while
//   the secret is typed (`*`, `•`, `●`, `·`), and by systemd's `(press TAB for no echo)` /
//   `(no echo)`;
// - and somewhere before that colon the line names a secret: password, passphrase, passcode, PIN,
//   PUK, secret, token, OTP and verification codes (they are short-lived, but a credential while
//   valid, and the audit needs their length only), "unlock" (cryptsetup's "Please unlock disk"),
//   or the word for password in the languages sudo, PAM and shadow are translated into. Anything
//   may stand between that word and the colon (a URL with its own colons, a key path of hundreds
//   of characters: up to MAX_LINE characters of line are kept);
// - or the line ends in systemd's "(press TAB for no echo)" hint (only password questions have
//   it, even when a kernel message cut its first words off on a serial console);
// - or it is a parenthesised continuation of a line that names a secret (sulogin's "Give root
//   password for maintenance" / "(or press Control-D to continue): "), or any line ending in a
//   colon right after a password prompt's line (zfs asks "Enter again: " after the passphrase).
// Not a prompt: getty's `host login: ` (the host `pin-gw01` names a PIN, but what is typed there
// is the user name: the audit keeps it). Deliberate over-redaction: a question that names a
// password and ends in a colon (`Change the password for root ? (... No) : `) and a command line
// echoed up to `password:` count too, so a key or two typed there is audited redacted.
//
// The prompt state ends with the line: a line feed (Enter's echo), a redraw of the line with
// other text, or anything echoed but the masks. While the console echoes `*` or bullets, or
// nothing, every key stays redacted.
//
// The state lives in the console registry (ConsoleRecord.secretPrompt) and is written only when
// it changes, so every Lambda instance sees it. Each process keeps the line of each console it was
// fed; output it did not see (another Lambda instance took it) makes it start over: from the
// registry's state if that says "prompt" (only echo masks keep it), from an empty line otherwise
// (so a prompt whose first part went to another instance is missed).
//
// Shared by the cloud (live-output.ts feeds SecretPromptTracker, client-sessions.ts audits with
// redactedNote) and the relay (InputRedactor: its local audit journal, issue 17), so input typed
// at the relay while the cloud is away is redacted exactly as the cloud would have.
import { TerminalLine } from './terminal-line.ts';

// Words for a secret, matched anywhere in the line, case-insensitively. The translations are
// those of "Password: " in Linux-PAM and shadow, and of "[sudo] password for %p: " in sudoers;
// some are stems, to take their declensions (hasło/hasła, heslo/hesla, пароль/пароля, jelszó/jelszava).
const WORDS = [
  'password', 'passphrase', 'pass phrase', 'passcode', 'secret', 'verification code', 'one-time code', 'security code', 'authentication code',
  'yubikey', 'unlock',
  'passwort', 'kennwort', // de
  'mot de passe', 'phrase de passe', 'phrase secrète', // fr
  'contraseña', 'contrasenya', 'contrasinal', 'pasahitz', // es, ast; ca; gl; eu
  'senha', 'palavra-passe', // pt
  'wachtwoord', 'adgangskode', 'passord', 'lösenord', 'salasana', // nl, da, nb/nn, sv, fi
  'hasł', 'hesl', 'geslo', 'lozink', 'лозинк', 'jelsz', 'slaptažod', // pl, cs/sk, sl, hr/bs, sr, hu, lt
  'parol', 'парол', 'şifre', // ro/tr/lv/et, ru/uk/be/bg, tr
  'συνθηματικ', 'κωδικός πρόσβασης', 'pasvort', 'mật khẩu', 'kata laluan', // el, eo, vi, ms
  'パスワード', 'パスフレーズ', '暗証番号', '密码', '密碼', '口令', '암호', '비밀번호', // ja, zh, ko
  'პაროლ', 'گذرواژه', 'رمز عبور', 'كلمة المرور', 'كلمة السر', 'סיסמ', 'पासवर्ड', 'รหัสผ่าน', // ka, fa, ar, he, hi, th
];
// Short words that are other words' parts (ping, spinner, tokens, SanDisk): whole words only.
const WHOLE_WORDS = ['pin', 'puk', 'otp', 'mfa', '2fa', 'token', 'sandi' /* id: (kata) sandi */];
// Alternations of plain words: no backtracking to speak of, linear in the (bounded) line.
const SECRET_WORD = new RegExp(`${WORDS.join('|')}|(?<![\\p{L}\\p{N}])(?:${WHOLE_WORDS.join('|')})(?![\\p{L}\\p{N}])`, 'iu');
/** getty's `host login: `: a secret word in the host name does not make it a password prompt. */
const GETTY_LOGIN = /^\S+ login$/i;

const COLONS = new Set([':', '：', '﹕']);
const BLANKS = new Set([' ', '\t', '\u00a0', '\u202f', '\u3000']);
/** What consoles echo per key typed at a password prompt. */
const MASKS = new Set(['*', '•', '●', '∙', '·', '⁎', '✱']);
const PRESS_TAB = '(press tab for no echo)';
const HINTS = [PRESS_TAB, '(no echo)'];

/** Where the line ends once the echo after a prompt is taken off (blanks, masks, systemd's hints). */
function echoStart(line: string): { end: number; pressTab: boolean } {
  let end = line.length;
  let pressTab = false;
  for (;;) {
    while (end > 0 && (BLANKS.has(line[end - 1]) || MASKS.has(line[end - 1]))) end--;
    const hint = HINTS.find((h) => end >= h.length && line.slice(end - h.length, end).toLowerCase() === h);
    if (!hint) return { end, pressTab };
    pressTab ||= hint === PRESS_TAB;
    end -= hint.length;
  }
}

/** Whether a console line (as shown: no escapes) is a password prompt; `previous` is the line before. */
export function isSecretPrompt(line: string, previous = ''): boolean {
  const { end, pressTab } = echoStart(line);
  if (!COLONS.has(line[end - 1])) return false;
  if (pressTab) return true;
  const head = line.slice(0, end - 1).trimEnd();
  if (GETTY_LOGIN.test(head.trimStart())) return false;
  if (SECRET_WORD.test(head)) return true;
  if (!previous) return false;
  // A second question right after a password prompt was answered (zfs: "Enter again: "), or a
  // parenthesised continuation of a line naming a secret (sulogin).
  return isSecretPrompt(previous) || (head.trimStart().startsWith('(') && SECRET_WORD.test(previous));
}

interface Tracked { term: TerminalLine; end: number; shows: boolean; seededLine?: number }

export class SecretPromptTracker {
  private readonly consoles = new Map<string, Tracked>();
  /** `extra`: prompts that count besides the built-in ones (--secret-prompt), tested against the
   *  line as shown, and against it without the echo after the prompt. */
  constructor(private readonly extra?: RegExp, private readonly maxConsoles = 10_000) {}

  /** Feeds output; returns whether the console now shows a secret prompt. `at` is the output
   *  offset of `data` (a gap since the last feed means another process saw output between), `was`
   *  the console's state before it as the registry has it. */
  feed(console: string, data: Uint8Array, at?: number, was = false): boolean {
    let t = this.consoles.get(console);
    // Output older than what was fed (a chunk that filled a hole late) changes nothing on screen.
    if (t && at !== undefined && at < t.end) return t.shows;
    this.consoles.delete(console); // re-inserted last: the map stays in least-recently-fed order
    if (!t || (at !== undefined && at !== t.end)) {
      const term = new TerminalLine();
      t = { term, end: at ?? 0, shows: was, seededLine: was ? term.lines : undefined };
    }
    if (this.consoles.size >= this.maxConsoles) this.consoles.delete(this.consoles.keys().next().value!);
    this.consoles.set(console, t);
    t.term.write(data);
    t.end += data.length;
    // A prompt another process saw, still on its line, where only echo came since.
    t.shows = (t.seededLine === t.term.lines && echoStart(t.term.text).end === 0) || showsPrompt(t.term, this.extra);
    return t.shows;
  }
}

function showsPrompt(term: TerminalLine, extra?: RegExp): boolean {
  const line = term.text;
  return isSecretPrompt(line, term.previous) || (!!extra && (extra.test(line) || extra.test(line.slice(0, echoStart(line).end))));
}

/** Whether output (from a console's start) leaves a password prompt on the screen. */
export function showsSecretPrompt(output: string | Uint8Array, extra?: RegExp): boolean {
  const term = new TerminalLine();
  term.write(typeof output === 'string' ? Buffer.from(output) : output);
  return showsPrompt(term, extra);
}

/** What the audit says instead of `bytes` bytes of input typed at a password prompt. */
export function redactedNote(bytes: number): string {
  return `[redacted: ${bytes} bytes typed at a password prompt]`;
}

/** One console's redaction decision, as the cloud makes it: fed the console's output (all of it,
 *  in order) and a session's input, it returns the input as the audit records it. The relay's
 *  local audit journal keeps one per console. `extra`: as SecretPromptTracker's. */
export class InputRedactor {
  private readonly tracker: SecretPromptTracker;
  private shows = false;
  constructor(extra?: RegExp) { this.tracker = new SecretPromptTracker(extra, 1); }

  /** Output of the console, in order (any split). */
  output(data: Uint8Array): void { if (data.length) this.shows = this.tracker.feed('', data); }

  /** Whether the console shows a password prompt now (the next input is redacted). */
  get atPrompt(): boolean { return this.shows; }

  /** Input `data` as the audit records it: its bytes, or (at a password prompt) only their count. */
  input(data: Uint8Array): { data?: Buffer; detail?: string } {
    return this.shows ? { detail: redactedNote(data.length) } : { data: Buffer.from(data) };
  }
}
