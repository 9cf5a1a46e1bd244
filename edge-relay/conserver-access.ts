// conserver's rw/ro lists as cloudcons access rules (cloud/core/acl.ts): what
// `cloudcons import conserver FILE --access access.yaml` writes, for `cloudcons access set`.
//
//   console rw/ro lists        -> rules allowing rw / ro on those consoles (a `!name` denies)
//   a console without lists    -> everyone rw there (conserver gives everyone rw without lists)
//   access-block `admin` users -> admins
//   `limited`, host lists      -> no equivalent: named in the notes (cloudcons signs users in by
//                                 token or SSO, not by client host)
// A conserver group is already expanded to its members; `@name` (a unix group) stays a group of
// that name, which the rules' `groups:` or the SSO groups claim must then fill. A user stays a
// token user (`alice`); people who sign in with single sign-on are `sso:alice` in the rules
// (protocol/principal.ts), which the file's head says.
import { stringify } from 'yaml';
import { parseAccess, type AccessInput } from '../cloud/core/acl.ts';
import { CcError } from '../protocol/errors.ts';
import { parsePrincipal } from '../protocol/principal.ts';
import type { AclSuggestion } from './conserver-import.ts';

export function accessRulesFromImport(acl: AclSuggestion[], consoles: string[], file: string): { doc: AccessInput; notes: string[]; yaml: string } {
  const notes: string[] = [];
  const rules: NonNullable<AccessInput['rules']> = [];
  const admins: string[] = [];
  const listed = new Set<string>();
  const who = (a: AclSuggestion) => a.who.filter((w) => {
    const p = parsePrincipal(w);
    if (p.ref && p.ref.kind !== 'relay') return true;
    notes.push(`${a.from.join(', ')}: not a user or group cloudcons accepts: ${p.why ?? `${w} names a relay`}; left out`);
    return false;
  });
  for (const a of acl) {
    if (a.right === 'rw' || a.right === 'ro') {
      for (const c of a.consoles) listed.add(c);
      const w = who(a);
      if (!w.length) continue;
      const on = a.on === '*' || (!a.on.includes(',') && /[*?[]/.test(a.on)) ? [a.on] : a.consoles;
      // conserver's `!name` takes that list's right away (it may still come from the other list).
      if (a.effect === 'allow') rules.push({ consoles: on, who: w, allow: a.right, note: `conserver ${a.right} (${a.from.join(', ')})` });
      else rules.push({ consoles: on, who: w, deny: a.right === 'rw' ? ['attach', 'force', 'break'] : ['spy', 'replay', 'export'], note: `conserver ${a.right} !name (${a.from.join(', ')})` });
    } else if (a.right === 'admin') {
      if (a.effect === 'allow') admins.push(...who(a));
      else notes.push(`${a.from.join(', ')}: admin !${a.who.join(',')}: an admin is listed or not in cloudcons; left out`);
    } else {
      notes.push(`${a.from.join(', ')}: ${a.effect === 'deny' ? 'rejected' : a.right} ${a.who.join(',')} (conserver access ${a.server ?? '*'}): no equivalent (cloudcons signs users in by token or SSO, not by client host${a.right === 'limited' ? '; `limited` users are ordinary users' : ''}); left out`);
    }
  }
  const open = consoles.filter((c) => !listed.has(c));
  if (open.length) rules.push({ consoles: open.length === consoles.length ? ['*'] : open, who: '*', allow: 'rw', note: 'no rw/ro list in conserver.cf: everyone rw' });
  const doc: AccessInput = { ...(admins.length ? { admins: [...new Set(admins)] } : {}), rules, default: 'none' };
  try {
    parseAccess(doc);
  } catch (e) {
    throw new CcError('CC_ERR_INTERNAL', `importing ${file} produced access rules that do not load (a bug in cloudcons import, please report it): ${(e as Error).message}`);
  }
  const head = [
    `# Access rules imported from ${file} by \`cloudcons import conserver\`; load with \`cloudcons access set FILE\`.`,
    '# @name groups were unix groups: fill them under groups: (or from the SSO groups claim).',
    '# Users are token users (alice); a user who signs in with single sign-on is sso:alice: add those.',
    ...(notes.length ? [`# ${notes.length} thing${notes.length === 1 ? '' : 's'} did not map:`, ...notes.map((n) => `#   ${n}`)] : []),
  ];
  return { doc, notes, yaml: `${head.join('\n')}\n${stringify(doc, { lineWidth: 0 })}` };
}
