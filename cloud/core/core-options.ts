// The cloud core's options: one documented default each (README "Limits and defaults"); the CLI
// (cli/main.ts) and the Lambda environment (cloud/lambda/entry-shared.ts) set them.
import { PATTERN_DEFAULTS } from './grep-pattern.ts';

export interface CoreOptions {
  /** Write-lock lease; clients renew it with every ping. Default 30 s. */
  leaseMs: number;
  /** Largest history sent on attach or replay, in bytes. Default 1 MiB. */
  maxHistoryBytes: number;
  /** Which output relays stream live: `always` every console's (default; the embedded cloud, where
   *  a message costs nothing and replay's hot tail stays current to the millisecond), or `watched`
   *  only the consoles someone is attached to (the AWS cloud: every message costs; unwatched
   *  output reaches replay by segment upload, up to the relay's segment time later). */
  live: 'always' | 'watched';
  /** In `watched` mode, how long a replay of an unwatched console waits for its relay to send what
   *  it has not sealed yet (it stops early once the stored end has been still for 150 ms). Default 1500 ms. */
  catchUpMs: number;
  /** Relays gather live output of a console nobody typed on in the last 2 s this long into one
   *  message (a writer's echo is never held). Default 0 (at once); 2000 on Lambda, where each
   *  message costs. */
  quietBatchMs: number;
  /** Input typed while a console shows a password prompt is audited without its bytes
   *  ("[redacted: N bytes typed at a password prompt]"). Default true. */
  redactSecrets: boolean;
  /** Password prompts to recognise besides the built-in ones (secret-prompt.ts), matched against
   *  the console's line as shown. Default none. */
  secretPrompt?: RegExp;
  /** How long a process keeps the access rules it read before reading them again: a change made
   *  through another process (another Lambda) takes effect within this. Default 2000 ms. */
  accessCacheMs: number;
  /** Failed sign-ins audited per minute and process; more are counted and summed up in the next
   *  minute's first record (a flood of bad tokens must not flood the audit). Default 60. */
  authFailureAuditsPerMin: number;
  /** Sessions (writer and spies) one console takes; the next attach is refused. Default 64. */
  maxSessionsPerConsole: number;
  /** How often the server looks at every open connection again on its own clock: its token
   *  (revoked or expired: the connection is closed), its sessions' rights (taken away: the session
   *  ends, or the writer becomes a spy) and a writer's lease (lapsed: a spy). Embedded: a timer of
   *  the node server; Lambda: at the first message of a connection after this long. Input is
   *  checked at once anyway, and a revocation closes the token's connections at once where the
   *  cloud can find them (ports.connections). Default 30000 ms, at most 30000. */
  tokenRecheckMs: number;
  /** Replay, export, grep and history requests one user may have running at once, over all their
   *  WebSocket sessions and HTTP requests (slots.ts); more get RateLimited. Default 4. */
  maxQueriesPerUser: number;
  /** The same for all users together, in this process. Default 16. */
  maxQueries: number;
  /** Longest grep pattern accepted (characters). Default 1000. */
  maxPatternLength: number;
  /** Most matcher states a grep pattern may compile to (grep-pattern.ts). Default 4000. */
  maxPatternStates: number;
  /** How long one grep request may scan before it stops with a truncation notice (ms). Default 20000. */
  maxGrepMs: number;
  /** Consoles registered to one relay (a name stays its relay's until an admin removes it); a
   *  hello that would register more is refused for the new ones. Default 1024 (bench/ingest.sh
   *  runs 1000 on one relay). */
  maxConsolesPerRelay: number;
  /** Audit records one relay's messages may cause per minute, sustained (events, state changes,
   *  refusals of what it sent); more are counted in one record (audit-ration.ts). Default 600. */
  relayAuditsPerMin: number;
  /** ... and at once. Default 3000: a relay with maxConsolesPerRelay consoles that restarts
   *  (each goes down and up) is audited in full. */
  relayAuditBurst: number;
  /** Audit records one user may cause per minute, sustained, without anything being done: refusals
   *  of what they asked (denied input, breaks, resizes, locks, actions; refused sessions and
   *  connections) and sign-ins; more are counted in one record (audit-ration.ts). Default 120. */
  userAuditsPerMin: number;
  /** ... and at once. Default 300. */
  userAuditBurst: number;
  /** How far above the highest fence this cloud handed out for a console a relay's hello may claim
   *  to have seen it (the embedded cloud keeps locks in memory, and the registry's copy is saved
   *  up to 200 ms late); a higher claim is refused and audited. Default 1000. */
  fenceClaimSlack: number;
  /** Longest free text (detail, user) an audit record keeps; longer text, which a request or a
   *  relay supplied, is cut with a marker (audit-text.ts). Default 1024 characters. */
  auditTextMax: number;
  /** The shortest time between two `status` reports of a relay that the cloud stores (each is a
   *  write: a DynamoDB item on AWS); one sooner is ignored. Default 5000 ms (relays report every
   *  30 s by default, statusMs). */
  relayStatusMinMs: number;
  /** SSH public keys one user may keep for local access at the relays (`cloudcons keys add`);
   *  more are refused. Default 16. */
  maxKeysPerUser: number;
  /** The largest key file `cloudcons keys add` takes (an authorized_keys of several keys), in
   *  bytes. Default 65536. */
  maxKeyFileBytes: number;
}
/** The longest tokenRecheckMs accepted (the CLI flag and the Lambda variable refuse more). */
export const TOKEN_RECHECK_MAX_MS = 30_000;

export const CORE_DEFAULTS: CoreOptions = {
  leaseMs: 30_000, maxHistoryBytes: 1024 * 1024, live: 'always', catchUpMs: 1500, quietBatchMs: 0,
  redactSecrets: true, accessCacheMs: 2000, authFailureAuditsPerMin: 60, maxSessionsPerConsole: 64, tokenRecheckMs: 30_000,
  maxQueriesPerUser: 4, maxQueries: 16, maxPatternLength: PATTERN_DEFAULTS.maxLength, maxPatternStates: PATTERN_DEFAULTS.maxStates, maxGrepMs: 20_000,
  maxConsolesPerRelay: 1024, relayAuditsPerMin: 600, relayAuditBurst: 3000, userAuditsPerMin: 120, userAuditBurst: 300, fenceClaimSlack: 1000,
  auditTextMax: 1024, relayStatusMinMs: 5000, maxKeysPerUser: 16, maxKeyFileBytes: 65_536,
};
