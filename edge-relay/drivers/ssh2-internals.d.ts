// The one ssh2 internal the ssh driver uses (breakRequest in ssh.ts): its packet writer.
declare module 'ssh2/lib/protocol/utils.js' {
  const utils: { sendPacket(proto: unknown, packet: Buffer): boolean };
  export default utils;
}
