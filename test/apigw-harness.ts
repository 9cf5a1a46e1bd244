// A local API Gateway WebSocket API, for running the Lambda handlers, relays and CLIs end to end
// without AWS (LocalStack's WebSocket APIs need a paid plan; serverless-offline needs its CLI).
// It reproduces the contract of ../shared/reference/aws-constraints-and-cost.md section 1, and
// enforces the limits that emulators usually let slide:
//
// - `$connect` runs while the upgrade is pending; a handler answer other than 2xx (or a throw)
//   refuses the upgrade with that status. Every text message goes to `$default`; `$disconnect`
//   follows a close (best-effort on AWS: `dropDisconnects` withholds it to test that).
// - Events have AWS's shape (requestContext with routeKey, eventType, connectionId, stage,
//   domainName, apiId, requestId, connectedAt, requestTimeEpoch, identity.sourceIp; headers and
//   queryStringParameters on $connect; body + isBase64Encoded:false on messages).
// - Text frames only: a binary frame closes the connection with 1003. A frame over `frameBytes`
//   (32 KB) closes it with 1009. No inbound message for `idleMs` (10 min) closes it with 1001, and
//   so does reaching `lifetimeMs` (2 h), however busy it is.
// - `@connections` over HTTP at `<endpoint>/@connections/<id>`, as the AWS SDK's
//   ApiGatewayManagementApiClient calls it (signatures are not checked): POST sends the body as a
//   text frame (over `messageBytes`, 128 KB: 413 PayloadTooLargeException), GET describes the
//   connection, DELETE closes it; an unknown or closed id is 410 GoneException.
// - `stats` counts what AWS bills: messages in and out in 32 KB units, connection-minutes.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { closeReason } from '../protocol/codec.ts';

export interface ApiGwLimits {
  frameBytes: number;
  messageBytes: number;
  idleMs: number;
  lifetimeMs: number;
}
export const APIGW_LIMITS: ApiGwLimits = { frameBytes: 32 * 1024, messageBytes: 128 * 1024, idleMs: 10 * 60_000, lifetimeMs: 2 * 3600_000 };

/** The subset of APIGatewayProxyWebsocketEventV2 (+ $connect's headers) handlers see. */
export interface WsEvent {
  requestContext: {
    routeKey: '$connect' | '$disconnect' | '$default';
    eventType: 'CONNECT' | 'DISCONNECT' | 'MESSAGE';
    connectionId: string;
    stage: string;
    domainName: string;
    apiId: string;
    requestId: string;
    messageId?: string;
    extendedRequestId: string;
    requestTime: string;
    requestTimeEpoch: number;
    connectedAt: number;
    messageDirection: 'IN';
    identity: { sourceIp: string; userAgent?: string };
    disconnectStatusCode?: number;
    disconnectReason?: string;
  };
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  queryStringParameters?: Record<string, string>;
  body?: string;
  isBase64Encoded: boolean;
}
export type WsHandler = (event: WsEvent) => Promise<{ statusCode: number; body?: string; headers?: Record<string, string> } | undefined | void>;

interface Conn {
  id: string;
  ws: WebSocket;
  connectedAt: number;
  lastActiveAt: number;
  sourceIp: string;
  userAgent?: string;
  idle?: NodeJS.Timeout;
  life?: NodeJS.Timeout;
}

export interface ApiGateway {
  /** ws:// URL clients connect to. */
  wsUrl: string;
  /** The @connections endpoint for ApiGatewayManagementApiClient({ endpoint }). */
  endpoint: string;
  stats: { connects: number; refused: number; messagesIn: number; messagesOut: number; connectionMs: number };
  /** Connection ids open now. */
  open(): string[];
  close(): Promise<void>;
}

const units = (bytes: number) => Math.max(1, Math.ceil(bytes / (32 * 1024)));

export async function startApiGateway(o: {
  handler: WsHandler; limits?: Partial<ApiGwLimits>; stage?: string; dropDisconnects?: boolean; log?: (l: string) => void;
}): Promise<ApiGateway> {
  const limits = { ...APIGW_LIMITS, ...o.limits };
  const stage = o.stage ?? 'test';
  const apiId = randomBytes(5).toString('hex');
  const conns = new Map<string, Conn>();
  const stats = { connects: 0, refused: 0, messagesIn: 0, messagesOut: 0, connectionMs: 0 };
  const log = o.log ?? (() => {});
  // As API Gateway: the subprotocol answered is the one $connect's response names in its
  // Sec-WebSocket-Protocol header; none named, none answered (a browser that asked then fails).
  const chosen = new WeakMap<object, string>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.frameBytes, perMessageDeflate: false,
    handleProtocols: (protocols, req) => { const p = chosen.get(req); return p && protocols.has(p) ? p : false; } });
  let domainName = '127.0.0.1';

  const context = (c: { id: string; connectedAt: number; sourceIp: string; userAgent?: string }, routeKey: WsEvent['requestContext']['routeKey']): WsEvent['requestContext'] => {
    const now = Date.now();
    return {
      routeKey, eventType: routeKey === '$connect' ? 'CONNECT' : routeKey === '$disconnect' ? 'DISCONNECT' : 'MESSAGE',
      connectionId: c.id, stage, domainName, apiId, requestId: randomUUID(), extendedRequestId: randomUUID(),
      requestTime: new Date(now).toUTCString(), requestTimeEpoch: now, connectedAt: c.connectedAt, messageDirection: 'IN',
      identity: { sourceIp: c.sourceIp, userAgent: c.userAgent },
    };
  };

  const invoke = async (ev: WsEvent) => {
    try { return await o.handler(ev); } catch (e) {
      log(`handler failed on ${ev.requestContext.routeKey}: ${(e as Error).stack ?? e}`);
      return { statusCode: 500 };
    }
  };

  const end = (c: Conn, code: number, reason: string) => {
    if (!conns.has(c.id)) return;
    conns.delete(c.id);
    clearTimeout(c.idle);
    clearTimeout(c.life);
    stats.connectionMs += Date.now() - c.connectedAt;
    if (c.ws.readyState === c.ws.OPEN) c.ws.close(code, closeReason(reason));
    if (!o.dropDisconnects) {
      void invoke({ requestContext: { ...context(c, '$disconnect'), disconnectStatusCode: code, disconnectReason: reason }, isBase64Encoded: false });
    }
  };
  const armIdle = (c: Conn) => {
    clearTimeout(c.idle);
    c.idle = setTimeout(() => end(c, 1001, 'Going away (idle timeout)'), limits.idleMs);
  };

  const server = http.createServer((req, res) => {
    // @connections: /<stage>/@connections/<id> (the SDK puts the endpoint's path first).
    const m = /^(?:\/[^/]+)?\/@connections\/([^/?]+)$/.exec((req.url ?? '').split('?')[0]!);
    const reply = (status: number, type?: string, body = '') => {
      res.writeHead(status, { 'content-type': 'application/json', ...(type ? { 'x-amzn-errortype': type } : {}) }).end(body);
    };
    if (!m) return reply(404, 'NotFoundException', JSON.stringify({ message: 'not found' }));
    const c = conns.get(decodeURIComponent(m[1]!));
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      if (!c || c.ws.readyState !== c.ws.OPEN) return reply(410, 'GoneException', JSON.stringify({ message: null }));
      if (req.method === 'GET') {
        return reply(200, undefined, JSON.stringify({ // restJson1 member names, ISO 8601 times
          connectedAt: new Date(c.connectedAt).toISOString(), lastActiveAt: new Date(c.lastActiveAt).toISOString(),
          identity: { sourceIp: c.sourceIp, userAgent: c.userAgent },
        }));
      }
      if (req.method === 'DELETE') { end(c, 1000, 'deleted by @connections'); return reply(204); }
      if (req.method !== 'POST') return reply(405, 'BadRequestException', JSON.stringify({ message: `${req.method} not allowed` }));
      const body = Buffer.concat(chunks);
      if (body.length > limits.messageBytes) return reply(413, 'PayloadTooLargeException', JSON.stringify({ message: `Message too long: ${body.length} > ${limits.messageBytes}` }));
      stats.messagesOut += units(body.length);
      c.ws.send(body.toString('utf8'), { binary: false });
      reply(200);
    });
  });

  server.on('upgrade', (req, socket, head) => {
    void (async () => {
      const id = `${randomBytes(9).toString('base64').replace(/[/+]/g, 'x')}=`;
      const connectedAt = Date.now();
      const sourceIp = req.socket.remoteAddress ?? '127.0.0.1';
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v ?? '']));
      const url = new URL(req.url ?? '/', 'http://x');
      const query = Object.fromEntries(url.searchParams);
      const base = { id, connectedAt, sourceIp, userAgent: headers['user-agent'] };
      const r = await invoke({
        requestContext: context(base, '$connect'), headers,
        multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
        ...(Object.keys(query).length ? { queryStringParameters: query } : {}), isBase64Encoded: false,
      });
      const status = r?.statusCode ?? 200;
      const proto = Object.entries(r?.headers ?? {}).find(([k]) => k.toLowerCase() === 'sec-websocket-protocol')?.[1];
      if (proto) chosen.set(req, proto);
      if (status < 200 || status > 299) {
        stats.refused++;
        socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${r?.body ?? ''}`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const c: Conn = { ...base, ws, lastActiveAt: connectedAt };
        conns.set(id, c);
        stats.connects++;
        armIdle(c);
        c.life = setTimeout(() => end(c, 1001, 'Going away (connection duration limit)'), limits.lifetimeMs);
        ws.on('message', (data, isBinary) => {
          if (isBinary) return end(c, 1003, 'Unsupported data (binary frames are not supported)');
          c.lastActiveAt = Date.now();
          armIdle(c);
          const body = data.toString();
          stats.messagesIn += units(Buffer.byteLength(body));
          void invoke({ requestContext: { ...context(c, '$default'), messageId: randomBytes(8).toString('base64') }, body, isBase64Encoded: false });
        });
        // ws closes with 1009 itself when a frame exceeds maxPayload.
        ws.on('close', (code, reason) => end(c, code, reason.toString() || 'closed by the client'));
        ws.on('error', () => { /* a close follows */ });
      });
    })();
  });

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  domainName = `127.0.0.1:${port}`;
  return {
    wsUrl: `ws://127.0.0.1:${port}/${stage}`,
    endpoint: `http://127.0.0.1:${port}/${stage}`,
    stats,
    open: () => [...conns.keys()],
    async close() {
      for (const c of [...conns.values()]) end(c, 1001, 'Going away');
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
