// What a relay says about itself in its hello, for `cloudcons relays`: the cloudcons version (the
// package's, as `cloudcons --version` prints it), the OS (/etc/os-release's PRETTY_NAME where there
// is one, else the kernel's name and release) and the architecture (Node's: x64, arm64).
import fs from 'node:fs';
import os from 'node:os';
import pkg from '../package.json' with { type: 'json' };

export interface RelayAbout { version: string; os: string; arch: string }

export function relayAbout(osRelease = '/etc/os-release'): RelayAbout {
  return { version: pkg.version, os: osName(osRelease).slice(0, 128), arch: process.arch };
}

function osName(file: string): string {
  const kernel = `${os.type()} ${os.release()}`;
  let pretty: string | undefined;
  try {
    const m = /^PRETTY_NAME=(["']?)(.*)\1\s*$/m.exec(fs.readFileSync(file, 'utf8'));
    pretty = m?.[2]?.trim();
  } catch { /* no os-release (not Linux, or a minimal container) */ }
  return pretty ? `${pretty} (${kernel})` : kernel;
}
