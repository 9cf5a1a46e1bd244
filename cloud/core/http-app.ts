// The cloud's HTTP API, built from the core and its ports only (no sockets): the node server and
// the Lambda handler just wire it. Every route but /healthz and /v1/auth/config needs a bearer token.
import { Hono } from 'hono';
import type { Context } from 'hono';
import { bodyCap } from './body-cap.ts';
import { CcError, Forbidden, Unauthorized, BadParameter, NotFound, TooLarge, httpStatus } from '../../protocol/errors.ts';
import { CLOUD_STREAM, type CloudCore } from './core.ts';
import { checkConsoleName } from '../../protocol/names.ts';
import { globMatcher } from '../../protocol/glob.ts';
import { DEFAULT_MARK_MS, Formatter, grepLog, grepPattern, parseTime, REPLAY_FORMATS, type GrepBudget, type ReplayFormat } from './replay.ts';
import type { CloudPorts, Principal, TokenInfo } from './ports.ts';
import { checkGroupName, checkUserName, formatPrincipal, parsePrincipal, tokenName } from '../../protocol/principal.ts';
import { UploadSlots } from './slots.ts';
import { OutputConflict } from './log-store.ts';

type Env = { Variables: { who: Principal } };

export function bearer(header: string | undefined | null): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

/** Three base64url parts: a JWT (an OpenID Connect ID token), not a cloudcons token (ccu_/ccr_...). */
export const looksLikeJwt = (token: string): boolean => /^[\w-]+\.[\w-]+\.[\w-]*$/.test(token);

export async function authenticate(ports: Pick<CloudPorts, 'tokens' | 'identity'>, header: string | undefined | null): Promise<Principal> {
  const token = bearer(header);
  if (!token) throw new Unauthorized('missing bearer token: send "Authorization: Bearer <token>" (cloudcons login stores one)');
  // A JWT goes to the OIDC verifier, which throws saying what is wrong with it.
  const who = ports.identity && looksLikeJwt(token) ? await ports.identity.verify(token) : await ports.tokens.verify(token);
  if (!who) throw new Unauthorized(looksLikeJwt(token) ? 'an OpenID Connect ID token, but this cloud has no OIDC issuer configured (--oidc-issuer)' : 'invalid or revoked token');
  return who;
}

/** The WebSocket subprotocol of cloudcons sessions. A browser cannot set headers on a WebSocket, so
 *  the web viewer offers `cloudcons.v1` and `cloudcons.token.<token>`; the server answers with
 *  `cloudcons.v1` only (API Gateway: the $connect response's Sec-WebSocket-Protocol header). */
export const SUBPROTOCOL = 'cloudcons.v1';
const TOKEN_PROTOCOL = 'cloudcons.token.';

/** `Bearer <token>` from a `Sec-WebSocket-Protocol` offer that carries `cloudcons.token.<token>`. */
export function subprotocolBearer(header: string | undefined): string | undefined {
  const t = header?.split(',').map((s) => s.trim()).find((s) => s.startsWith(TOKEN_PROTOCOL));
  return t ? `Bearer ${t.slice(TOKEN_PROTOCOL.length)}` : undefined;
}

/** Whether a `Sec-WebSocket-Protocol` offer includes cloudcons.v1 (then the answer must name it). */
export function offersSubprotocol(header: string | undefined): boolean {
  return !!header?.split(',').some((s) => s.trim() === SUBPROTOCOL);
}

export interface HttpOptions {
  /** Largest segment upload accepted (bytes). Default 16 MiB. */
  maxSegmentBytes: number;
  /** Lifetime of a user token created without an explicit expiry. Default 90 days; 0: never expires. */
  userTokenTtlMs: number;
  /** Largest request body of every route but the segment upload (bytes). Default 1 MiB. */
  maxBodyBytes: number;
  /** Segment uploads through this cloud in progress at once per relay (a relay sends 4 by
   *  default); more are refused with 429 before their body is read. Default 8. */
  maxUploadsPerRelay: number;
  /** ... and over all relays: each may hold up to maxSegmentBytes in memory. Default 32. */
  maxUploads: number;
}
export const HTTP_DEFAULTS = { maxUploadsPerRelay: 8, maxUploads: 32 };
export const USER_TOKEN_TTL_DEFAULT = 90 * 86_400_000;

/** The latest token expiry accepted: 9999-12-31T23:59:59.999Z (later ones are not dates an ISO string can show). */
const LAST_EXPIRY = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export function createHttpApp(core: CloudCore, ports: CloudPorts, opts: Partial<HttpOptions> = {}): Hono<Env> {
  const maxSegmentBytes = opts.maxSegmentBytes ?? 16 * 1024 * 1024;
  const userTokenTtlMs = opts.userTokenTtlMs ?? USER_TOKEN_TTL_DEFAULT;
  const maxBodyBytes = opts.maxBodyBytes ?? 1024 * 1024;
  const uploads = new UploadSlots(opts.maxUploadsPerRelay ?? HTTP_DEFAULTS.maxUploadsPerRelay, opts.maxUploads ?? HTTP_DEFAULTS.maxUploads);
  const app = new Hono<Env>();

  app.onError((err, c) => {
    const code = err instanceof CcError ? err.code : 'CC_ERR_INTERNAL';
    const message = err instanceof CcError ? err.message : 'internal error';
    if (!(err instanceof CcError)) console.error('http: unexpected error', err);
    // A limit reached is logged as well as answered (the audit has the security refusals).
    else if (code === 'CC_ERR_TOO_LARGE' || code === 'CC_ERR_RATE_LIMITED') console.error(`http: ${c.req.method} ${c.req.path} ${c.get('who') ? `by ${c.get('who').name}` : '(before sign-in)'}: ${message}`);
    // A segment overlapping stored output: what is stored, so the relay sends only the rest.
    return c.json({ error: { code, message }, ...(err instanceof OutputConflict && err.overlap ? { overlap: err.overlap } : {}) }, httpStatus(code) as 400);
  });
  app.notFound((c) => c.json({ error: { code: 'CC_ERR_NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` } }, 404));

  // An audit store may leave the head's last move of an append running (DynamoDB): done before
  // the answer, so a Lambda invocation does not end with it; so is the count of audit records a
  // ration held back (no timer runs between Lambda invocations).
  app.use('*', async (c, next) => { await next(); await core.flushAuditRations(); await ports.audit.settle?.(); });
  // Every /v1 answer, errors included, embedded and on Lambda: a new token's secret, audit records
  // holding typed input and console output must not stay in a browser's or a proxy's cache.
  app.use('/v1/*', async (c, next) => { await next(); c.res.headers.set('cache-control', 'no-store'); });

  // Degraded (the data disk full): 503 with the reasons, while the process serves what it can.
  app.get('/healthz', (c) => {
    const degraded = ports.health?.problems() ?? [];
    return degraded.length ? c.json({ ok: false, degraded }, 503) : c.json({ ok: true });
  });

  // Before the token check: whether and where the web viewer can sign in with SSO (no secrets).
  app.get('/v1/auth/config', async (c) => c.json({ oidc: (await ports.identity?.webSignIn?.()) ?? null }));

  app.use('/v1/*', async (c, next) => {
    let who: Principal;
    try {
      who = await authenticate(ports, c.req.header('authorization'));
    } catch (e) {
      if (e instanceof CcError) await core.authFailed(`HTTP ${c.req.method} ${c.req.path}`, e.message);
      throw e;
    }
    c.set('who', who);
    await next();
  });

  // Request bodies: at most maxBodyBytes, but segment uploads (their own, larger limit below).
  // Nothing is read here: each route reads its body after deciding that the caller may send it.
  app.use('/v1/*', async (c, next) => (c.req.method === 'PUT' && /\/segments$/.test(c.req.path) ? next()
    : bodyCap(maxBodyBytes, () => new TooLarge(`request body larger than ${maxBodyBytes} bytes (maxBodyBytes) on ${c.req.method} ${c.req.path}`))(c, next)));

  // Every console name in a path, checked in one place before any route or store sees it
  // (protocol/names.ts): a bad one is 400 with the rule. The cloud's own audit stream is a name
  // only where it is meant (its audit).
  const consoleName = async (c: Context<Env>, next: () => Promise<void>) => {
    checkConsoleName(c.req.param('name'), 'console', { cloudStream: c.req.method === 'GET' && c.req.path.endsWith('/audit') });
    await next();
  };
  app.use('/v1/consoles/:name', consoleName);
  app.use('/v1/consoles/:name/*', consoleName);
  const user = (c: Context<Env>): Principal => {
    const who = c.get('who');
    if (who.kind !== 'user') throw new Forbidden('relay tokens cannot use the user API');
    return who;
  };
  const admin = async (c: Context<Env>, what: string): Promise<Principal> => {
    const who = user(c);
    await core.requireAdmin(who, what);
    return who;
  };

  app.get('/v1/whoami', async (c) => {
    const who = c.get('who');
    // The web viewer's sign-in form and `cloudcons login` say so: a sign-in for the audit.
    const signin = c.req.query('signin');
    if (signin === 'web' || signin === 'cli') {
      await core.auditSignIn(who, 'auth.signin',
        `${signin === 'web' ? 'web viewer' : 'cloudcons login'} (${who.via === 'oidc' ? 'OpenID Connect' : `token ${who.tokenId}`})`);
    }
    return c.json({ ...who, admin: who.admin || await core.isAdmin(who) });
  });

  // With what the cloud cannot do now (a full data disk): `cloudcons ls` says it above the list.
  app.get('/v1/consoles', async (c) => {
    const consoles = await core.listConsoles(user(c));
    const problems = ports.health?.problems() ?? [];
    return c.json({ consoles, ...(problems.length ? { cloud: { problems } } : {}) });
  });

  app.get('/v1/consoles/:name', async (c) => c.json(await core.getConsole(user(c), c.req.param('name'))));

  // `cloudcons relays`: what each relay runs, its connection, backlog and last upload (relay-list.ts
  // says who sees which).
  app.get('/v1/relays', async (c) => c.json({ relays: await core.listRelays(user(c)) }));

  // `cloudcons console down|up NAME`: close a console until it is brought up again (or retry now).
  app.post('/v1/consoles/:name/down', async (c) => c.json(await core.consoleCtl(user(c), c.req.param('name'), 'down')));
  app.post('/v1/consoles/:name/up', async (c) => c.json(await core.consoleCtl(user(c), c.req.param('name'), 'up')));

  // `cloudcons console rm NAME` / `console move NAME --relay R` (admins): free a name (its output
  // and audit stay), or give it to another relay.
  app.delete('/v1/consoles/:name', async (c) => c.json(await core.removeConsole(user(c), c.req.param('name'))));
  app.post('/v1/consoles/:name/move', async (c) => {
    const who = await admin(c, `move console ${c.req.param('name')}`);
    const body = await jsonBody(c);
    if (typeof body.relay !== 'string') throw new BadParameter(`relay: the name of the relay to move the console to is required (got ${JSON.stringify(body.relay)})`);
    return c.json(await core.moveConsole(who, c.req.param('name'), body.relay));
  });

  // Replay / export. Range: `from` (offset) or `since` (ms or 2h / ISO), up to `until`, then the
  // last `tail` lines of it (default 20 when no start is given). Streams; headers say the range.
  app.get('/v1/consoles/:name/replay', async (c) => {
    const who = user(c);
    const name = c.req.param('name');
    // `export=1`: the CLI's export (a file leaves the cloud): its own right, and audited.
    const exporting = flag(c.req.query('export'));
    await core.requireKnown(who, name, exporting ? 'export' : 'replay');
    const release = core.queries.take(who.name);
    try {
      return await replayResponse(name, who, exporting, release, c);
    } catch (e) { release(); throw e; }
  });

  async function replayResponse(name: string, who: Principal, exporting: boolean, release: () => void, c: Context<Env>): Promise<Response> {
    const q = (k: string) => c.req.query(k);
    const format = (q('format') ?? 'raw') as ReplayFormat;
    if (!REPLAY_FORMATS.includes(format)) throw new BadParameter(`format: must be one of ${REPLAY_FORMATS.join(', ')} (got ${JSON.stringify(format)})`);
    const since = timeParam(q('since'), 'since'), until = timeParam(q('until'), 'until');
    if (until === undefined) await core.catchUp(name);
    const end = await core.log.end(name);
    const to = until !== undefined ? await core.log.offsetBefore(name, until) : end;
    let from = q('from') !== undefined ? intParam(q('from'), 'from', 0, 0, Number.MAX_SAFE_INTEGER) : since !== undefined ? await core.log.offsetAt(name, since) : 0;
    from = Math.min(from, to);
    if (q('tail') !== undefined || (q('from') === undefined && since === undefined)) {
      from = await core.log.lineStart(name, intParam(q('tail'), 'tail', 20, 0, 10_000_000), to, from);
    }
    if (exporting) await core.auditEvent(name, 'export', who.name, `${format} bytes ${from}-${to}`);
    const marks = flag(q('marks'));
    const events = marks ? (await ports.audit.list(name)).filter((e) => e.offset !== undefined && e.offset >= from && e.offset <= to) : [];
    const f = new Formatter(format, {
      timestamps: flag(q('timestamps')), marks, events, console: name,
      markMs: q('mark-ms') === undefined ? undefined : intParam(q('mark-ms'), 'mark-ms', DEFAULT_MARK_MS, 1000, 365 * 86_400_000),
      width: intParam(q('width'), 'width', 80, 1, 1000), height: intParam(q('height'), 'height', 24, 1, 1000),
    });
    const items = core.log.items(name, from, to);
    const body = streamOf(release, c.req.raw.signal, async function* () {
      try {
        for await (const it of items) {
          const out = f.push(it);
          if (out.length) yield new Uint8Array(out.buffer, out.byteOffset, out.length);
        }
        const tail = f.end();
        if (tail.length) yield new Uint8Array(tail);
      } finally { await items.return(undefined); }
    });
    const type = format === 'asciicast' || format === 'chunks' ? 'application/x-ndjson' : 'application/octet-stream';
    return new Response(body, { headers: { 'content-type': type, 'x-cloudcons-from': String(from), 'x-cloudcons-end': String(to) } });
  }

  // Search stored output of many consoles: NDJSON lines {console,time,offset,line}, then
  // {"truncated":N} if `max` (default 1000) stopped it, or {"truncated":N,"reason":...} if its time
  // (maxGrepMs) did. Which consoles: those the caller may replay, then of them those `console`
  // (a glob) matches; the glob never sees a console the caller may not.
  app.get('/v1/grep', async (c) => {
    const who = user(c);
    const q = (k: string) => c.req.query(k);
    const pattern = q('pattern');
    if (!pattern) throw new BadParameter('pattern: required');
    const pat = grepPattern(pattern, flag(q('i')), { maxLength: core.opts.maxPatternLength, maxStates: core.opts.maxPatternStates });
    let glob: (name: string) => boolean;
    try { glob = globMatcher(q('console') ?? '*'); } catch (e) { throw new BadParameter(`console: ${(e as Error).message}`); }
    const since = timeParam(q('since'), 'since'), until = timeParam(q('until'), 'until');
    const max = intParam(q('max'), 'max', 1000, 1, 10_000_000);
    const all = [...new Set([...(await core.consoleNames()), ...(await core.log.consoles())])].sort();
    const names: string[] = [];
    for (const n of all) if ((await core.may(who, n, 'replay')).allow && glob(n)) names.push(n);
    const release = core.queries.take(who.name);
    const budget: GrepBudget = { deadline: Date.now() + core.opts.maxGrepMs, scanned: 0 };
    const enc = (x: unknown) => new TextEncoder().encode(JSON.stringify(x) + '\n');
    const body = streamOf(release, c.req.raw.signal, async function* (signal) {
      budget.signal = signal;
      let n = 0;
      for (const name of names) {
        const from = since !== undefined ? await core.log.offsetAt(name, since) : 0;
        const to = until !== undefined ? await core.log.offsetBefore(name, until) : await core.log.end(name);
        for await (const h of grepLog(core.log.items(name, from, to, { literals: pat.literals }), name, pat, budget)) {
          if (n++ >= max) { yield enc({ truncated: max }); return; }
          yield enc(h);
        }
        if (budget.stopped) break;
      }
      if (budget.stopped && !signal.aborted) {
        yield enc({ truncated: n, reason: `grep stopped ${budget.stopped} after ${core.opts.maxGrepMs} ms (maxGrepMs), having scanned ${budget.scanned} bytes: narrow it with --since/--until or --console` });
      }
    });
    return new Response(body, { headers: { 'content-type': 'application/x-ndjson' } });
  });

  // A segment upload: who may send it, how many are in progress and how big it says it is are
  // checked before a byte of its body is read (a body is up to maxSegmentBytes of memory).
  const tooLarge = () => new TooLarge(`segment larger than this cloud accepts (${maxSegmentBytes} bytes, --max-segment-bytes): seal smaller segments on the relay (segmentBytes)`);
  app.put('/v1/consoles/:name/segments', async (c, next) => {
    const who = c.get('who');
    await core.requireUploader(who, c.req.param('name'));
    const done = uploads.take(who.name);
    try { await next(); } finally { done(); }
  }, bodyCap(maxSegmentBytes, tooLarge), async (c) => {
    const body = Buffer.from(await c.req.arrayBuffer());
    const r = await core.ingestSegment(c.get('who'), c.req.param('name'), body);
    return c.json(r, r.created ? 201 : 200);
  });

  // Uploads straight to the segment store (S3): the relay asks for a URL, PUTs the segment there,
  // then commits it. `mode: 'direct'` means this cloud takes the body itself (PUT above).
  app.post('/v1/consoles/:name/segments/upload-url', async (c) => {
    await core.requireUploader(c.get('who'), c.req.param('name'));
    const body = await jsonBody(c);
    if (typeof body.key !== 'string') throw new BadParameter('key: a segment key (protocol/SEGMENT.md) is required');
    if (body.sha256 !== undefined && (typeof body.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(body.sha256))) {
      throw new BadParameter('sha256: 64 lowercase hex digits of the segment file\'s SHA-256');
    }
    const r = await core.segmentUploadUrl(c.get('who'), c.req.param('name'), {
      key: body.key, size: Number(body.size), sha256: typeof body.sha256 === 'string' ? Buffer.from(body.sha256, 'hex') : undefined,
    }, maxSegmentBytes);
    return c.json(r);
  });

  app.post('/v1/consoles/:name/segments/commit', async (c) => {
    await core.requireUploader(c.get('who'), c.req.param('name'));
    const body = await jsonBody(c);
    if (typeof body.key !== 'string') throw new BadParameter('key: the key the segment was uploaded under is required');
    const r = await core.commitSegment(c.get('who'), c.req.param('name'), body.key);
    return c.json(r, r.created ? 201 : 200);
  });

  app.get('/v1/consoles/:name/audit', async (c) => {
    const who = user(c);
    const name = c.req.param('name');
    // The cloud's own stream (sign-ins, tokens, access rules) is for admins.
    if (name === CLOUD_STREAM) await core.requireAdmin(who, 'read the cloud audit stream');
    else await core.requireKnown(who, name, 'audit');
    const limit = c.req.query('limit') === undefined ? undefined : intParam(c.req.query('limit'), 'limit', 100, 1, 1_000_000);
    return c.json({ records: await ports.audit.list(name, { limit }) });
  });

  // `cloudcons audit verify [NAME]`: each console's hash chain checked end to end against its head
  // (audit-chain.ts), the first broken record named. Without `console`: every console the caller
  // may audit (and the cloud's own stream for admins).
  app.get('/v1/audit/verify', async (c) => {
    const who = user(c);
    const store = ports.audit;
    if (!store.verify) throw new BadParameter('this cloud\'s audit store cannot verify its hash chain');
    const q = c.req.query('console');
    const one = q === undefined || q === '' ? undefined : checkConsoleName(q, 'console', { cloudStream: true });
    let names: string[];
    if (one) {
      if (one === CLOUD_STREAM) await core.requireAdmin(who, 'verify the cloud audit stream');
      else await core.requireKnown(who, one, 'audit');
      names = [one];
    } else {
      const all = new Set([...(await core.consoleNames(who)), ...((await store.consoles?.()) ?? []), CLOUD_STREAM]);
      names = [];
      for (const n of [...all].sort()) if (n === CLOUD_STREAM ? await core.isAdmin(who) : (await core.may(who, n, 'audit')).allow) names.push(n);
    }
    const consoles = [];
    for (const n of names) consoles.push(await store.verify(n));
    return c.json({ ok: consoles.every((r) => r.ok), consoles });
  });

  // `cloudcons audit reseal NAME` (admins): a head that no longer matches intact records moves to
  // the last one, and the chain records that it did (audit-chain.ts resealChain).
  app.post('/v1/audit/reseal', async (c) => {
    const who = await admin(c, 'reseal an audit chain');
    const name = checkConsoleName(c.req.query('console'), 'console', { cloudStream: true });
    if (!ports.audit.reseal) throw new BadParameter('this cloud\'s audit store cannot reseal its hash chain');
    return c.json(await ports.audit.reseal(name, who.name, ports.clock.now()));
  });

  // Tokens: admins create, list and revoke any; a user lists and revokes their own.
  app.post('/v1/tokens', async (c) => {
    const who = await admin(c, 'create tokens');
    const body = await jsonBody(c);
    const kind = body.kind === 'relay' ? 'relay' : 'user';
    const name = tokenName(body.name);
    const now = ports.clock.now();
    // `expires`: ms since the epoch, or null for never; absent: user tokens get userTokenTtlMs, relay tokens never expire.
    let expires: number | undefined;
    if (body.expires === undefined) expires = kind === 'user' && userTokenTtlMs > 0 ? now + userTokenTtlMs : undefined;
    else if (body.expires === null) expires = undefined;
    else if (typeof body.expires === 'number' && Number.isFinite(body.expires) && body.expires > now && body.expires <= LAST_EXPIRY) expires = body.expires;
    else throw new BadParameter(`expires: a time in the future up to 9999-12-31 (ms since the epoch) or null for never (got ${JSON.stringify(body.expires)})`);
    const r = await ports.tokens.create({ kind, name, admin: kind === 'user' && body.admin === true, expires });
    await core.auditCloud('token.create', who.name, `${kind} token ${r.id} for ${name}${kind === 'user' && body.admin === true ? ' (admin)' : ''}, ${expires ? `expires ${new Date(expires).toISOString()}` : 'never expires'}`);
    return c.json({ ...r, kind, name }, 201);
  });

  app.get('/v1/tokens', async (c) => {
    const who = user(c);
    const all = await ports.tokens.list();
    return c.json({ tokens: (await core.isAdmin(who)) ? all : all.filter((t) => ownsToken(who, t)) });
  });

  app.delete('/v1/tokens/:id', async (c) => {
    const who = user(c);
    const id = c.req.param('id');
    const t = (await ports.tokens.list()).find((x) => x.id === id);
    const mine = !!t && ownsToken(who, t);
    if (!mine) await core.requireAdmin(who, `revoke token ${id}`);
    if (!t) throw new NotFound(`no token with id ${id} (cloudcons token list shows them)`);
    const r = await ports.tokens.revoke(id, who.name, ports.clock.now());
    await core.auditCloud('token.revoke', who.name, `${t.kind} token ${id} of ${t.name}`);
    // Its open connections close before the answer (their input is refused from now on anyway).
    if (r) await core.tokenRevoked(r).catch((e: Error) => console.error(`http: closing the connections of revoked token ${id} failed (they end at their next re-check): ${e.message}`));
    return c.json(r);
  });

  // SSH public keys for local access at the relays (local-access.ts): a user lists, adds and
  // removes their own; an admin anyone's (`user`: a token user alice, or sso:alice).
  app.get('/v1/keys', async (c) => c.json(await core.listKeys(user(c), subjectName(c.req.query('user')))));
  app.post('/v1/keys', async (c) => {
    const who = user(c);
    const body = await jsonBody(c);
    if (typeof body.keys !== 'string') throw new BadParameter(`keys: the text of an OpenSSH public key line or an authorized_keys file is required (got ${typeof body.keys})`);
    return c.json(await core.addKeys(who, body.keys, subjectName(typeof body.user === 'string' ? body.user : undefined)), 201);
  });
  app.delete('/v1/keys/:fingerprint', async (c) => c.json(await core.removeKey(user(c), c.req.param('fingerprint'), subjectName(c.req.query('user')))));

  // `cloudcons relay-local on|off NAME` (admins): local access at a relay allowed or not.
  app.post('/v1/relays/:name/local', async (c) => {
    const who = user(c);
    const relay = checkUserName(c.req.param('name'));
    if (relay.why !== undefined) throw new BadParameter(`relay: ${relay.why}`);
    const body = await jsonBody(c);
    if (typeof body.on !== 'boolean') throw new BadParameter(`on: true or false (got ${JSON.stringify(body.on)})`);
    const r = await core.setRelayLocal(who, relay.name, body.on);
    return c.json({ relay: r.name, local: r.localOff ? 'off' : 'on', ...(r.localOff ? { by: r.localOff.by, at: r.localOff.at } : {}), connected: !!r.conn });
  });

  // Access rules (acl.ts): admins read and replace them; `check` explains a decision.
  app.get('/v1/access', async (c) => {
    await admin(c, 'read the access rules');
    const { doc, version } = await ports.access.get();
    return c.json({ version, doc: doc ?? null });
  });

  app.put('/v1/access', async (c) => {
    const who = await admin(c, 'change the access rules');
    const body = await jsonBody(c);
    const expect = body.version === undefined ? undefined : intParam(String(body.version), 'version', 0, 0, Number.MAX_SAFE_INTEGER);
    return c.json(await core.setAccess(who, body.doc, expect));
  });

  app.get('/v1/access/check', async (c) => {
    const who = user(c);
    const name = subjectName(c.req.query('user')) ?? who.name;
    const console = checkConsoleName(c.req.query('console'));
    const groups = c.req.query('groups')?.split(',').map((g) => g.trim().replace(/^@/, '')).filter(Boolean).map((g) => {
      const n = checkGroupName(g);
      if (n.why !== undefined) throw new BadParameter(`groups: ${n.why}`);
      return n.name;
    });
    return c.json(await core.checkAccess(who, { name, groups, admin: false }, console));
  });

  return app;
}

/** A token is its user's own: a user token made for token user `who` (names in normal form). A user
 *  of single sign-on owns none: `sso:bob` is not the token user `bob`, and neither speaks for the other. */
function ownsToken(who: Principal, t: TokenInfo): boolean {
  return who.kind === 'user' && who.via !== 'oidc' && t.kind === 'user' && t.name.toLowerCase() === who.name;
}

/** `access check`'s user: a token user (`alice`) or a user of single sign-on (`sso:alice`), in normal form. */
function subjectName(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  const p = parsePrincipal(raw);
  if (p.why !== undefined) throw new BadParameter(`user: ${p.why}`);
  if (p.ref.kind !== 'user' && p.ref.kind !== 'sso') throw new BadParameter(`user: ${raw} is a ${p.ref.kind === 'everyone' ? 'rule for everyone' : p.ref.kind}, not a user (a token user alice, or sso:alice)`);
  return formatPrincipal(p.ref);
}

/** A response body streamed from `gen` with backpressure (a chunk is made when the client is ready
 *  for one). It ends, and gives back its query slot (`release`), when `gen` is done or fails, or
 *  when the requester leaves (the stream is cancelled, or the request's `signal` aborts): then
 *  the signal passed to `gen` aborts, so work between two chunks stops too. */
function streamOf(release: () => void, request: AbortSignal | undefined, make: (signal: AbortSignal) => AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  const gone = new AbortController();
  const leave = () => { gone.abort(); release(); void gen.return(undefined).catch(() => {}); };
  request?.addEventListener('abort', leave, { once: true });
  const gen = make(gone.signal);
  const done = () => { request?.removeEventListener('abort', leave); release(); };
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        const r = await gen.next();
        if (r.done) { done(); ctl.close(); } else ctl.enqueue(r.value);
      } catch (e) { done(); ctl.error(e); }
    },
    async cancel() { leave(); },
  });
}

function flag(raw: string | undefined): boolean { return raw !== undefined && raw !== '0' && raw !== 'false'; }

function timeParam(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const t = parseTime(raw);
  if (t === undefined) throw new BadParameter(`${name}: not a time: ${JSON.stringify(raw)} (use e.g. 2h, 30m, 2026-11-25, "2026-11-25 14:00", an ISO time or ms since the epoch)`);
  return t;
}

function intParam(raw: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new BadParameter(`${name}: must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}

async function jsonBody(c: Context<Env>): Promise<Record<string, unknown>> {
  try {
    const b = await c.req.json();
    if (typeof b === 'object' && b && !Array.isArray(b)) return b as Record<string, unknown>;
  } catch (e) {
    if (e instanceof TooLarge) throw e; // bodyCap stopped the read
  }
  throw new BadParameter('request body must be a JSON object');
}
