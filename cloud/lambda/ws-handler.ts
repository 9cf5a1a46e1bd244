// The Lambda handler of the API Gateway WebSocket API: routes by `routeKey` (hono/aws-lambda does
// not take WebSocket events; see ../shared/reference/aws-constraints-and-cost.md) into the same
// CloudCore the embedded server runs. Stateless between invocations: who is on a connection lives
// in DynamoDB (written at $connect), everything else behind the core's ports.
//
// - $connect: the bearer token (Authorization header) decides; a relay token opens a relay
//   connection, a user token a client session. Refused with 401 and the reason otherwise.
// - $default: one protocol message, validated like the embedded server does (a bad frame gets an
//   error message back), then core.relayMessage / core.clientMessage.
// - $disconnect: a hint (API Gateway may not send it): the core's cleanup, idempotent. A post that
//   meets 410 Gone is the other way stale connections are noticed.
// - Re-checks: no timer runs between invocations, so a message of a connection that this container
//   has not re-checked (token, rights, lease: core.recheckConnection) for tokenRecheckMs, and that
//   connected longer ago than that, runs one first. Kept per container, not in the table: another
//   container checks again (a read) rather than every check costing a write. A connection that
//   sends nothing is covered otherwise: a revocation closes it at once (the HTTP function finds it
//   by its principal), live output stops for an expired token or lost rights (cloud/core/live-output.ts), and
//   API Gateway drops it after 10 idle minutes.
import { decode, encode, PROTOCOL_LIMITS } from '../../protocol/codec.ts';
import { CcError, errorCode } from '../../protocol/errors.ts';
import { clientToCloud, relayToCloud } from '../../protocol/messages.ts';
import { CloudCore, type CoreOptions } from '../core/core.ts';
import { authenticate, offersSubprotocol, SUBPROTOCOL, subprotocolBearer } from '../core/http-app.ts';
import type { CloudPorts } from '../core/ports.ts';
import type { DynamoConnections } from '../adapters/aws/apigw-connections.ts';

/** The parts of an API Gateway WebSocket event the handler reads. */
export interface WebSocketEvent {
  requestContext: { routeKey: string; connectionId: string; connectedAt?: number; identity?: { sourceIp?: string } };
  headers?: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
}

export interface WsHandlerDeps {
  ports: CloudPorts;
  connections: DynamoConnections;
  core?: Partial<CoreOptions>;
  maxFrameBytes?: number;
  /** Open connections per user (default 32) and per relay (default 4); more are refused at $connect. */
  maxConnsPerUser?: number;
  maxConnsPerRelay?: number;
  log?: (line: string) => void;
}

export function createWsHandler(d: WsHandlerDeps) {
  // Live output only of watched consoles, a quiet console's gathered up to 2 s: on API Gateway
  // every message costs; 2 s is what keeps 200 B/s watched 2 % of the time within $0.20 per
  // console-month (bench/cost.ts; 1 s: $0.23). A writer's echo is never held.
  const core = new CloudCore(d.ports, { live: 'watched', quietBatchMs: 2000, ...d.core });
  const log = d.log ?? ((l: string) => console.error(l));
  const maxFrameBytes = d.maxFrameBytes ?? PROTOCOL_LIMITS.maxFrameBytes;
  const checkedAt = new Map<string, number>(); // connection -> its last re-check in this container
  const reply = (conn: string, e: unknown) => d.ports.sender.send(conn, encode({ t: 'error', code: errorCode(e), message: e instanceof CcError ? e.message : 'internal error' }));

  const handle = async (event: WebSocketEvent): Promise<{ statusCode: number; body?: string; headers?: Record<string, string> }> => {
    const { routeKey, connectionId: conn } = event.requestContext;
    if (routeKey === '$connect') {
      const h = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      try {
        // The CLI and relays send Authorization; the web viewer offers its token as a subprotocol.
        const protocols = h['sec-websocket-protocol'];
        const who = await authenticate(d.ports, h.authorization ?? subprotocolBearer(protocols));
        const max = who.kind === 'relay' ? d.maxConnsPerRelay ?? 4 : d.maxConnsPerUser ?? 32;
        const open = await d.connections.countOpen(who, Date.now());
        if (open >= max) {
          const why = `${who.kind} ${who.name} has ${open} WebSocket connections open, the limit (${who.kind === 'relay' ? 'CLOUDCONS_MAX_CONNS_PER_RELAY' : 'CLOUDCONS_MAX_CONNS_PER_USER'} ${max}): close one`;
          log(`refused ${conn}: ${why}`);
          await core.auditSignIn(who, 'auth.refused', why);
          return { statusCode: 429, body: why };
        }
        await d.connections.put(conn, { kind: who.kind === 'relay' ? 'relay' : 'session', who, connectedAt: event.requestContext.connectedAt ?? Date.now() });
        await core.auditSignIn(who, 'auth.signin', `WebSocket ${conn} from ${event.requestContext.identity?.sourceIp ?? '?'} (${who.via === 'oidc' ? 'OpenID Connect' : `token ${who.tokenId}`})`);
        log(`${who.kind} ${who.name} connected (${conn})`);
        return offersSubprotocol(protocols) ? { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': SUBPROTOCOL } } : { statusCode: 200 };
      } catch (e) {
        if (e instanceof CcError) await core.authFailed(`WebSocket ${conn} from ${event.requestContext.identity?.sourceIp ?? '?'}`, e.message).catch(() => {});
        return { statusCode: e instanceof CcError ? 401 : 500, body: e instanceof Error ? e.message : 'unauthorized' };
      }
    }
    const c = await d.connections.get(conn);
    if (routeKey === '$disconnect') {
      if (c) {
        await (c.kind === 'relay' ? core.relayClosed(conn, c.who.name) : core.clientClosed(conn));
        await d.connections.delete(conn);
        log(`${c.kind} ${c.who.name} disconnected (${conn})`);
      }
      return { statusCode: 200 };
    }
    if (!c) { // its $connect record is gone (TTL, or a disconnect already handled)
      await d.ports.sender.close(conn, 1008, 'unknown connection: connect again');
      return { statusCode: 200 };
    }
    const now = Date.now();
    if (now - (checkedAt.get(conn) ?? c.connectedAt) >= core.opts.tokenRecheckMs) {
      if (checkedAt.size >= 10_000) for (const [k, t] of checkedAt) if (now - t >= core.opts.tokenRecheckMs) checkedAt.delete(k);
      if (!(await core.recheckConnection(conn, c.who))) return { statusCode: 200 };
      checkedAt.set(conn, now);
    }
    const r = c.kind === 'relay' ? decode(relayToCloud, event.body ?? '', maxFrameBytes) : decode(clientToCloud, event.body ?? '', maxFrameBytes);
    if (!r.ok) {
      await d.ports.sender.send(conn, encode({ t: 'error', code: r.code, message: r.message }));
      return { statusCode: 200 };
    }
    try {
      if (c.kind === 'relay') await core.relayMessage(conn, c.who, r.msg as never);
      else await core.clientMessage(conn, c.who, r.msg as never);
    } catch (e) {
      if (!(e instanceof CcError)) log(`${conn}: error handling ${(r.msg as { t: string }).t}: ${(e as Error).stack}`);
      await reply(conn, e);
    }
    return { statusCode: 200 };
  };
  // The audit head's last move runs after the input went out; it is done before the invocation
  // ends (a frozen container would leave it to the next append). So is the count of audit records
  // a ration held back (no timer runs between invocations).
  return async (event: WebSocketEvent) => {
    try { return await handle(event); } finally {
      await core.flushAuditRations().catch((e: Error) => log(`audit rations: ${e.message}`));
      await d.ports.audit.settle?.();
    }
  };
}
