// Console (and relay) names: one rule for the wire protocol, relay configs, the importer, every
// HTTP route and every store that turns a name into a file path or an object key. A name starts
// with a letter or digit and holds letters, digits and . _ : @ - only, so it can never be `.`,
// `..`, hold a `/`, or start like an option; and it is at most 128 characters. The cloud's own
// audit stream `_cloud` is the one name outside the rule (it can never be a console's).
import { BadParameter } from './errors.ts';
import { shownName } from './safe-text.ts';

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
export const NAME_MAX = 128;
export const NAME_RULE = `1 to ${NAME_MAX} letters, digits or . _ : @ -, starting with a letter or digit`;

/** The audit stream of events that belong to no console (sign-ins, tokens, access rules). */
export const CLOUD_STREAM = '_cloud';

export function isConsoleName(name: unknown): name is string {
  return typeof name === 'string' && name.length <= NAME_MAX && NAME_RE.test(name);
}

/** What is wrong with `name` as a console name (shown as safe-text.ts shownName shows it), or undefined. */
export function consoleNameProblem(name: unknown, what = 'console name'): string | undefined {
  if (isConsoleName(name)) return undefined;
  return `${what} ${shownName(name)}: must be ${NAME_RULE}`;
}

/** `name` when it is a console name (`cloudStream`: or the cloud's audit stream, where that is
 *  meant); else BadParameter naming the parameter, the value and the rule. Every route, CLI command
 *  and store method that turns a console name into a file path or an object key goes through this,
 *  so no name ever reaches a path unchecked. */
export function checkConsoleName(name: unknown, what = 'console', o: { cloudStream?: boolean } = {}): string {
  if (o.cloudStream && name === CLOUD_STREAM) return name;
  if (name === undefined || name === '') throw new BadParameter(`${what}: required (${NAME_RULE})`);
  const problem = consoleNameProblem(name, what);
  if (problem) throw new BadParameter(problem);
  return name as string;
}
