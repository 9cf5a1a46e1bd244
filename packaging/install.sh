#!/bin/sh
# Installs the cloudcons release folder this script is in (cloudcons-<version>-linux-<arch>/):
#   /opt/cloudcons/<version>/          the folder's contents (older versions are kept)
#   /opt/cloudcons/current -> <version> switched atomically (a new link renamed over the old one)
#   /usr/local/bin/cloudcons -> ../../../opt/cloudcons/current/bin/cloudcons
#   /etc/cloudcons/relay.yaml, relay.env, cloud.env   only when missing: your edits stay
#   /etc/systemd/system/cloudcons-{relay,cloud}.service   always (the version's own units)
#   system user cloudcons, in group dialout (serial ports)
# Run it again for the same version: nothing changes. Run a newer folder's install.sh, then
# restart the service (or --restart): that is the upgrade; the spool in /var/lib/cloudcons stays.
# `install.sh --rollback VERSION` points `current` back. See --help.
set -eu

PROG=install.sh
die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

usage() {
  cat <<'EOF'
Usage: sudo ./install.sh [--restart] [--no-user] [--root DIR]
       sudo ./install.sh --rollback VERSION [--restart] [--root DIR]
       ./install.sh --list [--root DIR]

Installs this cloudcons release to /opt/cloudcons/VERSION, points /opt/cloudcons/current at it,
links /usr/local/bin/cloudcons, writes /etc/cloudcons/relay.yaml, relay.env and cloud.env when
missing, installs the systemd units cloudcons-relay.service and cloudcons-cloud.service and
creates the system user cloudcons (group dialout). Safe to run again.

  --restart           afterwards restart the units that are running (systemctl try-restart)
  --rollback VERSION  point /opt/cloudcons/current back at an installed VERSION (and put its
                      units back); then restart the relay (or give --restart)
  --list              list the installed versions; the current one is marked with *
  --no-user           do not create the cloudcons user (you manage it; it must be in dialout)
  --root DIR          install under DIR instead of / (a staging tree, tests): no user is
                      created, systemctl is not run
  -h, --help          this help

First install:
  sudo ./install.sh
  sudo install -m 0600 /dev/stdin /etc/cloudcons/relay-token   # paste the relay token, Ctrl-D
  sudoedit /etc/cloudcons/relay.env /etc/cloudcons/relay.yaml  # CLOUDCONS_URL, the consoles
  sudo systemctl enable --now cloudcons-relay
Upgrade: unpack the newer release, run its install.sh --restart. Rollback:
  sudo /opt/cloudcons/current/install.sh --rollback OLDVERSION --restart
Old versions stay in /opt/cloudcons; remove one you no longer need with
  sudo rm -rf /opt/cloudcons/OLDVERSION   (never the one `current` points at)
EOF
}

ROOT=/
MAKE_USER=yes
RESTART=no
ROLLBACK=
LIST=no
while [ $# -gt 0 ]; do
  case $1 in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#--root=}; shift ;;
    --rollback) [ $# -ge 2 ] || die "--rollback needs a version (--list shows them)"; ROLLBACK=$2; shift 2 ;;
    --rollback=*) ROLLBACK=${1#--rollback=}; shift ;;
    --no-user) MAKE_USER=no; shift ;;
    --restart) RESTART=yes; shift ;;
    --list) LIST=yes; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

# R is prefixed to every installed path: empty for the real system.
case $ROOT in
  /) R= ;;
  '') die "--root needs a directory" ;;
  *) R=$(mkdir -p "$ROOT" && cd "$ROOT" && pwd -P) || die "cannot use --root $ROOT" ;;
esac
[ "$R" = / ] && R=
OPT=$R/opt/cloudcons
BIN=$R/usr/local/bin
ETC=$R/etc/cloudcons
UNITS=$R/etc/systemd/system
# Relative, so the link works in a --root tree too.
BIN_TARGET=../../../opt/cloudcons/current/bin/cloudcons

valid_version() { case $1 in ''|*/*|.*|*[!A-Za-z0-9._+-]*) return 1 ;; esac; return 0; }

# Replaces link $2 by a symlink to $1 in one rename, so a reader never finds it missing
# (GNU mv -T; without it, ln -sfn, which has a short window without the link).
switch_link() {
  tmp="$(dirname "$2")/.$(basename "$2").new.$$"
  rm -f "$tmp"
  ln -s "$1" "$tmp"
  if ! mv -T -f "$tmp" "$2" 2>/dev/null; then rm -f "$tmp"; ln -sfn "$1" "$2"; fi
}

current_version() { if [ -L "$OPT/current" ]; then readlink "$OPT/current"; fi; }

systemd_running() { [ -z "$R" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

install_units() { # from release folder $1; systemd reloads them when one changed
  mkdir -p "$UNITS"
  changed=no
  for u in cloudcons-relay.service cloudcons-cloud.service; do
    [ -f "$1/share/systemd/$u" ] || die "$1/share/systemd/$u is missing: this release folder is incomplete"
    cmp -s "$1/share/systemd/$u" "$UNITS/$u" && continue
    cp "$1/share/systemd/$u" "$UNITS/.$u.new.$$"
    chmod 0644 "$UNITS/.$u.new.$$"
    mv -f "$UNITS/.$u.new.$$" "$UNITS/$u"
    say "installed $UNITS/$u"
    changed=yes
  done
  if [ "$changed" = yes ] && systemd_running; then systemctl daemon-reload; fi
}

restart_or_say() {
  if [ "$RESTART" = yes ] && systemd_running; then
    systemctl try-restart cloudcons-relay.service cloudcons-cloud.service
    say "restarted the running cloudcons units (journalctl -u cloudcons-relay shows the relay's log)"
  else
    say "now restart what runs: sudo systemctl try-restart cloudcons-relay cloudcons-cloud"
  fi
}

need_root() { [ -n "$R" ] || [ "$(id -u)" = 0 ] || die "run as root (sudo $0 $*), or give --root DIR to install into a staging tree"; }

if [ "$LIST" = yes ]; then
  cur=$(current_version)
  [ -d "$OPT" ] || { say "no cloudcons installed in $OPT"; exit 0; }
  for d in "$OPT"/*/; do
    [ -x "${d}bin/cloudcons" ] || continue
    v=$(basename "$d")
    [ "$v" = current ] && continue
    if [ "$v" = "$cur" ]; then say "* $v"; else say "  $v"; fi
  done
  exit 0
fi

if [ -n "$ROLLBACK" ]; then
  need_root --rollback "$ROLLBACK"
  valid_version "$ROLLBACK" || die "--rollback $ROLLBACK: not a version (--list shows the installed ones)"
  [ -x "$OPT/$ROLLBACK/bin/cloudcons" ] || die "version $ROLLBACK is not installed in $OPT (--list shows the installed ones)"
  was=$(current_version)
  switch_link "$ROLLBACK" "$OPT/current"
  install_units "$OPT/$ROLLBACK"
  say "cloudcons: current is now $ROLLBACK (was ${was:-none})"
  restart_or_say
  exit 0
fi

need_root
HERE=$(cd "$(dirname "$0")" && pwd -P)
[ -f "$HERE/VERSION" ] || die "$HERE/VERSION is missing: run the install.sh inside an unpacked cloudcons-<version>-linux-<arch> folder"
VERSION=$(head -n 1 "$HERE/VERSION")
valid_version "$VERSION" || die "$HERE/VERSION holds '$VERSION', not a version"
[ -x "$HERE/bin/cloudcons" ] || die "$HERE/bin/cloudcons is missing or not executable: this release folder is incomplete"
# The release's launcher checks the machine's architecture against the folder's: before any change.
"$HERE/bin/cloudcons" --version >/dev/null || die "$HERE/bin/cloudcons does not run on this machine (see the line above); nothing was changed"

# 1. The version's folder: copied aside, then renamed into place.
mkdir -p "$OPT"
DEST=$OPT/$VERSION
if [ -d "$DEST" ] && [ "$(cd "$DEST" && pwd -P)" = "$HERE" ]; then
  say "cloudcons $VERSION: running from $DEST itself"
elif [ -d "$DEST" ] && diff -r -q "$HERE" "$DEST" >/dev/null 2>&1; then
  say "cloudcons $VERSION: already in $DEST, unchanged"
else
  NEW=$OPT/.$VERSION.new.$$
  rm -rf "$NEW"
  trap 'rm -rf "$NEW"' EXIT
  cp -R "$HERE" "$NEW"
  chmod -R u+rwX,go+rX,go-w "$NEW"
  if [ -d "$DEST" ]; then
    # Same version, other contents (a rebuilt release): the old copy goes after the new is in.
    OLD=$OPT/.$VERSION.old.$$
    mv "$DEST" "$OLD"
    mv "$NEW" "$DEST"
    rm -rf "$OLD"
    say "cloudcons $VERSION: replaced $DEST (its contents had changed)"
  else
    mv "$NEW" "$DEST"
    say "cloudcons $VERSION: installed to $DEST"
  fi
  trap - EXIT
fi

# 2. current, and the command on PATH.
was=$(current_version)
switch_link "$VERSION" "$OPT/current"
mkdir -p "$BIN"
if [ -e "$BIN/cloudcons" ] || [ -L "$BIN/cloudcons" ]; then
  old=$(readlink "$BIN/cloudcons" || echo "a file")
  [ "$old" = "$BIN_TARGET" ] || say "replacing $BIN/cloudcons (was: $old)"
fi
switch_link "$BIN_TARGET" "$BIN/cloudcons"

# 3. The system user: in dialout for the serial ports.
USER_NOTE=
if [ -n "$R" ]; then
  USER_NOTE="--root: no system user made; on the box: useradd --system --user-group --groups dialout --home-dir /var/lib/cloudcons --no-create-home --shell /usr/sbin/nologin cloudcons"
elif [ "$MAKE_USER" = yes ]; then
  if ! getent group dialout >/dev/null 2>&1; then
    groupadd --system dialout || die "cannot create group dialout (SupplementaryGroups=dialout needs it)"
    say "created group dialout: check that your serial ports (ls -l /dev/ttyUSB0) belong to it"
  fi
  if id cloudcons >/dev/null 2>&1; then
    case " $(id -nG cloudcons) " in
      *" dialout "*) ;;
      *) usermod -a -G dialout cloudcons; say "added user cloudcons to group dialout" ;;
    esac
  else
    command -v useradd >/dev/null 2>&1 || die "useradd not found: create a system user cloudcons in group dialout yourself, then run again with --no-user"
    nologin=/usr/sbin/nologin; [ -x "$nologin" ] || nologin=/sbin/nologin
    useradd --system --user-group --groups dialout --home-dir /var/lib/cloudcons --no-create-home --shell "$nologin" cloudcons
    say "created system user cloudcons (groups: cloudcons, dialout)"
  fi
fi

# 4. Configuration, only where missing. relay.yaml may hold console passwords: root and the
# cloudcons group read it (systemd reads the token file itself, as root).
mkdir -p "$ETC"
chmod 0755 "$ETC"
put_config() { # name, mode, then the content on stdin
  if [ -e "$ETC/$1" ]; then say "kept $ETC/$1"; cat >/dev/null; return; fi
  cat >"$ETC/.$1.new.$$"
  chmod "$2" "$ETC/.$1.new.$$"
  if [ -z "$R" ] && getent group cloudcons >/dev/null 2>&1; then chgrp cloudcons "$ETC/.$1.new.$$"; fi
  mv "$ETC/.$1.new.$$" "$ETC/$1"
  say "wrote $ETC/$1"
}
[ -f "$HERE/share/examples/relay.yaml" ] || die "$HERE/share/examples/relay.yaml is missing: this release folder is incomplete"
put_config relay.yaml 0640 <"$HERE/share/examples/relay.yaml"
put_config relay.env 0640 <<'EOF'
# Environment of cloudcons-relay.service (systemctl restart cloudcons-relay after a change).
# The cloud this relay sends its consoles to:
#CLOUDCONS_URL=https://cloud.example:7420
# More `cloudcons relay` flags, e.g. a self-signed cloud's certificate pin:
#CLOUDCONS_RELAY_OPTS=--fingerprint SHA256:...
EOF
put_config cloud.env 0640 <<'EOF'
# Environment of cloudcons-cloud.service, the embedded cloud (default: 127.0.0.1:7420, plain HTTP).
# Flags for `cloudcons cloud`, e.g. to take relays from other machines over TLS:
#CLOUDCONS_CLOUD_OPTS=--host 0.0.0.0 --tls-self-signed
EOF

# 5. The units.
install_units "$HERE"

say "cloudcons $VERSION is current (was ${was:-none}); $BIN/cloudcons runs it"
[ -z "$USER_NOTE" ] || say "$USER_NOTE"
if [ -n "$was" ] && [ "$was" != "$VERSION" ]; then
  restart_or_say
  say "rollback: sudo $OPT/current/install.sh --rollback $was --restart"
elif [ -z "$was" ]; then
  say "next: put the relay token in $ETC/relay-token (mode 0600), CLOUDCONS_URL in $ETC/relay.env, consoles in $ETC/relay.yaml;"
  say "      then: sudo systemctl enable --now cloudcons-relay; journalctl -u cloudcons-relay shows its log"
fi
