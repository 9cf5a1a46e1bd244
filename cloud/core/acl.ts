// Who may do what on which console: access rules modelled on conserver's `rw`/`ro` lists, with
// groups, deny rules and an admin role. Pure logic (no I/O): the rules document lives behind the
// AccessStore port, the core asks `decide()` before every console action.
//
// The document (YAML or JSON, `cloudcons access set FILE`):
//
//   admins: [root, "@sre"]            # users and @groups with every right (tokens, rules, all consoles)
//   groups:                           # group membership, besides the OIDC groups claim
//     ops: [alice, "sso:bob"]
//   rules:
//     - consoles: ["web*", "db*"]     # globs (* ? [ab] [a-z] [!a]), default "*"
//       who: ["@ops", dave]           # token users, sso:users, @groups, or "*" (every signed-in user)
//       allow: rw                     # roles (ro rw audit manage all) and/or actions
//     - consoles: "bmc-*"
//       who: mallory
//       deny: all
//   relays:                           # which consoles a relay may publish (a relay not named: any
//                                     # console no other relay is assigned)
//     edge1: ["web*", "db*"]
//   default: none                     # what is left where no rule allows: none (default) | ro | rw
//
// Decision for (user, console, action): an admin may do everything; else a matching rule that
// denies the action wins over every allow (order does not matter); else a matching allow allows
// (any allowed action brings `list` with it: one may know what one may use); else `default`. With no document stored at all, every user may do every console action
// (conserver's behaviour without rw/ro lists); tokens and rules stay with admins.
//
// Who is who (protocol/principal.ts): `alice` is the token user alice, `sso:alice` the user alice
// of single sign-on (never the same person: the identity provider does not get to speak for token
// users), `@ops` a group and nothing else (a user is never taken for one). Every name is read in
// normal form (lowercase) when the document is parsed, and subjects are compared in it too.
import { z } from 'zod';
import { GLOB_MAX, globMatcher, globProblem } from '../../protocol/glob.ts';
import { checkGroupName, checkUserName, formatPrincipal, parsePrincipal, PRINCIPAL_NAME_MAX, type Checked } from '../../protocol/principal.ts';
import { shownName } from '../../protocol/safe-text.ts';

export const ACTIONS = ['list', 'spy', 'attach', 'force', 'break', 'replay', 'export', 'audit', 'down', 'up'] as const;
export type Action = typeof ACTIONS[number];

export const ROLES: Record<string, readonly Action[]> = {
  ro: ['list', 'spy', 'replay', 'export'],
  rw: ['list', 'spy', 'replay', 'export', 'attach', 'force', 'break'],
  audit: ['list', 'audit'],
  manage: ['list', 'down', 'up'],
  all: ACTIONS,
};

const oneOrMany = <T extends z.ZodType>(t: T) => z.union([t, z.array(t)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.infer<T>[]);
/** One or more principals a rule names, put in normal form; `member`: ones a group may hold (no
 *  group: they do not nest). (The check and the normal form are two steps so that a problem in a
 *  single name, not a list, is reported as itself rather than as "Invalid input".) */
const principals = (member: boolean) => oneOrMany(z.string().max(PRINCIPAL_NAME_MAX + 8).superRefine((raw, ctx) => {
  const p = parsePrincipal(raw);
  const why = p.why ?? (p.ref.kind === 'relay' ? `${raw}: relays are not users (which consoles a relay publishes: relays:)`
    : member && p.ref.kind === 'group' ? `${raw}: groups do not nest (name users, sso:users or *)` : undefined);
  if (why !== undefined) ctx.addIssue({ code: 'custom', message: `a token user, sso:user, @group or *: ${why}` });
})).transform((list) => list.map((raw) => formatPrincipal(parsePrincipal(raw).ref!)));
const who = principals(false);
/** A record whose keys must be group (or relay) names; they are put in normal form with the document. */
const nameKeyed = <V extends z.ZodType>(check: (raw: unknown) => Checked, what: string, value: V) => z.record(z.string(), value).superRefine((rec, ctx) => {
  for (const k of Object.keys(rec)) {
    const c = check(k);
    if (c.why !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `${what}: ${c.why}` });
  }
});
const glob = z.string().min(1).max(GLOB_MAX).regex(/^[A-Za-z0-9._:@*?[\]!^-]+$/, 'a console name or glob (* ? [ab] [a-z] [!a])')
  .superRefine((g, ctx) => { const why = globProblem(g); if (why) ctx.addIssue({ code: z.ZodIssueCode.custom, message: why }); });
const right = z.string().refine((s) => s in ROLES || (ACTIONS as readonly string[]).includes(s), {
  message: `a role (${Object.keys(ROLES).join(', ')}) or an action (${ACTIONS.join(', ')})`,
});

const rule = z.object({
  consoles: oneOrMany(glob).default(['*']),
  who,
  allow: oneOrMany(right).optional(),
  deny: oneOrMany(right).optional(),
  /** Free text shown by `cloudcons access check`. */
  note: z.string().max(256).optional(),
}).strict().refine((r) => r.allow || r.deny, { message: 'a rule needs allow or deny' });

export const accessDoc = z.object({
  admins: who.default([]),
  groups: nameKeyed(checkGroupName, 'a group name', principals(true)).default({}),
  rules: z.array(rule).max(10_000).default([]),
  relays: nameKeyed(checkUserName, 'a relay name', oneOrMany(glob)).default({}),
  default: z.enum(['none', 'ro', 'rw']).default('none'),
}).strict().transform((d, ctx) => ({ ...d, groups: normalKeys(d.groups, 'groups', checkGroupName, ctx), relays: normalKeys(d.relays, 'relays', checkUserName, ctx) }));

/** A record's keys in normal form; two keys that are one name in it (`Ops` and `ops`) are refused,
 *  since one would silently replace the other. */
function normalKeys<V>(rec: Record<string, V>, where: string, check: (raw: unknown) => Checked, ctx: z.RefinementCtx): Record<string, V> {
  const out: Record<string, V> = {};
  const from: Record<string, string> = {};
  for (const [k, v] of Object.entries(rec)) {
    const n = check(k).name!;
    if (n in out) ctx.addIssue({ code: 'custom', path: [where, k], message: `the same name as ${JSON.stringify(from[n])} (names are compared lowercase)` });
    out[n] = v;
    from[n] = k;
  }
  return out;
}
export type AccessDoc = z.infer<typeof accessDoc>;
export type AccessInput = z.input<typeof accessDoc>;

/** Parses and checks a rules document; throws an Error listing every problem with its path. */
export function parseAccess(raw: unknown): AccessDoc {
  const r = accessDoc.safeParse(raw);
  if (r.success) return r.data;
  // Keys in the path are the document's own: shown escaped, as every name in the messages is.
  const at = (p: PropertyKey) => (typeof p === 'string' && /[^\x20-\x7e]/.test(p) ? shownName(p) : String(p));
  throw new Error(r.error.issues.map((i) => `${i.path.length ? i.path.map(at).join('.') : '(top)'}: ${i.message}`).join('; '));
}

/** What a user brings to a decision: name (`alice` a token user, `sso:alice` a user of single
 *  sign-on), groups from the sign-in (OIDC), admin flag of the token. */
export interface Subject { name: string; groups?: readonly string[]; admin?: boolean }

/** Names in normal form (the callers' already are: this keeps a slip from becoming a missed deny). */
const normal = (s: Subject): Subject => ({ ...s, name: s.name.toLowerCase(), groups: s.groups?.map((g) => g.toLowerCase()) });

export interface Decision {
  allow: boolean;
  /** Why, for `cloudcons access check` and error messages. */
  why: string;
}

type Match = (name: string) => boolean;
const compiled = new WeakMap<AccessDoc, { rules: { match: Match[] }[]; relays: Map<string, Match[]> }>();
function compile(doc: AccessDoc) {
  let c = compiled.get(doc);
  if (!c) {
    c = {
      rules: doc.rules.map((r) => ({ match: r.consoles.map((g) => globMatcher(g)) })),
      relays: new Map(Object.entries(doc.relays).map(([k, v]) => [k, v.map((g) => globMatcher(g))])),
    };
    compiled.set(doc, c);
  }
  return c;
}

/** The groups a user is in: from the sign-in plus the document's `groups`. */
export function groupsOf(doc: AccessDoc | undefined, subject: Subject): string[] {
  const s = normal(subject);
  const out = new Set(s.groups ?? []);
  for (const [g, members] of Object.entries(doc?.groups ?? {})) if (members.includes(s.name) || members.includes('*')) out.add(g);
  return [...out].sort();
}

/** `@x` matches members of group x only, `*` everyone, any other entry the one principal it names. */
function matchesWho(list: readonly string[], name: string, groups: readonly string[]): boolean {
  return list.some((w) => w === '*' || (w.startsWith('@') ? groups.includes(w.slice(1)) : w === name));
}

const expand = (rights: readonly string[] | undefined): Set<Action> => new Set((rights ?? []).flatMap((r) => ROLES[r] ?? [r as Action]));

export function isAdmin(doc: AccessDoc | undefined, s: Subject): boolean {
  return !!s.admin || (!!doc && matchesWho(doc.admins, normal(s).name, groupsOf(doc, s)));
}

const describe = (doc: AccessDoc, i: number) => {
  const r = doc.rules[i];
  return `rule ${i + 1} (consoles ${r.consoles.join(',')}, who ${r.who.join(',')}, ${r.deny ? `deny ${r.deny.join(',')}` : ''}${r.deny && r.allow ? '; ' : ''}${r.allow ? `allow ${r.allow.join(',')}` : ''}${r.note ? `: ${r.note}` : ''})`;
};

/** May `s` do `action` on `console`? `doc` undefined: no rules stored (everyone rw). */
export function decide(doc: AccessDoc | undefined, subject: Subject, console: string, action: Action): Decision {
  const s = normal(subject);
  if (s.admin) return { allow: true, why: 'admin (token or sign-in)' };
  if (!doc) return { allow: true, why: 'no access rules are set: every user may do everything on every console' };
  const groups = groupsOf(doc, s);
  if (matchesWho(doc.admins, s.name, groups)) return { allow: true, why: 'listed in admins' };
  const c = compile(doc);
  let allowedBy = -1;
  for (let i = 0; i < doc.rules.length; i++) {
    const r = doc.rules[i];
    if (!c.rules[i].match.some((m) => m(console)) || !matchesWho(r.who, s.name, groups)) continue;
    if (expand(r.deny).has(action)) return { allow: false, why: `denied by ${describe(doc, i)}` };
    // Any right on a console lets one know it exists: `list` comes with every allow.
    if (allowedBy < 0 && (expand(r.allow).has(action) || (action === 'list' && expand(r.allow).size > 0))) allowedBy = i;
  }
  if (allowedBy >= 0) return { allow: true, why: `allowed by ${describe(doc, allowedBy)}` };
  const dflt = ROLES[doc.default]?.includes(action) ?? false;
  return { allow: dflt, why: dflt ? `default: ${doc.default}` : `no rule allows it (default: ${doc.default})` };
}

/** Every action's decision, for `cloudcons access check`. */
export function explain(doc: AccessDoc | undefined, s: Subject, console: string): { user: string; groups: string[]; admin: boolean; console: string; actions: Record<Action, Decision> } {
  const actions = Object.fromEntries(ACTIONS.map((a) => [a, decide(doc, s, console, a)])) as Record<Action, Decision>;
  return { user: normal(s).name, groups: groupsOf(doc, s), admin: isAdmin(doc, s), console, actions };
}

/** May relay `relay` publish `console`? A relay named under `relays` only what its globs match; a
 *  relay not named any console that is not assigned to another relay. */
export function relayMayPublish(doc: AccessDoc | undefined, relay: string, console: string): boolean {
  if (!doc) return true;
  const relays = compile(doc).relays;
  const own = relays.get(relay);
  if (own) return own.some((m) => m(console));
  for (const globs of relays.values()) if (globs.some((m) => m(console))) return false;
  return true;
}
