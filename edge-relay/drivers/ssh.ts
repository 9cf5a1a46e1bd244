// SSH consoles (ssh2): a BMC's or switch's CLI, a console server that hands out ports over SSH, or
// a host's `virsh console`. One SSH connection per console with a pty-backed shell (or `command`).
//
// Authentication: a private key (keyFile, passphraseFile if encrypted) and/or a password
// (password, passwordFile or passwordEnv; also answers keyboard-interactive prompts, which many
// BMCs use instead of "password"). Secrets are read at each open and never logged.
// Host key: pinned by SHA256 fingerprint (`hostKey`), else checked against a known_hosts file
// (`knownHosts`, default ~/.ssh/known_hosts; hashed entries and [host]:port entries understood).
// An unknown or changed key refuses the connection with the fingerprint it saw, so an operator can
// pin it; there is no trust-on-first-use.
// Liveness: SSH keepalives every keepaliveMs; keepaliveCountMax unanswered ones end the session.
// BREAK: RFC 4335 "break" channel request. ssh2 does not expose it, so breakRequest() writes the
// packet through ssh2's own packet writer, the way its Protocol.signal() does (ssh2 1.x internals;
// ssh.test.ts checks a real sshd receives it).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
// A static import (not createRequire), so a release's bundle carries it with the rest of ssh2.
import ssh2Utils from 'ssh2/lib/protocol/utils.js';
import type { ConsoleDriver, DriverEvents } from '../driver.ts';
import type { SshConsoleConfig } from '../config.ts';
import { expandHome, readSecretFile, resolvePassword } from '../secrets.ts';

/** How long connecting and authenticating may take (ms). */
export const SSH_READY_TIMEOUT_MS = 20_000;

interface Run {
  client: Client;
  stream?: ClientChannel;
  events: DriverEvents;
  ended: boolean;
  closing: boolean;
  why?: string;
  closed: Promise<void>;
}

export class SshDriver implements ConsoleDriver {
  readonly type = 'ssh';
  readonly resizable = true;
  private cur?: Run;
  private size: { cols: number; rows: number };

  constructor(private readonly cfg: SshConsoleConfig) {
    this.size = { cols: cfg.cols ?? 80, rows: cfg.rows ?? 24 };
  }

  async open(events: DriverEvents): Promise<void> {
    if (this.cur && !this.cur.ended) throw new Error('open ssh: already open');
    const c = this.cfg;
    const label = `${c.user}@${c.host}:${c.port}`;
    const password = resolvePassword(c);
    const privateKey = c.keyFile !== undefined ? readKey(c.keyFile) : undefined;
    const passphrase = c.passphraseFile !== undefined ? readSecretFile(c.passphraseFile, 'passphrase') : undefined;
    const verify = hostKeyCheck(c);
    let seenKey = '';
    const client = new Client();
    let done!: () => void;
    const run: Run = { client, events, ended: false, closing: false, closed: new Promise((r) => (done = r)) };
    const cfg: ConnectConfig = {
      host: c.host, port: c.port, username: c.user, readyTimeout: SSH_READY_TIMEOUT_MS,
      keepaliveInterval: c.keepaliveMs, keepaliveCountMax: c.keepaliveCountMax,
      ...(password !== undefined ? { password, tryKeyboard: true } : {}),
      ...(privateKey !== undefined ? { privateKey, ...(passphrase !== undefined ? { passphrase } : {}) } : {}),
      hostVerifier: (key: Buffer) => {
        seenKey = fingerprint(key);
        return verify(key);
      },
    };
    // keyboard-interactive: answer every prompt with the password (BMCs ask "Password:").
    client.on('keyboard-interactive', (_n, _i, _l, prompts, finish) => finish(prompts.map(() => password ?? '')));

    await new Promise<void>((resolve, reject) => {
      let opened = false;
      client.once('ready', () => {
        const onStream = (err: Error | undefined, stream: ClientChannel) => {
          if (err) { client.end(); reject(new Error(`ssh ${label}: ${c.command ? `command ${JSON.stringify(c.command)}` : 'shell'}: ${err.message}`)); return; }
          opened = true;
          run.stream = stream;
          stream.on('data', (d: Buffer) => { if (!run.ended) events.onData(d); });
          stream.stderr.on('data', (d: Buffer) => { if (!run.ended) events.onData(d); });
          stream.on('exit', (code: number | null, signal?: string) => {
            run.why ??= signal ? `remote command killed by SIG${signal}` : `remote shell exited with code ${code}`;
          });
          stream.on('close', () => client.end());
          resolve();
        };
        const pty = { term: c.term, cols: this.size.cols, rows: this.size.rows };
        if (c.command) client.exec(c.command, { pty }, onStream);
        else client.shell(pty, onStream);
      });
      client.on('error', (e: Error & { level?: string }) => {
        const msg = describeError(e, label, seenKey, c);
        if (!opened) reject(new Error(msg));
        else run.why ??= msg.replace(`ssh ${label}: `, '');
      });
      client.on('close', () => {
        done();
        if (!opened) { reject(new Error(`ssh ${label}: connection closed before the session started`)); return; }
        if (run.ended) return;
        run.ended = true;
        events.onClose(run.closing ? 'closed' : (run.why ?? 'connection closed by peer'));
      });
      client.connect(cfg);
    });
    this.cur = run;
  }

  write(data: Buffer): Promise<void> {
    const run = this.cur;
    if (!run?.stream || run.ended) return Promise.reject(new Error('ssh console: not connected'));
    return new Promise((resolve, reject) => run.stream!.write(data, (e) => (e ? reject(e) : resolve())));
  }

  async sendBreak(): Promise<void> {
    const run = this.cur;
    if (!run?.stream || run.ended) throw new Error('ssh console: not connected');
    breakRequest(run.client, run.stream, this.cfg.breakDelayMs);
  }

  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    const run = this.cur;
    if (run?.stream && !run.ended) run.stream.setWindow(rows, cols, 0, 0);
  }

  async close(): Promise<void> {
    const run = this.cur;
    this.cur = undefined;
    if (!run || run.ended) return;
    run.closing = true;
    run.client.end();
    const t = setTimeout(() => run.client.destroy(), 2000);
    await run.closed;
    clearTimeout(t);
  }
}

function readKey(file: string): Buffer {
  const f = expandHome(file);
  try {
    return fs.readFileSync(f);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`key file ${f}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message}`);
  }
}

/** OpenSSH's fingerprint of a host key blob: SHA256:<base64 without padding>. */
export function fingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + crypto.createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** Builds the host key check for a console: pinned fingerprint, or its known_hosts file. */
function hostKeyCheck(c: SshConsoleConfig): (key: Buffer) => boolean {
  if (c.hostKey) {
    const want = c.hostKey.replace(/=+$/, '');
    return (key) => fingerprint(key) === want;
  }
  const file = expandHome(c.knownHosts ?? path.join(os.homedir(), '.ssh', 'known_hosts'));
  return (key) => knownHostsAccepts(readKnownHosts(file), c.host, c.port, key);
}

function readKnownHosts(file: string): string {
  try { return fs.readFileSync(file, 'utf8'); } catch { return ''; }
}

/** Whether known_hosts text lists `key` for host:port (plain, [host]:port and hashed |1| entries;
 *  @revoked lines reject; @cert-authority lines are not host keys and are skipped). */
export function knownHostsAccepts(text: string, host: string, port: number, key: Buffer): boolean {
  const names = port === 22 ? [host] : [`[${host}]:${port}`];
  const b64 = key.toString('base64');
  let ok = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    let marker = '';
    if (f[0].startsWith('@')) marker = f.shift()!;
    if (f.length < 3 || marker === '@cert-authority') continue;
    const [hosts, , blob] = f;
    if (!hostMatches(hosts, names)) continue;
    if (blob === b64) {
      if (marker === '@revoked') return false;
      ok = true;
    }
  }
  return ok;
}

function hostMatches(field: string, names: string[]): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    const s = Buffer.from(salt ?? '', 'base64');
    return names.some((n) => crypto.createHmac('sha1', s).update(n).digest('base64') === hash);
  }
  let match = false;
  for (const pat of field.split(',')) {
    const neg = pat.startsWith('!');
    const p = neg ? pat.slice(1) : pat;
    const re = new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
    if (names.some((n) => re.test(n))) { if (neg) return false; match = true; }
  }
  return match;
}

function describeError(e: Error & { level?: string }, label: string, seenKey: string, c: SshConsoleConfig): string {
  if (/host.*verif|Host denied/i.test(e.message)) {
    const where = c.hostKey ? `the pinned hostKey ${c.hostKey}` : `known_hosts ${expandHome(c.knownHosts ?? '~/.ssh/known_hosts')}`;
    return `ssh ${label}: host key ${seenKey || '(none)'} does not match ${where}; if the host is genuine, set hostKey: '${seenKey}'`;
  }
  if (e.level === 'client-authentication') return `ssh ${label}: authentication failed (${[c.keyFile ? 'key' : '', resolvedPasswordKind(c)].filter(Boolean).join(' and ')} refused)`;
  if (e.level === 'client-timeout') return `ssh ${label}: no answer within ${SSH_READY_TIMEOUT_MS} ms`;
  if (/Keepalive timeout/i.test(e.message)) return `ssh ${label}: keepalive timeout (the host stopped answering)`;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return `ssh ${label}: connection refused`;
  if (code === 'ENOTFOUND') return `ssh ${label}: host not found`;
  if (code === 'ECONNRESET') return `ssh ${label}: connection reset by peer`;
  return `ssh ${label}: ${e.message}`;
}

function resolvedPasswordKind(c: SshConsoleConfig): string {
  return c.password !== undefined || c.passwordFile !== undefined || c.passwordEnv !== undefined ? 'password' : '';
}

// --- RFC 4335 break, through ssh2's packet writer --------------------------------------------
const { sendPacket } = ssh2Utils;
const CHANNEL_REQUEST = 98;

interface PacketWriter { allocStart: number; alloc(n: number): Buffer; finalize(p: Buffer): Buffer }

/** Sends SSH_MSG_CHANNEL_REQUEST "break" (RFC 4335) with the break length in ms, no reply wanted. */
export function breakRequest(client: Client, stream: ClientChannel, ms: number): void {
  const proto = (client as unknown as { _protocol?: { _packetRW?: { write: PacketWriter } } })._protocol;
  const chan = (stream as unknown as { outgoing?: { id: number } }).outgoing?.id;
  const w = proto?._packetRW?.write;
  if (!w || chan === undefined) throw new Error('ssh console: this ssh2 version cannot send a break');
  let p = w.allocStart;
  const packet = w.alloc(1 + 4 + 4 + 5 + 1 + 4);
  packet[p] = CHANNEL_REQUEST;
  packet.writeUInt32BE(chan, ++p);
  packet.writeUInt32BE(5, p += 4);
  packet.write('break', p += 4, 'latin1');
  packet[p += 5] = 0; // want_reply: false
  packet.writeUInt32BE(ms, ++p);
  sendPacket(proto, w.finalize(packet));
}
