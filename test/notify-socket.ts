// A stand-in for systemd's end of the notify protocol: a real AF_UNIX datagram socket (Node has
// none, so python3's socket module holds it) bound at a path or an abstract name ('@...'), as
// NOTIFY_SOCKET names it. Like systemd it asks for the sender's credentials and closes file
// descriptors passed with a message (systemd-notify's BARRIER=1 waits for exactly that).
// Each datagram becomes one JSON line: the sender's PID, how many fds came with it, the text.
import { spawnSync } from 'node:child_process';
import { Proc } from './helpers.ts';

const RECEIVER = `
import array, json, os, socket, struct, sys
name = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind('\\0' + name[1:] if name.startswith('@') else name)
print('listening', flush=True)
while True:
    data, anc, flags, _ = s.recvmsg(65536, socket.CMSG_SPACE(64 * 4) + socket.CMSG_SPACE(12))
    pid, fds = None, 0
    for level, kind, d in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array('i'); a.frombytes(d[:len(d) - len(d) % 4])
            for fd in a: os.close(fd); fds += 1
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', d[:12])[0]
    print(json.dumps({'pid': pid, 'fds': fds, 'text': data.decode('utf-8', 'replace')}), flush=True)
`;

export interface NotifyMessage { pid: number; fds: number; text: string; fields: Record<string, string> }

/** Why notify tests cannot run here, or undefined. */
export function notifySkip(): string | undefined {
  if (spawnSync('python3', ['-c', 'import socket; socket.AF_UNIX'], { stdio: 'ignore' }).status !== 0) return 'python3 (the test\'s datagram socket) is not installed';
  if (spawnSync('systemd-notify', ['--help'], { stdio: 'ignore' }).status !== 0) return 'systemd-notify (package systemd) is not installed';
  return undefined;
}

export async function notifySocket(name: string) {
  const proc = new Proc('python3', ['-c', RECEIVER, name]);
  await proc.waitFor(/^listening$/m);
  return {
    proc,
    /** Every datagram so far, in arrival order. */
    messages(): NotifyMessage[] {
      return proc.out.split('\n').filter((l) => l.startsWith('{')).map((l) => {
        const m = JSON.parse(l) as NotifyMessage;
        m.fields = Object.fromEntries(m.text.split('\n').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
        return m;
      });
    },
    /** The messages that carry assignment `kv` (e.g. READY=1). */
    with(kv: string): NotifyMessage[] { return this.messages().filter((m) => m.text.split('\n').includes(kv)); },
  };
}
