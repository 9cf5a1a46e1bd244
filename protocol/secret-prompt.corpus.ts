// Password prompts as consoles really print them, byte for byte, with where each comes from, and
// lines that must not count as one. secret-prompt.test.ts feeds each one whole, split at every
// byte, byte by byte, with LF for CR LF and with terminal sequences after it.
//
// Sources. Checked against the programs' sources or message catalogues: sudo (plugins/sudoers/po/
// *.po, src/tgetpass.c for pwfeedback), Linux-PAM and shadow (the gettext catalogues of Debian/
// Ubuntu: `LANGUAGE=de gettext -d Linux-PAM 'Password: '`), OpenSSH (sshconnect2.c: password, key
// and keyboard-interactive "(%s@%s) %s", FIDO PIN), util-linux sulogin.c, systemd's
// ask-password-api.c (hint, bullets, backspaces), git's credential.c, Debian's cryptroot askpass,
// OpenSC's pkcs11-tool, zfs. The others (databases, openssl, gpg, kinit, GRUB, network and BMC
// CLIs) are as their manuals and public transcripts show them; a BMC's or switch's SSH server is
// reached through OpenSSH, whose prompt is then OpenSSH's.
// A string `out` is sent as UTF-8; a Buffer as it is (a Latin-1 console).

export interface Fixture {
  /** Where the bytes come from. */
  from: string;
  /** What the console prints, up to and including the prompt (or the line that is none). */
  out: string | Buffer;
}

const login = (host: string, user: string) => `\r\n\r\n${host} login: ${user}\r\nPassword: `;
const sudo = (prompt: string) => `alice@web01:~$ sudo -i\r\n${prompt}`;
const ESC = '\x1b';

export const PROMPTS: Fixture[] = [
  // sudo, su, passwd, login
  { from: 'sudo: [sudo] password for %p: ', out: sudo('[sudo] password for alice: ') },
  { from: 'sudo: a second try', out: 'alice@web01:~$ sudo -i\r\nSorry, try again.\r\n[sudo] password for alice: ' },
  { from: 'sudo 1.9.16+: the lecture "For security reasons, the password you type will not be visible."', out: sudo('\r\nFor security reasons, the password you type will not be visible.\r\n\r\n[sudo] password for alice: ') },
  { from: 'sudo: passprompt %p\'s password: (sudoers confstr)', out: sudo("alice's password: ") },
  { from: 'su (util-linux, pam_unix "Password: ")', out: 'alice@web01:~$ su -\r\nPassword: ' },
  { from: 'passwd (shadow + pam_unix): current', out: 'alice@web01:~$ passwd\r\nChanging password for alice.\r\nCurrent password: ' },
  { from: 'passwd: new', out: 'New password: ' },
  { from: 'passwd: retype', out: 'Retype new password: ' },
  { from: 'passwd: older pam_unix', out: 'Changing password for alice.\r\n(current) UNIX password: ' },
  { from: 'passwd: older pam_unix, new', out: 'Enter new UNIX password: ' },
  { from: 'login on a Linux box over IPMI SOL (agetty, login, pam_unix)', out: `\r\nUbuntu 24.04.1 LTS web01 ttyS1${login('web01', 'alice')}` },
  { from: 'login on FreeBSD (no space after the colon)', out: '\r\nFreeBSD/amd64 (bsd01) (ttyu0)\r\n\r\nlogin: root\r\nPassword:' },
  { from: 'sulogin (util-linux): systemd emergency mode', out: 'You are in emergency mode. After logging in, type "journalctl -xb" to view\r\nsystem logs, "systemctl reboot" to reboot, "systemctl default" or "exit"\r\nto boot into default mode.\r\nGive root password for maintenance\r\n(or press Control-D to continue): ' },
  { from: 'sulogin (util-linux): the one-line variant', out: 'Give root password for login: ' },
  { from: 'GRUB (normal/auth.c)', out: 'Enter username: \r\nroot\r\nEnter password: ' },
  // OpenSSH and keys
  { from: 'OpenSSH: password authentication "%s@%s\'s password: "', out: "alice@web01:~$ ssh bob@db01\r\nbob@db01's password: " },
  { from: 'OpenSSH: key file "Enter passphrase for key \'%.100s\': "', out: "Enter passphrase for key '/home/alice/.ssh/id_ed25519': " },
  { from: 'OpenSSH 8.5+: keyboard-interactive "(%s@%s) %s"', out: '(alice@bastion.example.com) Password: ' },
  { from: 'OpenSSH keyboard-interactive + pam_google_authenticator (an OTP: redacted, see README)', out: '(alice@bastion.example.com) Verification code: ' },
  { from: 'ssh-add "Enter passphrase for %s: "', out: 'Enter passphrase for /home/alice/.ssh/id_ed25519: ' },
  { from: 'ssh-keygen: new key', out: 'Enter file in which to save the key (/home/alice/.ssh/id_ed25519): \r\nEnter passphrase (empty for no passphrase): ' },
  { from: 'ssh-keygen: again', out: 'Enter same passphrase again: ' },
  { from: 'ssh-keygen -p', out: 'Enter old passphrase: ' },
  { from: 'OpenSSH FIDO key "Enter PIN for %s key %s: "', out: 'Enter PIN for ED25519-SK key /home/alice/.ssh/id_ed25519_sk: ' },
  { from: 'OpenSSH PKCS#11 "Enter PIN for \'%s\': "', out: "Enter PIN for 'PIV Card Holder pin (PIV_II)': " },
  { from: 'OpenSC pkcs11-tool', out: 'Logging in to "alice (PIV_II)".\r\nPlease enter User PIN: ' },
  { from: 'git over https (credential.c "%s for \'%s\': "): a URL with colons inside the prompt', out: "Password for 'https://alice@git.example.com': " },
  { from: 'git over https: a port, more colons', out: "Password for 'https://alice@git.example.com:8443': " },
  { from: 'AWS CLI assume-role with MFA: an ARN full of colons', out: 'Enter MFA code for arn:aws:iam::123456789012:mfa/alice: ' },
  { from: 'gh auth login', out: '? Paste your authentication token: ' },
  // Databases, crypto tools
  { from: 'mysql -p', out: 'alice@web01:~$ mysql -u root -p\r\nEnter password: ' },
  { from: 'psql', out: 'Password for user postgres: ' },
  { from: 'openssl: "Enter pass phrase for %s:" (no space)', out: 'Enter pass phrase for /etc/ssl/private/web01.key:' },
  { from: 'openssl req: new key', out: 'Enter PEM pass phrase:' },
  { from: 'openssl req: verify', out: 'Verifying - Enter PEM pass phrase:' },
  { from: 'gpg --pinentry-mode loopback', out: 'Enter passphrase: ' },
  { from: 'kinit', out: 'Password for alice@EXAMPLE.COM: ' },
  { from: 'cryptsetup open', out: 'Enter passphrase for /dev/sda2: ' },
  { from: 'Debian/Ubuntu initramfs cryptroot askpass', out: '\r\nPlease unlock disk sda2_crypt: ' },
  { from: 'zfs load-key', out: "Enter passphrase for 'rpool': " },
  { from: 'zfs create -o encryption=on: the confirmation names nothing', out: "Enter passphrase for 'tank/secure': \r\nEnter again: " },
  { from: 'systemd-ask-password (ask-password-api.c): highlight, message, grey hint, normal',
    out: `${ESC}[0;1;39m🔐 Please enter passphrase for disk root (luks-7f0cc063-e383-4244-b4cb-12e6c396947f): ${ESC}[0;38;5;245m(press TAB for no echo) ${ESC}[0m` },
  { from: 'systemd-ask-password on a serial console, a kernel message through its first words (a real transcript)',
    out: 'Please enter pas[    2.948528] scsi 1:0:0:0: CD-ROM            QEMU     QEMU DVD-ROM     2.5+ PQ: 0 ANSI: 5\r\nsphrase for disk disk-main-root (cryptroot): (press TAB for no echo) ' },
  { from: 'ZFS on root initramfs (systemd-ask-password)', out: 'Unlocking encrypted ZFS filesystems...\r\nEnter the password or press Ctrl-C to exit.\r\nEncrypted ZFS password for rpool/ROOT: (press TAB for no echo) ' },
  { from: 'ipmitool -a', out: 'alice@web01:~$ ipmitool -I lanplus -H 10.0.0.20 -U root -a sol activate\r\nPassword: ' },
  // BMCs
  { from: 'iDRAC serial port login', out: login('idrac-7XK2Q13', 'root') },
  { from: 'iDRAC SSH (OpenSSH client)', out: "root@10.0.0.20's password: " },
  { from: 'iLO 5 SSH (OpenSSH client)', out: "Administrator@10.0.0.21's password: " },
  { from: 'Supermicro BMC SSH (OpenSSH client)', out: "ADMIN@10.0.0.22's password: " },
  { from: 'OpenBMC serial console', out: `\r\nPhosphor OpenBMC (Phosphor OpenBMC Project Reference Distro) 2.14.0 obmc ttyS4${login('obmc', 'root')}` },
  // Network CLIs
  { from: 'Cisco IOS: line password', out: '\r\n\r\nUser Access Verification\r\n\r\nPassword: ' },
  { from: 'Cisco IOS: enable', out: 'Router>enable\r\nPassword: ' },
  { from: 'Cisco IOS: AAA login', out: '\r\n\r\nUser Access Verification\r\n\r\nUsername: admin\r\nPassword: ' },
  { from: 'Cisco IOS setup dialog', out: '  Enter enable secret: ' },
  { from: 'Cisco ASA enable', out: 'ciscoasa> enable\r\nPassword: ' },
  { from: 'Cisco NX-OS', out: login('switch', 'admin') },
  { from: 'Junos console (no space after the colon)', out: '\r\nAmnesiac (ttyu0)\r\n\r\nlogin: root\r\nPassword:' },
  { from: 'Junos over SSH keyboard-interactive', out: '(root@mx1) Password:' },
  { from: 'Arista EOS', out: login('localhost', 'admin') },
  { from: 'Aruba AOS-CX', out: login('switch', 'admin') },
  { from: 'HPE/Aruba AOS-S (ProCurve)', out: '\r\nUsername: manager\r\nPassword: ' },
  { from: 'NVIDIA/Mellanox Onyx', out: login('switch-1a2b3c', 'admin') },
  { from: 'Huawei VRP (no spaces)', out: '\r\nLogin authentication\r\n\r\nUsername:admin\r\nPassword:' },
  { from: 'MikroTik RouterOS', out: '\r\nMikroTik Login: admin\r\nPassword: ' },
  { from: 'FortiGate', out: login('FGT60F', 'admin') },
  // Locales: Linux-PAM "Password: ", shadow, sudoers "[sudo] password for %p: "
  { from: 'de: Linux-PAM', out: 'Passwort: ' },
  { from: 'de: sudoers', out: sudo('[sudo] Passwort für alice: ') },
  { from: 'de: Linux-PAM passwd', out: 'Geben Sie das neue Passwort erneut ein: ' },
  { from: 'fr: Linux-PAM (space before the colon)', out: 'Mot de passe : ' },
  { from: 'fr: shadow (no space after the colon)', out: 'Nouveau mot de passe :' },
  { from: 'fr: sudoers', out: sudo('[sudo] Mot de passe de alice : ') },
  { from: 'fr: Linux-PAM passwd', out: 'Retapez le nouveau mot de passe : ' },
  { from: 'es: Linux-PAM', out: 'Contraseña: ' },
  { from: 'es: sudoers', out: sudo('[sudo] contraseña para alice: ') },
  { from: 'es: a Latin-1 console', out: Buffer.from('\r\nContraseña: ', 'latin1') },
  { from: 'pt_BR: Linux-PAM', out: 'Senha: ' },
  { from: 'pt: sudoers', out: sudo('[sudo] senha para alice: ') },
  { from: 'pt: Linux-PAM', out: 'Palavra-passe: ' },
  { from: 'it: Linux-PAM', out: 'Nuova password: ' },
  { from: 'it: sudoers', out: sudo('[sudo] password di alice: ') },
  { from: 'nl: Linux-PAM', out: 'Wachtwoord: ' },
  { from: 'nl: sudoers', out: sudo('[sudo] wachtwoord voor alice: ') },
  { from: 'pl: Linux-PAM', out: 'Hasło: ' },
  { from: 'pl: sudoers', out: sudo('[sudo] hasło użytkownika alice: ') },
  { from: 'pl: Linux-PAM passwd', out: 'Proszę ponownie wpisać nowe hasło: ' },
  { from: 'sv: Linux-PAM', out: 'Lösenord: ' },
  { from: 'sv: sudoers', out: sudo('[sudo] lösenord för alice: ') },
  { from: 'cs: Linux-PAM', out: 'Heslo: ' },
  { from: 'cs: sudoers', out: sudo('[sudo] heslo pro alice: ') },
  { from: 'sk: sudoers', out: sudo('[sudo] heslo pre používateľa alice: ') },
  { from: 'da: sudoers', out: sudo('[sudo] adgangskode for alice: ') },
  { from: 'nb: Linux-PAM', out: 'Passord: ' },
  { from: 'fi: sudoers', out: sudo('[sudo] alice-käyttäjän salasana: ') },
  { from: 'hu: sudoers', out: sudo('[sudo] alice jelszava: ') },
  { from: 'ro: Linux-PAM', out: 'Parolă: ' },
  { from: 'tr: Linux-PAM', out: 'Parola: ' },
  { from: 'tr: Linux-PAM passwd', out: 'Yeni parolayı tekrar girin: ' },
  { from: 'ru: Linux-PAM', out: 'Пароль: ' },
  { from: 'ru: sudoers', out: sudo('[sudo] пароль для alice: ') },
  { from: 'ru: Linux-PAM passwd', out: 'Повторите ввод нового пароля: ' },
  { from: 'uk: sudoers', out: sudo('[sudo] пароль до alice: ') },
  { from: 'sr: sudoers', out: sudo('[судо] лозинка за корисника alice: ') },
  { from: 'hr: sudoers', out: sudo('[sudo] lozinka za alice: ') },
  { from: 'ja: Linux-PAM (no space after the colon)', out: 'パスワード:' },
  { from: 'ja: sudoers', out: sudo('[sudo] alice のパスワード:') },
  { from: 'zh_CN: Linux-PAM (full-width colon)', out: '密码： ' },
  { from: 'zh_CN: sudoers', out: sudo('[sudo] alice 的密码：') },
  { from: 'zh_TW: sudoers', out: sudo('[sudo] alice 的密碼：') },
  { from: 'ko: Linux-PAM', out: '암호: ' },
  { from: 'ko: sudoers', out: sudo('[sudo] alice 암호: ') },
  { from: 'vi: Linux-PAM (space before the colon)', out: 'Mật khẩu : ' },
  { from: 'id: Linux-PAM', out: 'Sandi:' },
  { from: 'id: sudoers', out: sudo('[sudo] kata sandi untuk alice: ') },
  { from: 'ca: sudoers', out: sudo('[sudo] contrasenya per a alice: ') },
  { from: 'eo: sudoers', out: sudo('[sudo] pasvorto por alice: ') },
  { from: 'fa: sudoers', out: sudo('[sudo] گذرواژهٔ alice: ') },
  { from: 'ka: sudoers', out: sudo('[sudo] პაროლი მომხმარებლისთვის alice: ') },
  // What the issue named
  { from: 'a prompt followed by ESC ( B ESC [ m (tput sgr0)', out: `Password: ${ESC}(B${ESC}[m` },
  { from: 'a bold prompt', out: `\r\n${ESC}[1mPassword:${ESC}[0m ` },
  { from: 'a prompt followed by a cursor show', out: `Password: ${ESC}[?25h` },
  { from: 'a prompt followed by an OSC window title (with a colon of its own)', out: `[sudo] password for alice: ${ESC}]0;alice@web01: ~${'\x07'}` },
  { from: 'an OSC title ended by ST before the prompt', out: `${ESC}]2;sudo${ESC}\\[sudo] password for alice: ` },
  { from: 'a prompt redrawn after CR and an erase', out: `Checking...\r${ESC}[KPassword: ` },
  { from: 'a long key path (ssh-add does not shorten it): 700 characters between the word and the colon',
    out: `Enter passphrase for /home/alice/${'keys-of-the-infrastructure-team/'.repeat(21)}id_ed25519: ` },
  { from: 'a long git URL', out: `Password for 'https://alice@git.example.com/${'group/'.repeat(60)}repo.git': ` },
];

export const NOT_PROMPTS: Fixture[] = [
  { from: 'passwd: done (shadow)', out: 'passwd: password updated successfully' },
  { from: 'passwd: done, then the shell', out: 'Retype new password: \r\npasswd: password updated successfully\r\nalice@web01:~$ ' },
  { from: 'de: passwd done (shadow)', out: 'passwd: Passwort erfolgreich geändert' },
  { from: 'ja: passwd done (shadow)', out: 'passwd: パスワードは正しく更新されました' },
  { from: 'shadow: expiry warning', out: 'Your password will expire in 5 days.' },
  { from: 'pam_unix: expiry warning', out: 'Warning: your password will expire in 5 days' },
  { from: 'login: last login', out: 'Last login: Tue Mar  4 10:12:01 2025 from 10.0.0.7' },
  { from: 'shadow: changed', out: 'Password changed.' },
  { from: 'passwd: starting', out: 'Changing password for alice.' },
  { from: 'a prompt, then the newline of Enter', out: 'Password: \r\n' },
  { from: 'a prompt, then the newline of Enter (LF)', out: 'Password:\n' },
  { from: 'a prompt, Enter, then the shell', out: '[sudo] password for alice: \r\nroot@web01:~# ' },
  { from: 'git: the failure after the prompt', out: "Password for 'https://alice@git.example.com': \r\nremote: Invalid username or password.\r\nfatal: Authentication failed for 'https://git.example.com/x.git/'" },
  { from: 'git: the user name question', out: "Username for 'https://git.example.com': " },
  { from: 'shell prompt', out: 'alice@web01:~$ ' },
  { from: 'root shell prompt', out: '[root@web01 ~]# ' },
  { from: 'shell prompt on a host named for passwords', out: 'root@password-vault:~# ' },
  { from: 'Cisco exec and enable prompts', out: 'Router>enable\r\nPassword: \r\nRouter#' },
  { from: 'Junos operational prompt', out: 'root@mx1> ' },
  { from: 'PowerShell', out: 'PS C:\\Users\\alice> ' },
  { from: 'login prompt', out: '\r\n\r\nweb01 login: ' },
  { from: 'login prompt of a host whose name is a secret word (the audit keeps the user typed)', out: '\r\n\r\npin-gw01 login: ' },
  { from: 'login prompt of a host named secret', out: 'secret-vault login: ' },
  { from: 'Cisco AAA user name', out: 'User Access Verification\r\n\r\nUsername: ' },
  { from: 'PuTTY', out: 'login as: ' },
  { from: 'login: refused', out: 'Password: \r\nLogin incorrect\r\nweb01 login: ' },
  { from: 'a login prompt right after a password prompt (a console that asks again at once)', out: 'Password: \r\nweb01 login: ' },
  { from: 'the line after a question that follows a password prompt', out: "Enter passphrase for 'tank/secure': \r\nEnter again: \r\nDone: " },
  { from: 'sudo: refused', out: 'Sorry, try again.' },
  { from: 'sulogin with a locked root: Enter is all it takes', out: 'Press Enter for maintenance\r\n(or press Control-D to continue): ' },
  { from: 'ssh-keygen: the file question', out: 'Enter file in which to save the key (/home/alice/.ssh/id_ed25519): ' },
  { from: 'ssh: the host key question', out: 'Are you sure you want to continue connecting (yes/no/[fingerprint])? ' },
  { from: 'chage -l: a colon mid-line, then the value', out: 'Last password change\t\t\t\t\t: Jan 01, 2025' },
  { from: 'chage -l', out: 'Password expires\t\t\t\t\t: never' },
  { from: 'a login banner mentioning passwords', out: 'WARNING: Unauthorized access prohibited. Passwords are audited.' },
  { from: 'an SSH banner', out: 'Password authentication is disabled; use your SSH key.' },
  { from: 'grep output', out: '/etc/ssh/sshd_config:PasswordAuthentication no' },
  { from: 'a command line being typed', out: 'alice@web01:~$ grep -r password /etc/' },
  { from: 'a command line', out: 'echo password: done' },
  { from: 'text mentioning passwords', out: 'Old passwords are kept here' },
  { from: 'ls in colour', out: `${ESC}[01;34mpassword-store${ESC}[0m  notes.txt` },
  { from: 'progress', out: 'Downloading password-store 45%' },
  { from: 'mysql', out: 'mysql> SELECT password FROM users;' },
  { from: 'a kernel message', out: '[    2.948528] scsi 1:0:0:0: CD-ROM            QEMU     QEMU DVD-ROM     2.5+ PQ: 0 ANSI: 5' },
  { from: 'a window title says Password:, the line does not', out: `${ESC}]0;Password: ${'\x07'}alice@web01:~$ ` },
  { from: 'a prompt overwritten after CR', out: 'Password: \rChecking credentials...' },
  { from: 'a prompt erased by ESC [ 2 K and replaced', out: `Password: ${ESC}[2K\rDone.` },
  { from: 'a console that echoes the password in clear (it is in the output log; redacting input would not help)', out: 'Password: hunter2' },
  { from: 'a colon in a time', out: 'Password last changed at 10:30' },
];

/** A console's echo, key by key, at a prompt, and then Enter. */
export interface EchoFixture {
  from: string;
  prompt: string;
  /** What the console prints per key typed ('' for nothing). */
  keys: string[];
  /** What it prints for Enter. */
  enter: string;
}

const BULLET = '•';
const PRESS_TAB = '(press TAB for no echo) ';
const systemdPrompt = `${ESC}[0;1;39m🔐 Please enter passphrase for disk root: ${ESC}[0;38;5;245m${PRESS_TAB}${ESC}[0m`;

export const ECHOES: EchoFixture[] = [
  { from: 'a console that echoes nothing', prompt: 'Password: ', keys: ['', '', ''], enter: '\r\n' },
  { from: 'sudo with pwfeedback (tgetpass.c: "*" per key; erase is "\\b \\b" and ESC [ K)', prompt: '[sudo] password for alice: ',
    keys: ['*', '*', '*', `\b \b${ESC}[K`, '*', '*'], enter: '\r\n' },
  { from: 'sudo with pwfeedback: kill the line (^U)', prompt: '[sudo] password for alice: ', keys: ['*', '*', `\b \b\b \b${ESC}[K`, '*'], enter: '\r\n' },
  { from: 'systemd-ask-password: the first key erases the hint, then a bullet per key', prompt: systemdPrompt,
    keys: ['\b \b'.repeat(PRESS_TAB.length) + BULLET, BULLET, BULLET, '\b \b', BULLET], enter: '\r\n' },
  { from: 'systemd-ask-password: TAB erases the bullets and goes silent', prompt: systemdPrompt,
    keys: ['\b \b'.repeat(PRESS_TAB.length) + BULLET, BULLET, '\b \b\b \b(no echo) ', '', ''], enter: '\r\n' },
  { from: 'an embedded CLI that echoes "*" per key', prompt: '\r\nPassword: ', keys: ['*', '*', '*', '*'], enter: '\r\n' },
  { from: 'a prompt library that redraws the line per key (erase line, column 1, prompt, masks)', prompt: '? Enter your password: ',
    keys: [`${ESC}[2K${ESC}[G? Enter your password: *`, `${ESC}[2K${ESC}[G? Enter your password: **`, `${ESC}[2K${ESC}[G? Enter your password: ***`], enter: '\r\n' },
  { from: 'GNOME-style big bullets', prompt: 'Password: ', keys: ['●', '●', '●'], enter: '\r\n' },
];
