#!/usr/bin/env bash
# The Debian package, installed for real on this Debian machine: builds the shipped binary
# (`--profile dist`, or $PACKAGE_PROFILE) and
# the .deb (cargo-deb), installs it with dpkg -i, checks what it put where (binary, unit,
# /etc/hearth/config.toml, the hearth account, /var/lib/hearth), checks the unit with
# `systemd-analyze verify`, then starts the installed binary the way the unit does (same user,
# group, working directory, umask, command line, an empty environment) since systemd is not
# PID 1 here, and asks it for /healthz, a sign-up and an online backup, stops it with SIGTERM
# (exit 0), and purges the package again. Needs root; one run at a time per machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "packaging/test-deb.sh: skipped: installing a package needs root"
  exit 0
fi
exec 9>/tmp/hearth-package-test.lock
flock 9

marker=/tmp/hearth-package-test.installed
if dpkg-query -W -f='${Status}' hearth 2>/dev/null | grep -q 'ok installed'; then
  if [ ! -e "$marker" ]; then
    echo "error: a hearth package is installed on this machine and this test would replace it;" \
      "remove it first (apt purge hearth)" >&2
    exit 1
  fi
fi

fail() { echo "error: $*" >&2; exit 1; }
expect() { # expect WHAT ACTUAL WANTED
  [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [ -e "$marker" ]; then
    dpkg --purge hearth >/dev/null 2>&1 || true
    rm -rf /var/lib/hearth /etc/hearth
    getent passwd hearth >/dev/null && userdel hearth
    getent group hearth >/dev/null && groupdel hearth
    rm -f "$marker"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# What ships is `dist`; scripts/test sets PACKAGE_PROFILE=release so that this reuses the
# build scripts/readme-run made (the profiles differ only in LTO and codegen units).
profile="${PACKAGE_PROFILE:-dist}"
cargo build --profile "$profile" --locked --bin hearth
cargo deb --no-build --profile "$profile" --locked --output target/debian/ >"$work/cargo-deb.log" 2>&1 ||
  { cat "$work/cargo-deb.log" >&2; fail "cargo deb failed"; }
deb=$(tail -1 "$work/cargo-deb.log")
[ -f "$deb" ] || fail "cargo deb did not name a package: $deb"
echo "package: $deb ($(stat -c %s "$deb") bytes)"

touch "$marker"
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i failed"; }

# What the package installed.
unit=$(dpkg -L hearth | grep '/systemd/system/hearth.service$') || fail "no unit installed"
[ -x /usr/bin/hearth ] || fail "no /usr/bin/hearth"
getent passwd hearth >/dev/null || fail "no hearth account"
expect "/var/lib/hearth" "$(stat -c '%U:%G %a' /var/lib/hearth)" "hearth:hearth 750"
expect "/etc/hearth/config.toml" "$(stat -c '%U:%G %a' /etc/hearth/config.toml)" "root:hearth 640"
cmp -s /etc/hearth/config.toml packaging/hearth.toml || fail "the installed config differs"
dpkg-query -W -f='${Conffiles}\n' hearth | grep -q /etc/hearth/config.toml ||
  fail "/etc/hearth/config.toml is not a conffile (an upgrade would overwrite edits)"
# The glibc the binary needs is no newer than the package's Depends says.
needs=$(readelf -V /usr/bin/hearth | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
promised=$(dpkg-query -W -f='${Depends}' hearth | sed -n 's/.*libc6 (>= \([0-9.]*\)).*/\1/p')
[ "$(printf '%s\n%s\n' "${needs#GLIBC_}" "$promised" | sort -V | tail -1)" = "$promised" ] ||
  fail "the binary needs $needs but the package promises libc6 >= $promised"
if command -v systemd-analyze >/dev/null; then
  verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
  [ -z "$verify" ] || fail "systemd-analyze verify: $verify"
  echo "systemd-analyze verify $unit: clean"
else
  echo "systemd-analyze not found: the unit was not verified"
fi

# Start it as the unit would: its User, Group, WorkingDirectory, UMask and ExecStart, with an
# empty environment. Only the port differs (HEARTH_BIND), so the test cannot clash with
# anything listening on 7878.
field() { sed -n "s/^$1=//p" "$unit"; }
user=$(field User)
group=$(field Group)
workdir=$(field WorkingDirectory)
umask_value=$(field UMask)
exec_start=$(field ExecStart)
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HEARTH_BIND=127.0.0.1:0 \
  setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs -- \
  sh -c "umask $umask_value && cd $workdir && exec $exec_start" >"$work/server.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 100); do
  url=$(sed -n 's/.*hearth is serving on \(http[^ ]*\).*/\1/p' "$work/server.log")
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; fail "the server exited"; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/server.log" >&2; fail "the server did not start"; }
expect "/healthz" "$(curl -fsS "$url/healthz")" "ok"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/api/auth/register" \
  -H 'content-type: application/json' \
  -d '{"username":"packaged","password":"correct horse battery"}')
expect "sign-up" "$status" "201"
expect "control socket" "$(stat -c '%U %a' /var/lib/hearth/hearth.sock)" "hearth 600"
hearth backup "$work/packaged.hbk" --config /etc/hearth/config.toml 2>"$work/backup.log" ||
  { cat "$work/backup.log" >&2; fail "backup of the running service"; }
grep -q "from the running server" "$work/backup.log" || fail "$(cat "$work/backup.log")"
kill -TERM "$server_pid"
code=0
wait "$server_pid" || code=$?
server_pid=""
expect "exit status after SIGTERM" "$code" "0"
# The offline tools run as the service account, as docs/operations.md says.
listed=$(setpriv --reuid="$user" --regid="$group" --init-groups -- \
  hearth user list --config /etc/hearth/config.toml)
# The bundled bots' accounts are listed too; the person's must be there.
printf '%s\n' "$listed" | grep -q "^packaged[[:space:]]" || fail "user list: $listed"
echo "package test passed: installed, served $url as $user, backed up, stopped with exit 0"
