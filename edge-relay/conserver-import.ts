// `cloudcons import conserver FILE`: turns a conserver.cf into a relay config (YAML).
//
// The reader follows conserver.cf(5) and, where the man page is silent, conserver's own reader
// (conserver/cutil.c GetWord/ParseFile, conserver/readcfg.c), so a file means here what it means
// to conserver:
//   - Six special characters: { } ; # \ ". `#` starts a comment up to the end of the line (the
//     line break is part of the comment). `\c` outside quotes is a literal c. Inside "..."
//     everything is literal except \" (so "\r~^b" keeps its backslash for the break escapes).
//     Single quotes are ordinary characters in conserver.cf.
//   - Block types and keywords are single words (case-insensitive); a block name or a value runs
//     up to the next unquoted { } ; and may hold spaces (`default my defs {`); surrounding
//     whitespace is trimmed, trailing whitespace even when it was quoted (as conserver does).
//   - `#include FILE` in column 0 reads FILE in place (taken literally, relative to the including
//     file here); at most 10 files deep, as in conserver; a cycle is an error here.
//   - `keyword "";` resets a value to conserver's default; `keyword ;` (no value) is an error in
//     conserver, which ignores the line: reported, and ignored too.
//   - Every console starts from a copy of `default *` as it is at that point; `include NAME`
//     copies the values a previously defined default has set (a snapshot: later redefinitions do
//     not reach back). Defaults do not inherit `*` themselves. A later block of the same kind and
//     name (case-insensitive, like conserver) replaces the earlier one.
//   - rw/ro/admin/... lists: comma or space separated, `!name` denies, a name defined by a `group`
//     block expands to its members, `@name` is a unix group, `""` empties the list.
//
// What the relay has no equivalent for is never dropped silently: each such keyword is reported
// as FILE:LINE: keyword: why. `master` is reported only when it names another host. A keyword that has no effect for the console's type in conserver
// either (baud on a `type host` console, ...) is not reported. Access lists are not relay
// settings: they come back as ACL suggestions for the cloud (data + comments in the YAML).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isConsoleName, NAME_RULE } from '../protocol/names.ts';
import { stringify } from 'yaml';
import { CcError, NotFound } from '../protocol/errors.ts';
import { breakStringProblem } from './breaks.ts';
import { parseDuration, parseRelayConfig } from './config.ts';

export interface AclSuggestion {
  effect: 'allow' | 'deny';
  /** rw / ro: console access (console `rw`, `ro`). admin / limited: server-wide user roles, and
   *  host / trusted-host: client hosts (conserver `access` blocks: `allowed`, `trusted`,
   *  `rejected` = deny host). */
  right: 'rw' | 'ro' | 'admin' | 'limited' | 'host' | 'trusted-host';
  /** Users, `@group` (a unix group), `*` (everyone); for host rights: hosts, addresses, CIDRs. */
  who: string[];
  /** Relay console names this applies to (every imported console for access-block rights). */
  consoles: string[];
  /** `consoles` as written in the comment: `*`, `web*` or a comma list. */
  on: string;
  /** The conserver `access` block (its host name or address) a server-wide right came from. */
  server?: string;
  /** FILE:LINE of every line that contributed. */
  from: string[];
}

export interface ConserverImport {
  /** The relay config: warnings as comments on top, ACL suggestions as comments at the end. */
  yaml: string;
  /** `FILE:LINE: keyword: what was not mapped and why`, in file order. */
  warnings: string[];
  acl: AclSuggestion[];
  /** Relay names of the imported consoles. */
  consoles: string[];
}

/** The file cannot be read as conserver.cf: names FILE:LINE. */
export class ConserverSyntaxError extends CcError {
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, message: string) {
    super('CC_ERR_CONFIG', `${file}:${line}: ${message}`);
    this.file = file;
    this.line = line;
  }
}

/** Reads a conserver.cf (and what it #includes) and returns the equivalent relay config. Throws
 *  NotFound if the file cannot be read, ConserverSyntaxError for a file conserver could not read
 *  either. */
export function importConserverCf(file: string): ConserverImport {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new NotFound(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const im = new Importer();
  im.read(file, text);
  return im.finish(file);
}

// ---------------------------------------------------------------------------------------------
// Tokens

type Token =
  | { kind: 'word'; text: string; line: number }
  | { kind: '{' | '}' | ';'; line: number }
  | { kind: 'include'; file: string; line: number }
  | { kind: 'eof'; line: number };

const SPACE = /[ \t\n\r\f\v]/;
/** conserver's list separators (readcfg.c ALLWORDSEP). */
const LIST_SEP = /[, \t\n\r\f\v]+/;

/** One file's characters to tokens, as conserver's GetWord: `spaceok` (looking for a block name or
 *  a value) keeps inner whitespace in a word. */
class Lexer {
  private i = 0;
  line = 1;
  constructor(readonly display: string, readonly real: string, private readonly s: string,
    private readonly warn: (line: number, msg: string) => void) {}

  next(spaceok: boolean): Token {
    const s = this.s;
    let word = '';
    let start = 0; // line of the word's first character
    let sawQuote = false;
    let quoteLine = 0; // inside "..." since this line
    let quotedBackslash = false;
    let backslash = false;
    while (this.i < s.length) {
      const at = this.i;
      const c = s[this.i++];
      if (c === '\n') this.line++;
      if (backslash) { word += c; backslash = false; continue; }
      if (quoteLine) {
        // Only \" is special between double quotes; any other backslash stays.
        if (c === '"') {
          if (quotedBackslash) { word += '"'; quotedBackslash = false; } else quoteLine = 0;
        } else {
          if (quotedBackslash) { word += '\\'; quotedBackslash = false; }
          if (c === '\\') quotedBackslash = true; else word += c;
        }
        continue;
      }
      if (c === '\\') {
        start ||= this.line;
        backslash = true;
      } else if (c === '#') {
        const eol = s.indexOf('\n', this.i);
        const rest = s.slice(this.i, eol < 0 ? s.length : eol);
        const hashLine = this.line;
        // The comment runs through its line break: that break does not separate words.
        this.i = eol < 0 ? s.length : eol + 1;
        if (eol >= 0) this.line++;
        // (a CRLF file's \r is whitespace to conserver, as around any file name)
        const inc = /^include[ \t\r\f\v]([^\n]*)$/.exec(rest.replace(/\r$/, ''))?.[1].trim();
        if (!inc) continue;
        const col0 = at === 0 || s[at - 1] === '\n';
        if (!col0) {
          this.warn(hashLine, `#include: "${inc}" is not in column 0, so conserver.cf(5) makes the line a comment and it was not read (conserver's parser may read it anyway: move it to column 0 if it is meant)`);
          continue;
        }
        if (word !== '' || sawQuote) throw new ConserverSyntaxError(this.display, hashLine, `#include inside a value (is a ';' missing before it?)`);
        return { kind: 'include', file: inc, line: hashLine };
      } else if (c === '"') {
        start ||= this.line;
        quoteLine = this.line;
        sawQuote = true;
      } else if (SPACE.test(c)) {
        if (word === '') continue;
        if (spaceok) { word += c; continue; }
        return this.word(word, start);
      } else if (c === '{' || c === '}' || c === ';') {
        if (word === '' && !sawQuote) return { kind: c, line: this.line };
        this.i--; // the token ends the word; read it again next time
        return this.word(word, start);
      } else {
        start ||= this.line;
        word += c;
      }
    }
    if (quoteLine) throw new ConserverSyntaxError(this.display, quoteLine, 'unterminated quoted string (a closing " is missing)');
    if (quotedBackslash) word += '\\';
    if (word !== '' || sawQuote) return this.word(word, start);
    return { kind: 'eof', line: this.line };
  }

  private word(w: string, start: number): Token {
    return { kind: 'word', text: w.replace(/[ \t\n\r\f\v]+$/, ''), line: start || this.line };
  }
}

/** Tokens of a file with its #includes read in place. conserver keeps its parser state across
 *  an include, so an included file may hold part of a block; so does this. */
class Source {
  private readonly stack: Lexer[] = [];
  constructor(private readonly warn: (file: string, line: number, msg: string) => void) {}

  push(display: string, real: string, text: string): void {
    this.stack.push(new Lexer(display, real, text, (line, msg) => this.warn(display, line, msg)));
  }

  next(spaceok: boolean): Token & { file: string } {
    for (;;) {
      const lx = this.stack[this.stack.length - 1];
      if (!lx) return { kind: 'eof', line: 0, file: '' };
      const t = lx.next(spaceok);
      if (t.kind === 'eof') {
        if (this.stack.length === 1) return { ...t, file: lx.display };
        this.stack.pop();
        continue;
      }
      if (t.kind !== 'include') return { ...t, file: lx.display };
      this.include(lx, t.file, t.line);
    }
  }

  private include(from: Lexer, name: string, line: number): void {
    const display = path.isAbsolute(name) ? name : path.join(path.dirname(from.display), name);
    const resolved = path.isAbsolute(name) ? name : path.join(path.dirname(from.real), name);
    // conserver reads at most 10 files deep (ParseFile level >= 10); it has no other loop check.
    if (this.stack.length >= 10) throw new ConserverSyntaxError(from.display, line, `#include ${name}: more than 10 files deep (conserver's limit)`);
    let text: string;
    let real: string;
    try {
      real = fs.realpathSync(resolved);
      text = fs.readFileSync(real, 'utf8');
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
      throw new ConserverSyntaxError(from.display, line, `#include ${name}: cannot read ${display}: ${why}`);
    }
    const loop = this.stack.findIndex((l) => l.real === real);
    if (loop >= 0) {
      const chain = [...this.stack.slice(loop).map((l) => l.display), display].join(' -> ');
      throw new ConserverSyntaxError(from.display, line, `#include ${name}: include cycle (${chain})`);
    }
    this.stack.push(new Lexer(display, real, text, (l, msg) => this.warn(display, l, msg)));
  }
}

// ---------------------------------------------------------------------------------------------
// What the blocks hold

type Where = string; // "FILE:LINE"
interface Sv<T> { v: T; at: Where }
type UserList = Map<string, { deny: boolean; at: Where }>;

const FLAGS = ['hupcl', 'ixany', 'ixon', 'ixoff', 'cstopb', 'crtscts', 'ondemand', 'striphigh', 'reinitoncc', 'autoreinit', 'unloved', 'login'] as const;
type Flag = typeof FLAGS[number];

/** Keywords of `default` and `console` blocks that hold one value (conserver.cf(5)). */
const FIELDS = ['baud', 'break', 'breaklist', 'device', 'devicesubst', 'exec', 'execrunas', 'execsubst', 'host',
  'idlestring', 'idletimeout', 'initcmd', 'initrunas', 'initspinmax', 'initspintimer', 'initsubst', 'ipmiciphersuite',
  'ipmikg', 'ipmiprivlevel', 'ipmiworkaround', 'logfile', 'logfilemax', 'master', 'motd', 'parity', 'password', 'port',
  'portbase', 'portinc', 'protocol', 'replstring', 'tasklist', 'timestamp', 'type', 'uds', 'udssubst', 'username'] as const;
type Field = typeof FIELDS[number];
/** For these, `""` is a value of its own ("none"), not a reset to the default. */
const EMPTY_IS_VALUE = new Set<Field>(['breaklist', 'ipmiworkaround', 'tasklist']);

/** A `default` or `console` block. Unset values are absent, as conserver's "unknown". */
interface Entry {
  name: string;
  at: Where;
  f: Partial<Record<Field, Sv<string>>>;
  opt: Partial<Record<Flag, Sv<boolean>>>;
  rw: UserList;
  ro: UserList;
  aliases?: Sv<string[]>;
}

interface BreakBlock { slot: string; at: Where; string?: Sv<string>; delay?: Sv<number>; confirm?: Sv<boolean> }
interface AccessBlock {
  name: string;
  at: Where;
  admin: UserList;
  limited: UserList;
  hosts: { kind: 'trusted' | 'allowed' | 'rejected'; host: string; at: Where }[];
}

const BLOCK_KEYS: Record<string, readonly string[]> = {
  access: ['admin', 'allowed', 'include', 'limited', 'rejected', 'trusted'],
  break: ['confirm', 'delay', 'string'],
  config: ['autocomplete', 'daemonmode', 'defaultaccess', 'initdelay', 'logfile', 'passwdfile', 'primaryport', 'redirect',
    'reinitcheck', 'secondaryport', 'setproctitle', 'sslcacertificatefile', 'sslcredentials', 'sslreqclientcert', 'sslrequired', 'unifiedlog'],
  console: [...FIELDS, 'include', 'options', 'ro', 'rw', 'aliases'],
  default: [...FIELDS, 'include', 'options', 'ro', 'rw'],
  group: ['users'],
  task: ['cmd', 'confirm', 'description', 'runas', 'subst'],
};
type BlockType = keyof typeof BLOCK_KEYS;

const newEntry = (name: string, at: Where): Entry => ({ name, at, f: {}, opt: {}, rw: new Map(), ro: new Map() });

/** conserver's ApplyDefault: every value the default has set wins; access lists are merged. */
function applyDefault(d: Entry, c: Entry): void {
  Object.assign(c.f, d.f);
  Object.assign(c.opt, d.opt);
  for (const [u, e] of d.rw) setUser(c.rw, u, e.deny, e.at);
  for (const [u, e] of d.ro) setUser(c.ro, u, e.deny, e.at);
}

/** A name mentioned again moves to the end with its new allow/deny (conserver's ConsentAddUser
 *  moves it to the head of its list, which it searches first). */
function setUser(list: UserList, user: string, deny: boolean, at: Where): void {
  list.delete(user);
  list.set(user, { deny, at });
}

// ---------------------------------------------------------------------------------------------
// The importer

type State = 'START' | 'NAME' | 'LEFTB' | 'KEY' | 'VALUE' | 'SEMI';

class Importer {
  private readonly warnings: { text: string; order: number }[] = [];
  private readonly seen = new Set<string>();
  /** The order in which FILE:LINE locations were first read, to list warnings in file order. */
  private readonly order = new Map<Where, number>();

  private readonly defaults = new Map<string, Entry>(); // lower-cased name -> default
  private readonly consoles = new Map<string, Entry>(); // lower-cased name -> console, in conserver's order
  private readonly groups = new Map<string, UserList>(); // conserver group names are case-sensitive
  private readonly breaks = new Map<string, BreakBlock>();
  private readonly access: AccessBlock[] = [];

  // The block being read.
  private block?: { type: BlockType; name: string; at: Where; skip: boolean };
  private entry?: Entry;
  private brk?: BreakBlock;
  private acc?: AccessBlock;
  private grp?: UserList;

  warn(at: Where, msg: string): void {
    const text = `${at}: ${msg}`;
    if (this.seen.has(text)) return; // a default's line is reported once, not once per console
    this.seen.add(text);
    this.warnings.push({ text, order: this.order.get(at) ?? Number.MAX_SAFE_INTEGER });
  }

  read(file: string, text: string): void {
    const src = new Source((f, line, msg) => this.warn(this.where(f, line), msg));
    src.push(file, path.resolve(file), text);
    let state: State = 'START';
    let key = '';
    let keyAt = '';
    let keyTok = { file: '', line: 0 };
    let known = false;
    for (;;) {
      const t = src.next(state === 'NAME' || state === 'VALUE');
      const at = this.where(t.file, t.line);
      const fail = (msg: string): never => { throw new ConserverSyntaxError(t.file, t.line, msg); };
      const what = t.kind === 'word' ? `"${t.text}"` : t.kind === 'eof' ? 'end of file' : `'${t.kind}'`;
      if (t.kind === 'eof') {
        if (state === 'START') break;
        const b = this.block;
        fail(b ? `unexpected end of file: ${b.type} ${JSON.stringify(b.name)} (${b.at}) is not closed with '}'` : 'unexpected end of file after a block type');
      }
      switch (state) {
        case 'START':
          if (t.kind !== 'word') fail(`unexpected ${what}: expected a block type (${Object.keys(BLOCK_KEYS).join(', ')})`);
          else if (!(t.text.toLowerCase() in BLOCK_KEYS)) fail(`unknown block type "${t.text}" (conserver.cf has ${Object.keys(BLOCK_KEYS).join(', ')})`);
          else { key = t.text.toLowerCase(); keyAt = at; state = 'NAME'; }
          break;
        case 'NAME':
          if (t.kind !== 'word' || t.text === '') fail(`expected a name after "${key}", got ${what}`);
          else { this.begin(key as BlockType, t.text, keyAt); state = 'LEFTB'; }
          break;
        case 'LEFTB':
          if (t.kind !== '{') fail(`expected '{' after ${key} ${JSON.stringify(this.block!.name)}, got ${what}`);
          state = 'KEY';
          break;
        case 'KEY':
          if (t.kind === '}') { this.end(); state = 'START'; } else if (t.kind === ';') {
            this.warn(at, `';': a stray ';' (conserver reports it and goes on)`);
          } else if (t.kind === 'word') {
            key = t.text.toLowerCase();
            keyAt = at;
            keyTok = t;
            known = BLOCK_KEYS[this.block!.type].includes(key);
            if (!known) this.warn(at, `${t.text}: not a keyword of a ${this.block!.type} block in conserver.cf(5); ignored`);
            state = 'VALUE';
          } else fail(`unexpected ${what} inside ${this.block!.type} ${JSON.stringify(this.block!.name)} (is a '}' missing?)`);
          break;
        case 'VALUE':
          if (t.kind === 'word') {
            if (known && !this.block!.skip) this.item(key, t.text, keyAt);
            state = 'SEMI';
          } else if (t.kind === ';') {
            this.warn(keyAt, `${key}: has no value; conserver ignores the line (write ${key} ""; to reset it)`);
            state = 'KEY';
          } else throw new ConserverSyntaxError(keyTok.file, keyTok.line, `"${key}" has no value and no ';' before ${what} (conserver drops the whole ${this.block!.type} block)`);
          break;
        case 'SEMI':
          // Reported at the keyword: the ';' belongs at the end of its value.
          if (t.kind !== ';') throw new ConserverSyntaxError(keyTok.file, keyTok.line, `expected ';' after the value of "${key}", got ${what} (conserver drops the whole ${this.block!.type} block)`);
          state = 'KEY';
          break;
      }
    }
  }

  /** FILE:LINE, remembering the order it was first read in. */
  private where(file: string, line: number): Where {
    const w = `${file}:${line}`;
    if (!this.order.has(w)) this.order.set(w, this.order.size);
    return w;
  }

  private begin(type: BlockType, name: string, at: Where): void {
    this.block = { type, name, at, skip: false };
    switch (type) {
      case 'default':
        this.entry = newEntry(name, at);
        break;
      case 'console': {
        // "all consoles have an implicit include "*"; at the beginning of their definition"
        this.entry = newEntry(name, at);
        const star = this.defaults.get('*');
        if (star) applyDefault(star, this.entry);
        break;
      }
      case 'break':
        if (!/^[1-9a-z]$/.test(name)) {
          this.warn(at, `break ${name}: not a break slot (1-9 or a-z); block ignored`);
          this.block.skip = true;
        }
        this.brk = { slot: name, at };
        break;
      case 'access':
        this.acc = { name, at, admin: new Map(), limited: new Map(), hosts: [] };
        break;
      case 'group':
        this.grp = new Map();
        break;
      case 'task':
        this.warn(at, `task ${name}: tasks (^Ec!${name}) have no relay equivalent; run the command another way`);
        break;
      case 'config':
        break;
    }
  }

  private end(): void {
    const b = this.block!;
    const lname = b.name.toLowerCase();
    if (b.type === 'default') {
      this.defaults.set(lname, this.entry!);
    } else if (b.type === 'console') {
      const old = this.consoles.get(lname);
      if (old) this.warn(b.at, `console ${b.name}: defined again; this definition replaces the one at ${old.at} (as in conserver)`);
      // conserver drops the old one and appends the new one at the end of its list.
      this.consoles.delete(lname);
      this.consoles.set(lname, this.entry!);
    } else if (b.type === 'break' && !b.skip) {
      this.breaks.set(b.name, this.brk!);
    } else if (b.type === 'access') {
      this.access.push(this.acc!);
    } else if (b.type === 'group') {
      this.groups.set(b.name, this.grp!);
    }
    this.block = undefined;
  }

  private item(key: string, value: string, at: Where): void {
    const b = this.block!;
    switch (b.type) {
      case 'default':
      case 'console':
        return this.entryItem(this.entry!, key, value, at);
      case 'break': {
        const br = this.brk!;
        if (key === 'string') br.string = { v: value, at };
        else if (key === 'delay') {
          if (value === '') br.delay = undefined;
          else if (/^\d+$/.test(value) && Number(value) <= 60_000) br.delay = { v: Number(value), at };
          else this.warn(at, `delay: "${value}" is not a number of milliseconds (0-60000); ignored`);
        } else if (key === 'confirm') {
          const v = yesNo(value);
          if (v === undefined) this.warn(at, `confirm: "${value}" is not yes/no/true/false/on/off; ignored`);
          else br.confirm = { v, at };
        }
        return;
      }
      case 'group':
        return this.userList(this.grp!, value, at);
      case 'access': {
        const a = this.acc!;
        if (key === 'admin') return this.userList(a.admin, value, at);
        if (key === 'limited') return this.userList(a.limited, value, at);
        if (key === 'include') {
          const inc = this.access.filter((x) => x.name.toLowerCase() === value.toLowerCase());
          if (!inc.length) { this.warn(at, `include: no access block "${value}" is defined before this line; ignored (as in conserver)`); return; }
          for (const x of inc) {
            for (const [u, e] of x.admin) setUser(a.admin, u, e.deny, e.at);
            for (const [u, e] of x.limited) setUser(a.limited, u, e.deny, e.at);
            a.hosts.push(...x.hosts);
          }
          return;
        }
        for (const host of value.split(LIST_SEP).filter(Boolean)) a.hosts.push({ kind: key as 'trusted' | 'allowed' | 'rejected', host, at });
        return;
      }
      case 'config':
        if (value !== '') this.warn(at, `${key}: a conserver server setting (config ${b.name}); no relay equivalent`);
        return;
      case 'task':
        return; // the whole block was reported at its start
    }
  }

  private userList(list: UserList, value: string, at: Where): void {
    if (value === '') { list.clear(); return; }
    for (let tok of value.split(LIST_SEP).filter(Boolean)) {
      let deny = false;
      if (tok.startsWith('!')) { deny = true; tok = tok.slice(1); }
      if (!tok) continue;
      // A name a `group` block defined expands to its members ("with access reversed if
      // prefixed with a `!'"); anything else is a user, `@unixgroup` or `*`.
      const g = this.groups.get(tok);
      if (g) for (const [u, e] of g) setUser(list, u, deny ? !e.deny : e.deny, at);
      else setUser(list, tok, deny, at);
    }
  }

  private entryItem(e: Entry, key: string, value: string, at: Where): void {
    if (key === 'include') {
      if (value === '') return;
      const d = this.defaults.get(value.toLowerCase());
      if (!d) this.warn(at, `include: no default "${value}" is defined before this line; ignored (as in conserver)`);
      else applyDefault(d, e);
      return;
    }
    if (key === 'rw' || key === 'ro') return this.userList(e[key], value, at);
    if (key === 'aliases') {
      e.aliases = value === '' ? undefined : { v: value.split(LIST_SEP).filter(Boolean), at };
      return;
    }
    if (key === 'options') {
      if (value === '') { e.opt = {}; return; }
      for (let tok of value.split(LIST_SEP).filter(Boolean)) {
        const on = !tok.startsWith('!');
        if (!on) tok = tok.slice(1);
        const flag = tok.toLowerCase() as Flag;
        if (FLAGS.includes(flag)) e.opt[flag] = { v: on, at };
        else this.warn(at, `options: "${tok}" is not a conserver option; ignored`);
      }
      return;
    }
    const field = key as Field;
    if (value === '' && !EMPTY_IS_VALUE.has(field)) { delete e.f[field]; return; }
    const bad = checkValue(field, value);
    if (typeof bad === 'string') { this.warn(at, `${key}: ${bad}; ignored`); return; }
    // idletimeout 0 is conserver's "off", the same as unset.
    if (field === 'idletimeout' && /^0+[smh]?$/i.test(value)) { delete e.f[field]; return; }
    e.f[field] = { v: bad?.value ?? value, at };
  }

  // -------------------------------------------------------------------------------------------
  // Mapping to the relay config

  finish(file: string): ConserverImport {
    const breaks: Record<string, { string: string; delayMs?: number; confirm?: boolean }> = {};
    for (const [slot, b] of [...this.breaks].sort(([a], [c]) => slotOrder(a, c))) {
      const def: { string: string; delayMs?: number; confirm?: boolean } = { string: b.string ? relayBreakString(b.string.v) : '' };
      const bad = breakStringProblem(def.string);
      if (bad) { this.warn(b.string!.at, `string: break ${slot}: ${bad}; break not imported`); continue; }
      if (b.delay) def.delayMs = b.delay.v;
      if (b.confirm) def.confirm = b.confirm.v;
      breaks[slot] = def;
    }

    const names = this.relayNames();
    const consoles: Record<string, Record<string, unknown>> = {};
    const imported: { relayName: string; e: Entry }[] = [];
    for (const e of this.consoles.values()) {
      const relayName = names.get(e);
      if (!relayName) continue;
      const c = this.mapConsole(e, relayName, breaks);
      if (!c) continue;
      // Each console is validated alone, so a value the relay refuses costs that console only
      // (reported) instead of failing the whole import.
      try {
        parseRelayConfig(JSON.stringify({ breaks, consoles: { [relayName]: c } }), file);
      } catch (err) {
        const problems = (err as { problems?: string[] }).problems ?? [(err as Error).message];
        this.warn(e.at, `console ${e.name}: not imported, the relay refuses it: ${problems.join('; ')}`);
        continue;
      }
      consoles[relayName] = c;
      imported.push({ relayName, e });
    }

    const acl = this.aclSuggestions(imported);
    const warnings = this.warnings.sort((a, b) => a.order - b.order).map((w) => w.text);
    const doc = { ...(Object.keys(breaks).length ? { breaks } : {}), consoles };
    // A bare \r would end a YAML comment too.
    const comment = (s: string) => `# ${s.replace(/\r\n|\r|\n/g, (m) => (m === '\r' ? '\\r' : '\\n'))}`;
    const head = [
      comment(`Relay config imported from ${file} by \`cloudcons import conserver\`.`),
      ...(warnings.length
        ? [comment(`${warnings.length} thing${warnings.length === 1 ? '' : 's'} in it did not map to the relay; check before use:`), ...warnings.map((w) => comment(`  ${w}`))]
        : [comment('Everything in it was mapped.')]),
    ];
    const tail = acl.length
      ? ['', comment('conserver access lists, as suggestions for the cloud\'s ACLs (the relay does not enforce them; @name is a unix group):'),
        ...acl.map((a) => comment(`acl suggestion: ${a.effect} ${a.right} ${a.who.join(',')} on ${a.on}${a.server !== undefined ? ` (conserver access ${a.server})` : ''}`))]
      : [];
    const yaml = `${head.join('\n')}\n\n${stringify(doc, { lineWidth: 0 })}${tail.length ? `${tail.join('\n')}\n` : ''}`;
    try {
      parseRelayConfig(yaml, file);
    } catch (err) {
      throw new CcError('CC_ERR_INTERNAL', `importing ${file} produced a relay config that does not load (a bug in cloudcons import, please report it): ${(err as Error).message}`);
    }
    return { yaml, warnings, acl, consoles: imported.map((i) => i.relayName) };
  }

  /** Relay console names: valid names are kept; others are made valid, or the console skipped
   *  when nothing is left or the result is taken. */
  private relayNames(): Map<Entry, string> {
    const out = new Map<Entry, string>();
    const taken = new Set<string>();
    const invalid: Entry[] = [];
    for (const e of this.consoles.values()) {
      if (isConsoleName(e.name)) { out.set(e, e.name); taken.add(e.name); } else invalid.push(e);
    }
    for (const e of invalid) {
      const fixed = e.name.replace(/[^A-Za-z0-9._:@-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 128);
      if (!fixed) {
        this.warn(e.at, `console ${JSON.stringify(e.name)}: not a valid relay console name (${NAME_RULE}) and nothing usable is left of it; skipped`);
      } else if (taken.has(fixed)) {
        this.warn(e.at, `console ${JSON.stringify(e.name)}: not a valid relay console name (${NAME_RULE}); "${fixed}" is taken; skipped`);
      } else {
        this.warn(e.at, `console ${JSON.stringify(e.name)}: not a valid relay console name (${NAME_RULE}); imported as "${fixed}"`);
        out.set(e, fixed);
        taken.add(fixed);
      }
    }
    return out;
  }

  /** One console in relay form, or undefined (reported) when it cannot be imported. */
  private mapConsole(e: Entry, relayName: string, breaks: Record<string, unknown>): Record<string, unknown> | undefined {
    const f = e.f;
    const type = f.type?.v;
    const who = `console ${e.name}`;
    const skip = (msg: string): undefined => { this.warn(e.at, `${who}: ${msg}; skipped`); return undefined; };
    if (!type) return skip('has no type (conserver rejects it too)');
    if (type === 'noop') return skip('type noop is a placeholder with nothing to connect to');
    const flag = (name: Flag, dflt: boolean) => e.opt[name]?.v ?? dflt;
    const flagWarn = (name: Flag, when: boolean, msg: string) => {
      const o = e.opt[name];
      if (o && o.v === when) this.warn(o.at, `options ${when ? '' : '!'}${name}: ${msg}`);
    };

    // Substitutions (devicesubst, execsubst, initsubst, udssubst) are applied, as conserver does
    // when it starts a console.
    const port = f.port ? Number(f.port.v) : undefined;
    const portbase = f.portbase ? Number(f.portbase.v) : 0;
    const portinc = f.portinc ? Number(f.portinc.v) : 1;
    // conserver.cf(5): finalport = portbase + portinc * port.
    const netPort = port === undefined ? undefined : portbase + portinc * port;
    const subst = (target: Sv<string> | undefined, spec: Field): string | undefined => {
      if (!target) return undefined;
      const s = f[spec];
      if (!s) return target.v;
      const specs = parseSubst(s.v);
      if (typeof specs === 'string') return target.v; // reported when it was read
      const uses = new Set(specs.map((x) => x.t));
      if ((uses.has('p') || uses.has('P')) && port === undefined) this.warn(s.at, `${spec}: ${who} has no port for %p/%P; 0 used`);
      return applySubst(target.v, specs, { c: e.name, h: f.host?.v ?? '', r: f.replstring?.v ?? '', b: Number(f.baud?.v ?? 0), p: port ?? 0, P: netPort ?? 0 });
    };

    const c: Record<string, unknown> = {};
    switch (type) {
      case 'device': {
        const device = subst(f.device, 'devicesubst');
        if (!device) return skip('type device without a device');
        const parity = f.parity?.v ?? 'none';
        if ((parity === 'mark' || parity === 'space') && process.platform !== 'win32') {
          return skip(`parity ${parity} is not supported by the relay's serial driver on ${process.platform}`);
        }
        if (!f.baud) this.warn(e.at, `baud: ${who} has none (conserver requires one); the relay's default 9600 is used`);
        if (!f.parity) this.warn(e.at, `parity: ${who} has none (conserver requires one); none (8 data bits) is used`);
        Object.assign(c, { type: 'serial', device, baud: Number(f.baud?.v ?? 9600), parity,
          // conserver's parity table: even/odd/mark/space use 7 data bits, none 8 (consent.c).
          dataBits: parity === 'none' ? 8 : 7, stopBits: flag('cstopb', false) ? 2 : 1 });
        // conserver's defaults for a device: ixon and ixoff on, crtscts off.
        const ixon = flag('ixon', true);
        const ixoff = flag('ixoff', true);
        if (flag('crtscts', false)) {
          c.flowControl = 'rtscts';
          if (ixon || ixoff) this.warn(e.opt.crtscts!.at, `options crtscts: ${who} also has XON/XOFF (ixon/ixoff, on by default in conserver); the relay uses RTS/CTS only`);
        } else {
          c.flowControl = ixon || ixoff ? 'xonxoff' : 'none';
          if (ixon !== ixoff) this.warn((e.opt.ixon ?? e.opt.ixoff)!.at, `options: ${who} has XON/XOFF in one direction only (ixon ${ixon ? 'on' : 'off'}, ixoff ${ixoff ? 'on' : 'off'}); the relay's xonxoff covers both`);
        }
        flagWarn('hupcl', true, 'the relay has no setting to lower the modem lines on close');
        flagWarn('ixany', true, 'the relay has no setting for "any character restarts output"');
        break;
      }
      case 'host': {
        if (!f.host) return skip('type host without a host');
        if (netPort === undefined) return skip('type host without a port');
        if (netPort < 1 || netPort > 65535) return skip(`port ${f.port!.v} with portbase ${portbase} and portinc ${portinc} gives ${netPort}, not a TCP port`);
        // protocol telnet is conserver's default; raw is a plain TCP byte stream.
        Object.assign(c, { type: f.protocol?.v === 'raw' ? 'tcp' : 'telnet', host: f.host.v, port: netPort });
        break;
      }
      case 'exec': {
        // With no exec, conserver runs root's login shell, interactive.
        const command = subst(f.exec, 'execsubst');
        Object.assign(c, { type: 'exec', command: command ?? '/bin/sh -l' });
        if (!command) this.warn(e.at, `exec: ${who} has no command, so conserver runs root's login shell (-i); imported as "/bin/sh -l" under the relay's user`);
        flagWarn('ixany', true, 'the relay does not set pty flow-control flags');
        flagWarn('ixoff', true, 'the relay does not set pty flow-control flags');
        flagWarn('ixon', false, 'the relay does not set pty flow-control flags');
        break;
      }
      case 'uds': {
        const p = subst(f.uds, 'udssubst');
        if (!p) return skip('type uds without a uds path');
        Object.assign(c, { type: 'uds', path: p });
        break;
      }
      case 'ipmi': {
        if (!f.host) return skip('type ipmi without a host');
        Object.assign(c, { type: 'ipmi', host: f.host.v });
        if (f.username) c.user = f.username.v;
        if (f.password) {
          c.password = f.password.v;
          this.warn(f.password.at, `password: ${who}: now inline in the relay config; better put it in a file (mode 0600) and use passwordFile: /etc/cloudcons/${relayName}.pw`);
        }
        if (f.ipmiprivlevel) c.privilege = ({ user: 'USER', operator: 'OPERATOR', admin: 'ADMINISTRATOR', callback: 'CALLBACK' } as Record<string, string>)[f.ipmiprivlevel.v];
        if (f.ipmiciphersuite) {
          const n = Number(f.ipmiciphersuite.v);
          if (n > 17) this.warn(f.ipmiciphersuite.at, `ipmiciphersuite: ${n} is not a cipher suite the relay takes (0-17); the tool's default is used`);
          else if (n >= 0) c.cipherSuite = n; // -1 is conserver's "the default"
        }
        if (f.ipmiworkaround) {
          const w = this.workarounds(f.ipmiworkaround);
          // conserver drives FreeIPMI (libipmiconsole); its workaround names are ipmiconsole's.
          if (w.length) { c.tool = 'ipmiconsole'; c.workarounds = w; }
        }
        if (c.tool === 'ipmiconsole' && c.privilege === 'CALLBACK') this.warn(f.ipmiprivlevel!.at, `ipmiprivlevel: ${who}: ipmiconsole has no callback level (needed here for the workarounds); the relay will refuse to open it`);
        if (f.ipmikg) this.warn(f.ipmikg.at, `ipmikg: ${who}: the relay reads K_g from a file: put it in one (mode 0600) and set kgFile`);
        break;
      }
    }

    // What every type takes.
    const initcmd = subst(f.initcmd, 'initsubst');
    if (initcmd) c.initcmd = initcmd;
    if (f.idletimeout) {
      const m = /^(\d+)([smh]?)$/i.exec(f.idletimeout.v)!;
      const v = m[2] ? `${Number(m[1])}${m[2].toLowerCase()}` : Number(m[1]);
      if ((parseDuration(v) ?? Infinity) > 30 * 86_400_000) this.warn(f.idletimeout.at, `idletimeout: ${f.idletimeout.v} is longer than the relay's 30 days; not set`);
      else c.idleTimeout = v;
    }
    if (f.idlestring) c.idleString = relayBreakString(f.idlestring.v);
    if (flag('ondemand', false)) c.ondemand = true;
    const defined = (slot: string) => /^[1-4]$/.test(slot) || slot in breaks;
    if (f.break) {
      if (defined(f.break.v)) c.break = f.break.v;
      else this.warn(f.break.at, `break: ${who} uses break ${f.break.v}, which no break block defines; not set`);
    }
    if (f.breaklist && f.breaklist.v !== '*') {
      const list = f.breaklist.v.split(LIST_SEP).filter(Boolean);
      const missing = list.filter((s) => !defined(s));
      if (missing.length) this.warn(f.breaklist.at, `breaklist: break ${missing.join(', ')} not defined by any break block; left out`);
      c.breaklist = list.filter(defined);
    }

    // Reported here, per console, so only what applies to an imported console is reported.
    flagWarn('striphigh', true, 'the relay passes all 8 bits');
    flagWarn('reinitoncc', true, 'the relay reopens a down console by itself (with backoff; `cloudcons console up` retries at once)');
    flagWarn('autoreinit', false, 'the relay always reopens a console that went down (`cloudcons console down` keeps it closed)');
    flagWarn('unloved', true, 'no relay equivalent (the cloud stores output nobody watches)');
    flagWarn('login', false, 'no relay equivalent; keep users out with the cloud\'s ACLs');
    const unmapped: [Field, string][] = [
      ['logfile', 'no relay equivalent: the cloud stores every console\'s output (cloudcons replay, export)'],
      ['logfilemax', 'no relay equivalent: stored output is kept by the cloud\'s retention (cloudcons cloud --retention)'],
      ['timestamp', 'no relay equivalent: the cloud timestamps all output (cloudcons replay --timestamps, --marks)'],
      ['motd', 'no relay equivalent (message shown at attach)'],
      ['initspinmax', 'no relay setting: the relay holds a console that flaps 5 times in 60 s down for 5 minutes'],
      ['initspintimer', 'no relay setting: the relay holds a console that flaps 5 times in 60 s down for 5 minutes'],
      ['tasklist', 'tasks have no relay equivalent'],
      ['initrunas', 'no relay equivalent: initcmd runs as the relay\'s user'],
    ];
    if (type === 'exec') unmapped.push(['execrunas', 'no relay equivalent: the command runs as the relay\'s user']);
    for (const [k, msg] of unmapped) {
      const v = f[k];
      if (!v || (k === 'initrunas' && !initcmd) || (k === 'tasklist' && v.v === '')) continue;
      this.warn(v.at, `${k}: ${msg}`);
    }
    // The relay is the host holding the console: a master that is this host maps as it is.
    if (!f.master) this.warn(e.at, `master: ${who} has none, which conserver refuses; imported anyway`);
    else if (!isThisHost(f.master.v)) this.warn(f.master.at, `master: ${f.master.v} is another host: conserver there manages the console; imported into this relay anyway (give each relay only its own consoles)`);
    if (e.aliases) this.warn(e.aliases.at, `aliases: ${who}: the relay has no console aliases (${e.aliases.v.join(', ')}); only "${relayName}" is imported`);
    return c;
  }

  /** conserver's ipmiworkaround names to ipmiconsole's -W names. */
  private workarounds(w: Sv<string>): string[] {
    const out: string[] = [];
    for (const tok of w.v.split(LIST_SEP).filter(Boolean)) {
      const name = tok.replace(/^!/, '').toLowerCase();
      if (name === 'default') continue; // FreeIPMI's default: no workaround flags
      const mapped = IPMI_WORKAROUNDS[name];
      if (!mapped) this.warn(w.at, `ipmiworkaround: "${tok}" is not a conserver workaround; left out`);
      else if (tok.startsWith('!')) this.warn(w.at, `ipmiworkaround: "${tok}" turns a workaround off; ipmiconsole has none on by default, so it is left out`);
      else if (!out.includes(mapped)) out.push(mapped);
    }
    return out;
  }

  private aclSuggestions(imported: { relayName: string; e: Entry }[]): AclSuggestion[] {
    const all = imported.map((i) => i.relayName);
    const out: AclSuggestion[] = [];
    // Each user's consoles first; then users with the same consoles share one suggestion, so a
    // `rw *` from `default *` reads "allow rw * on *" beside "allow rw alice,@ops on db*".
    const perUser = new Map<string, { effect: 'allow' | 'deny'; right: 'rw' | 'ro'; who: string; consoles: string[]; from: Set<Where> }>();
    for (const { relayName, e } of imported) {
      for (const right of ['rw', 'ro'] as const) {
        for (const [who, v] of e[right]) {
          const effect = v.deny ? 'deny' : 'allow';
          const k = `${effect} ${right} ${who}`;
          let u = perUser.get(k);
          if (!u) perUser.set(k, u = { effect, right, who, consoles: [], from: new Set() });
          u.consoles.push(relayName);
          u.from.add(v.at);
        }
      }
    }
    const merged = new Map<string, AclSuggestion>();
    for (const u of perUser.values()) {
      const k = `${u.effect} ${u.right} ${u.consoles.join(',')}`;
      const m = merged.get(k);
      if (m) { m.who.push(u.who); m.from = [...new Set([...m.from, ...u.from])]; continue; }
      merged.set(k, { effect: u.effect, right: u.right, who: [u.who], consoles: u.consoles, on: consoleGlob(u.consoles, all), from: [...u.from] });
    }
    out.push(...merged.values());
    for (const a of this.access) {
      const add = (effect: 'allow' | 'deny', right: AclSuggestion['right'], entries: { who: string; at: Where }[]) => {
        if (entries.length) out.push({ effect, right, who: entries.map((x) => x.who), consoles: all, on: '*', from: [...new Set(entries.map((x) => x.at))], server: a.name });
      };
      for (const [list, right] of [[a.admin, 'admin'], [a.limited, 'limited']] as const) {
        add('allow', right, [...list].filter(([, v]) => !v.deny).map(([who, v]) => ({ who, at: v.at })));
        add('deny', right, [...list].filter(([, v]) => v.deny).map(([who, v]) => ({ who, at: v.at })));
      }
      const hosts = (kind: string) => a.hosts.filter((h) => h.kind === kind).map((h) => ({ who: h.host, at: h.at }));
      add('allow', 'trusted-host', hosts('trusted'));
      add('allow', 'host', hosts('allowed'));
      add('deny', 'host', hosts('rejected'));
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Values


/** conserver's ipmiworkaround names (conserver.cf(5)) -> FreeIPMI ipmiconsole -W names. */
const IPMI_WORKAROUNDS: Record<string, string> = {
  'activation-status': 'solstatus',
  'auth-capabilites': 'authcap', // sic, conserver's spelling
  'auth-capabilities': 'authcap',
  'channel-payload': 'solchannelsupport',
  checksum: 'nochecksumcheck',
  'ignore-payload-size': 'solpayloadsize',
  'ignore-port': 'solport',
  integrity: 'integritycheckvalue',
  'intel-session': 'intel20',
  'packet-sequence': 'solpacketseq',
  privilege: 'opensesspriv',
  'serial-alerts': 'serialalertsdeferred',
  'sun-session': 'sun20',
  'supermicro-session': 'supermicro20',
};

const SERVICES: Record<string, number> = { telnet: 23, ssh: 22 };

/** Whether a `master` names the host the import runs on (where the relay is expected to run). */
function isThisHost(master: string): boolean {
  const m = master.toLowerCase();
  const h = os.hostname().toLowerCase();
  return ['localhost', '127.0.0.1', '::1'].includes(m) || m === h || m === h.split('.')[0] || m.split('.')[0] === h;
}

/** Checks a value as conserver does when it reads it: an error message, or the value to store. */
function checkValue(field: Field, v: string): string | { value: string } | undefined {
  const oneOf = (list: string[]) => (list.includes(v.toLowerCase()) ? { value: v.toLowerCase() } : `"${v}" is not one of ${list.join(', ')}`);
  switch (field) {
    case 'baud':
      return /^\d+$/.test(v) && Number(v) >= 50 && Number(v) <= 4_000_000 ? undefined : `"${v}" is not a baud rate (50..4000000)`;
    case 'break':
      return /^[1-9a-z]$/.test(v) ? undefined : `"${v}" is not a break slot (1-9, a-z)`;
    case 'breaklist': {
      if (v === '*' || v === '') return undefined;
      const bad = v.split(LIST_SEP).filter((s) => s && !/^[1-9a-z]$/.test(s));
      return bad.length ? `${bad.map((b) => `"${b}"`).join(', ')} not a break slot (1-9, a-z)` : undefined;
    }
    case 'idletimeout':
      return /^\d+[smh]?$/i.test(v) ? undefined : `"${v}" is not a number with an optional s, m or h`;
    case 'ipmiciphersuite':
      return /^(-1|\d+)$/.test(v) ? undefined : `"${v}" is not a cipher suite number (-1 or more)`;
    case 'ipmiprivlevel':
      return oneOf(['user', 'operator', 'admin', 'callback']);
    case 'parity':
      return oneOf(['even', 'mark', 'none', 'odd', 'space']);
    case 'protocol':
      return oneOf(['telnet', 'raw']);
    case 'type':
      return oneOf(['device', 'ipmi', 'exec', 'host', 'noop', 'uds']);
    case 'port': {
      if (/^\d+$/.test(v)) return Number(v) <= 65535 ? undefined : `"${v}" is not a port number`;
      const n = SERVICES[v] ?? serviceFromEtc(v);
      return n === undefined ? `"${v}" is not a port number or a known service name` : { value: String(n) };
    }
    case 'portbase':
      return /^(-1|\d+)$/.test(v) ? undefined : `"${v}" is not a number (-1 or more)`;
    case 'portinc':
      return /^\d+$/.test(v) ? undefined : `"${v}" is not a number (0 or more)`;
    case 'devicesubst': case 'execsubst': case 'initsubst': case 'udssubst': {
      const r = parseSubst(v);
      return typeof r === 'string' ? r : undefined;
    }
    default:
      return undefined;
  }
}

/** A service name from /etc/services, as conserver's getservbyname(3). */
function serviceFromEtc(name: string): number | undefined {
  try {
    for (const line of fs.readFileSync('/etc/services', 'utf8').split('\n')) {
      const [svc, portProto, ...aliases] = line.replace(/#.*/, '').trim().split(/\s+/);
      if (portProto?.endsWith('/tcp') && (svc === name || aliases.includes(name))) return Number(portProto.split('/')[0]);
    }
  } catch { /* no /etc/services */ }
  return undefined;
}

const yesNo = (v: string): boolean | undefined => ({ yes: true, true: true, on: true, no: false, false: false, off: false } as Record<string, boolean>)[v.toLowerCase()];

interface Subst { ch: string; t: string; width: number; zero: boolean; fmt: string }

/** A devicesubst/execsubst/initsubst/udssubst spec `c=t[n]f[,...]` (conserver.cf(5)), or what is
 *  wrong with it. */
function parseSubst(spec: string): Subst[] | string {
  const out: Subst[] = [];
  for (const item of spec.split(',')) {
    const m = /^([!-~])=([chrbpP])(\d*)([sdxXaA])$/.exec(item);
    if (!m) return `"${item}" is not c=t[n]f (t one of c h r b p P, f s for c h r, d x X a A for b p P)`;
    const [, ch, t, n, fmt] = m;
    if ('chr'.includes(t) !== (fmt === 's')) return `"${item}": ${'chr'.includes(t) ? `${t} is a string, its format is s` : `${t} is a number, its format is one of d x X a A`}`;
    if (out.some((o) => o.ch === ch)) return `"${ch}" is substituted twice`;
    out.push({ ch, t, width: n ? Number(n) : 0, zero: n.startsWith('0'), fmt });
  }
  return out;
}

function applySubst(target: string, specs: Subst[], vals: Record<'c' | 'h' | 'r', string> & Record<'b' | 'p' | 'P', number>): string {
  const by = new Map(specs.map((s) => [s.ch, s]));
  let out = '';
  for (const ch of target) {
    const s = by.get(ch);
    if (!s) { out += ch; continue; }
    if (s.fmt === 's') { out += vals[s.t as 'c'].padStart(s.width, ' '); continue; }
    const base = { d: 10, x: 16, X: 16, a: 36, A: 36 }[s.fmt as 'd'];
    let num = (vals[s.t as 'b'] & 0xffff).toString(base); // conserver keeps it in an unsigned short
    if (s.fmt === 'X' || s.fmt === 'A') num = num.toUpperCase();
    out += num.padStart(s.width, s.zero ? '0' : ' ');
  }
  return out;
}

/** A conserver break (or idle) string in the relay's break syntax (breaks.ts), which is conserver's
 *  minus two liberties: `\c` for any other c is c itself, and `^c` for any c is c & 0x1f. */
export function relayBreakString(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\') {
      const e = s[++i];
      if (e === undefined) { out += '\\\\'; break; }
      if ('abdfnrtvz\\^'.includes(e)) { out += `\\${e}`; continue; }
      if (e >= '0' && e <= '7') {
        let oct = e;
        while (oct.length < 3 && s[i + 1] >= '0' && s[i + 1] <= '7') oct += s[++i];
        out += `\\${(parseInt(oct, 8) & 0xff).toString(8).padStart(3, '0')}`;
        continue;
      }
      out += e;
      continue;
    }
    if (ch === '^' && i + 1 < s.length) {
      const c = s[++i];
      const code = c.toUpperCase().charCodeAt(0);
      if (c === '?' || (code >= 0x40 && code <= 0x5f)) out += `^${c}`;
      else out += `\\${(c.charCodeAt(0) & 0x1f).toString(8).padStart(3, '0')}`;
      continue;
    }
    out += ch;
  }
  return out;
}

function slotOrder(a: string, b: string): number {
  const rank = (s: string) => (/^[0-9]$/.test(s) ? 0 : 1);
  return rank(a) - rank(b) || a.localeCompare(b);
}

/** How a set of consoles reads in a suggestion: `*` for all of them, `web*` when they are exactly
 *  the consoles starting with `web`, else their names. */
function consoleGlob(some: string[], all: string[]): string {
  if (some.length === all.length) return '*';
  if (some.length === 1) return some[0];
  let prefix = some[0];
  for (const s of some) while (!s.startsWith(prefix)) prefix = prefix.slice(0, -1);
  if (prefix && all.filter((n) => n.startsWith(prefix)).length === some.length) return `${prefix}*`;
  return some.join(',');
}
