// The cloud's HTTP API, built from the core and its ports only (no sockets): the node server and
// the Lambda handler just wire it. Every route but /healthz needs a bearer token.
import { Hono } from 'hono';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { CcError, Forbidden, Unauthorized, BadParameter, TooLarge, httpStatus } from '../../protocol/errors.ts';
import type { CloudCore } from './core.ts';
import type { CloudPorts, Principal } from './ports.ts';

type Env = { Variables: { who: Principal } };

export function bearer(header: string | undefined | null): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

export async function authenticate(ports: Pick<CloudPorts, 'tokens'>, header: string | undefined | null): Promise<Principal> {
  const token = bearer(header);
  if (!token) throw new Unauthorized('missing bearer token: send "Authorization: Bearer <token>" (cloudcons login stores one)');
  const who = await ports.tokens.verify(token);
  if (!who) throw new Unauthorized('invalid or revoked token');
  return who;
}

export interface HttpOptions {
  /** Largest segment upload accepted (bytes). Default 16 MiB. */
  maxSegmentBytes: number;
}

export function createHttpApp(core: CloudCore, ports: CloudPorts, opts: Partial<HttpOptions> = {}): Hono<Env> {
  const maxSegmentBytes = opts.maxSegmentBytes ?? 16 * 1024 * 1024;
  const app = new Hono<Env>();

  app.onError((err, c) => {
    const code = err instanceof CcError ? err.code : 'CC_ERR_INTERNAL';
    const message = err instanceof CcError ? err.message : 'internal error';
    if (!(err instanceof CcError)) console.error('http: unexpected error', err);
    return c.json({ error: { code, message } }, httpStatus(code) as 400);
  });
  app.notFound((c) => c.json({ error: { code: 'CC_ERR_NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` } }, 404));

  app.get('/healthz', (c) => c.json({ ok: true }));

  app.use('/v1/*', async (c, next) => {
    c.set('who', await authenticate(ports, c.req.header('authorization')));
    await next();
  });
  const user = (c: Context<Env>): Principal => {
    const who = c.get('who');
    if (who.kind !== 'user') throw new Forbidden('relay tokens cannot use the user API');
    return who;
  };
  const admin = (c: Context<Env>): Principal => {
    const who = user(c);
    if (!who.admin) throw new Forbidden(`user ${who.name} is not an admin`);
    return who;
  };

  app.get('/v1/whoami', (c) => c.json(c.get('who')));

  app.get('/v1/consoles', async (c) => { user(c); return c.json({ consoles: await core.listConsoles() }); });

  app.get('/v1/consoles/:name', async (c) => { user(c); return c.json(await core.getConsole(c.req.param('name'))); });

  app.get('/v1/consoles/:name/replay', async (c) => {
    user(c);
    const name = c.req.param('name');
    await core.requireKnown(name);
    const end = await core.log.end(name);
    // ?from=OFFSET: the exact bytes from an output offset to the end; else the last `tail` lines.
    const bytes = c.req.query('from') !== undefined
      ? await core.log.read(name, intParam(c.req.query('from'), 'from', 0, 0, Number.MAX_SAFE_INTEGER), end)
      : await core.log.tail(name, intParam(c.req.query('tail'), 'tail', 20, 1, 1_000_000));
    return c.body(new Uint8Array(bytes), 200, { 'content-type': 'application/octet-stream', 'x-cloudcons-end': String(end) });
  });

  app.put('/v1/consoles/:name/segments', bodyLimit({
    maxSize: maxSegmentBytes,
    onError: () => { throw new TooLarge(`segment larger than this cloud accepts (${maxSegmentBytes} bytes, --max-segment-bytes): seal smaller segments on the relay (segmentBytes)`); },
  }), async (c) => {
    const who = c.get('who');
    const body = Buffer.from(await c.req.arrayBuffer());
    const r = await core.ingestSegment(who, c.req.param('name'), body);
    return c.json(r, r.created ? 201 : 200);
  });

  app.get('/v1/consoles/:name/audit', async (c) => {
    user(c);
    const name = c.req.param('name');
    await core.requireKnown(name);
    const limit = c.req.query('limit') === undefined ? undefined : intParam(c.req.query('limit'), 'limit', 100, 1, 1_000_000);
    return c.json({ records: await ports.audit.list(name, { limit }) });
  });

  app.post('/v1/tokens', async (c) => {
    admin(c);
    const body = await jsonBody(c);
    const kind = body.kind === 'relay' ? 'relay' : 'user';
    const name = typeof body.name === 'string' ? body.name : '';
    if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name)) throw new BadParameter(`name: must be 1-64 letters, digits or . _ @ - (got ${JSON.stringify(body.name)})`);
    const r = await ports.tokens.create({ kind, name, admin: kind === 'user' && body.admin === true });
    return c.json({ ...r, kind, name }, 201);
  });

  return app;
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
  } catch { /* fall through */ }
  throw new BadParameter('request body must be a JSON object');
}
