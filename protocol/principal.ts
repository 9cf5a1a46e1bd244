// Who is who: the names of principals, as access rules, sessions, write locks, tokens, `who` and
// the audit write them. One kind per form, so no name can pass for another kind:
//
//   alice          a token user: a cloudcons `ccu_` token made for `alice`
//   sso:alice      a user signed in with an OpenID Connect ID token whose user claim is `alice`
//   relay:edge1    a relay (its `ccr_` token's name); the audit writes relays so
//   @ops           a group: the access rules' `groups:`, or the SSO groups claim
//   *              every signed-in user (access rules only)
//
// A user or relay name is 1-128 ASCII letters, digits and . _ @ + -, starting with a letter or
// digit: it never holds `:` and never starts with `@` or `*`, so a bare name is always a token
// user. Names are compared lowercase (`Mallory` is `mallory`). Anything outside printable ASCII is
// refused, not folded: Unicode normalization (NFKC) would turn fullwidth letters (U+FF41 for a)
// or a Kelvin sign (U+212A) into the ASCII letters of someone else, and Cyrillic look-alikes,
// zero-width and right-to-left characters would show as another name in `who` and the audit. The
// rule is checked where a name enters (token create, sign-in, rules, access check) and every
// stored name is read through it again (tokens at verify, rules at parse). A group name may
// also hold `:` and `/` (Keycloak's `/sre` paths) and may start with `/`.
// Pure functions, no I/O: the cloud, the CLI and the importer all use these.
import { BadParameter } from './errors.ts';
import { shownName } from './safe-text.ts';

/** The longest user, relay or group name. */
export const PRINCIPAL_NAME_MAX = 128;
export const USER_NAME_RULE = `1 to ${PRINCIPAL_NAME_MAX} ASCII letters, digits or . _ @ + -, starting with a letter or digit`;
export const GROUP_NAME_RULE = `1 to ${PRINCIPAL_NAME_MAX} ASCII letters, digits or . _ @ + - : /, starting with a letter, digit or /`;

export const SSO_PREFIX = 'sso:';
export const RELAY_PREFIX = 'relay:';

export type PrincipalKind = 'user' | 'sso' | 'relay' | 'group' | 'everyone';
/** A principal named in rules or asked about: `name` in normal form (`*` for everyone). */
export interface PrincipalRef { kind: PrincipalKind; name: string }

/** A name in normal form, or what is wrong with it. */
export type Checked = { name: string; why?: undefined } | { name?: undefined; why: string };

const USER_RE = /^[a-z0-9][a-z0-9._@+-]*$/;
const GROUP_RE = /^[a-z0-9/][a-z0-9._@+:/-]*$/;

function check(raw: unknown, kind: 'user' | 'group'): Checked {
  if (typeof raw !== 'string') return { why: `not a string (${typeof raw})` };
  const q = shownName(raw);
  const rule = kind === 'user' ? USER_NAME_RULE : GROUP_NAME_RULE;
  if (raw === '') return { why: `empty: must be ${rule}` };
  if (raw.length > PRINCIPAL_NAME_MAX) return { why: `${q} is longer than ${PRINCIPAL_NAME_MAX} characters` };
  const odd = /[^\x21-\x7e]/.exec(raw);
  if (odd) {
    const cp = raw.codePointAt(odd.index)!;
    const at = `at position ${odd.index + 1}`;
    if (cp === 0x20) return { why: `${q} holds a space ${at}: must be ${rule}` };
    const u = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    if (cp < 0x80) return { why: `${q} holds the control character ${u} ${at}: must be ${rule}` };
    return { why: `${q} holds ${u} ${at}: only ASCII is accepted (look-alike letters, zero-width and right-to-left characters would let one name pass for another)` };
  }
  const name = raw.toLowerCase();
  if (kind === 'user') {
    if (name.startsWith('@')) return { why: `${q} starts with @, which names a group` };
    if (name.includes(':')) return { why: `${q} holds ":": ${SSO_PREFIX} and ${RELAY_PREFIX} name other kinds of principal, so a user or relay name never has one` };
  }
  if (!(kind === 'user' ? USER_RE : GROUP_RE).test(name)) return { why: `${q}: must be ${rule}` };
  return { name };
}

/** A user's or relay's name in normal form (lowercase), or why it cannot be one. */
export const checkUserName = (raw: unknown): Checked => check(raw, 'user');
/** A group's name in normal form (lowercase), or why it cannot be one. */
export const checkGroupName = (raw: unknown): Checked => check(raw, 'group');

/** The name a new token is made for (user or relay), in normal form; else BadParameter saying why.
 *  The API and the CLI's direct writes (`token create --data`, `--dynamodb-table`) both use it. */
export function tokenName(raw: unknown): string {
  const c = checkUserName(raw);
  if (c.why !== undefined) throw new BadParameter(`name: ${c.why}`);
  return c.name;
}

/** How a principal is written everywhere (rules, sessions, `who`, the audit). */
export function formatPrincipal(p: PrincipalRef): string {
  switch (p.kind) {
    case 'user': return p.name;
    case 'sso': return `${SSO_PREFIX}${p.name}`;
    case 'relay': return `${RELAY_PREFIX}${p.name}`;
    case 'group': return `@${p.name}`;
    case 'everyone': return '*';
  }
}

/** Reads a principal as rules and `access check` write it: `alice`, `sso:alice`, `relay:edge1`,
 *  `@ops` or `*`, in any case; the name comes back in normal form. */
export function parsePrincipal(raw: unknown): { ref: PrincipalRef; why?: undefined } | { ref?: undefined; why: string } {
  if (typeof raw !== 'string') return { why: `not a string (${typeof raw})` };
  if (raw === '*') return { ref: { kind: 'everyone', name: '*' } };
  const lower = raw.toLowerCase();
  let kind: PrincipalKind = 'user';
  let rest = raw;
  if (raw.startsWith('@')) { kind = 'group'; rest = raw.slice(1); }
  else if (lower.startsWith(SSO_PREFIX)) { kind = 'sso'; rest = raw.slice(SSO_PREFIX.length); }
  else if (lower.startsWith(RELAY_PREFIX)) { kind = 'relay'; rest = raw.slice(RELAY_PREFIX.length); }
  else if (/^[A-Za-z0-9._+-]*:/.test(raw)) {
    return { why: `${shownName(raw)}: unknown kind ${shownName(raw.slice(0, raw.indexOf(':') + 1))} (a token user is alice, a single sign-on user sso:alice, a group @ops, everyone *)` };
  }
  const c = kind === 'group' ? checkGroupName(rest) : checkUserName(rest);
  if (c.why !== undefined) return { why: kind === 'user' ? c.why : `${shownName(raw)}: after "${kind === 'group' ? '@' : kind === 'sso' ? SSO_PREFIX : RELAY_PREFIX}": ${c.why}` };
  return { ref: { kind, name: c.name } };
}

/** A connection's principal as the audit names it: `relay:edge1` for a relay, else its name
 *  (`alice`, `sso:alice`). */
export function principalLabel(who: { kind: 'user' | 'relay'; name: string }): string {
  return who.kind === 'relay' ? formatPrincipal({ kind: 'relay', name: who.name }) : who.name;
}
