#!/bin/bash
# The shipped nginx example (drop-ins/nginx.service.d) on Debian's own nginx package, which the
# guest image holds, disabled: the service starts, serves, reloads and stops under it with no
# denial of its own work (ExecStartPre=, ExecReload= and ExecStop= included), what is served
# from the document root is audited, and a process of the unit is refused a write to /etc/ and
# a program other than nginx. Its unarmored twin is the same nginx before the drop-in is
# installed: the same write and exec succeed.
. ./lib.sh

example=/usr/share/doc/unitarmor/examples/drop-ins/nginx.service.d/armor.conf
cg=/sys/fs/cgroup/system.slice/nginx.service
# in_nginx CMD: runs the shell command CMD in a shell moved into nginx's cgroup, as the
# service's own processes are (CMD's builtins need no exec the example refuses).
in_nginx() { sh -c 'echo $$ >"$0/cgroup.procs" && eval "$1"' "$cg" "$1"; }
# get PATH: the status line of an HTTP GET of PATH on port 80.
get() {
  exec 3<>/dev/tcp/127.0.0.1/80 || return 1
  printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$1" >&3
  head -n 1 <&3 | tr -d '\r'
  exec 3<&-
}
served() { [ "$(get "$1")" = "HTTP/1.1 200 OK" ]; }
# nginx_lines PATTERN: nginx.service's journal lines matching PATTERN, since the start.
nginx_lines() { journalctl -u nginx.service --since "@$since" -o cat --no-pager | grep -- "$1"; }

check "Debian's nginx is in the guest" test -x /usr/sbin/nginx
check "the example drop-in is installed with the package" test -f "$example"
since=$(date +%s)

# --- the unarmored twin ---------------------------------------------------------------------
systemctl start nginx.service
check "nginx starts unarmored" systemctl is-active --quiet nginx.service
check "it serves Debian's default page" eventually served /
rm -f /etc/armor-example-twin
check "unarmored: a process of the unit writes under /etc/" in_nginx 'echo x >/etc/armor-example-twin'
check "unarmored: a process of the unit runs /bin/true" in_nginx 'exec /bin/true'

# --- under the example ------------------------------------------------------------------------
install -D -m 644 "$example" /etc/systemd/system/nginx.service.d/armor.conf
systemctl daemon-reload
check "nginx is armored with the example's rules" \
  wait_rules nginx.service "$(grep -c '^ArmorPolicy=' "$example")"
armored_at=$(date +%s)
sleep 1
check "nginx restarts under it (ExecStop=, ExecStartPre=, ExecStart=)" systemctl restart nginx.service
check "it is active" systemctl is-active --quiet nginx.service
check "it serves the default page" eventually served /
check "it reloads (ExecReload=)" systemctl reload nginx.service
check "it serves after the reload" eventually served /
check "what is served from the document root is audited in nginx's journal" \
  eventually sh -c "journalctl -u nginx.service --since @$armored_at -o cat | grep -q '^Audited read of /var/www/html/'"
rm -f /etc/armor-example
check_fails "armored: a process of the unit is refused a write under /etc/" \
  in_nginx 'echo x >/etc/armor-example'
check "the file was not made" test ! -e /etc/armor-example
check_fails "armored: a process of the unit is refused /bin/true" in_nginx 'exec /bin/true'
check "armored: it may run nginx" in_nginx 'exec /usr/sbin/nginx -v'
# The daemon logs a denial from the kernel's event, a moment after the refusal.
check "the refusals are in nginx's journal" eventually sh -c "
  journalctl -u nginx.service --since @$armored_at -o cat | grep -q '^Denied create of /etc/armor-example' &&
  journalctl -u nginx.service --since @$armored_at -o cat | grep -q '^Denied exec of /usr/bin/true'"
check "nginx stops under it" systemctl stop nginx.service
# A denial of the stop's own exec would be logged a moment after it (the daemon polls the
# kernel's events every half second at most): give it that, and a margin for emulation.
sleep 3
# Everything systemd ran for the service (its Exec*= lines) went through: nothing but the
# two refusals above was denied, and no step failed to execute.
own_work_denied() {
  nginx_lines '^Denied' | grep -v -e '^Denied create of /etc/armor-example' -e '^Denied exec of /usr/bin/true'
}
check_fails "no denial of the service's own work" own_work_denied
check_fails "no Exec*= step failed" nginx_lines 'Failed at step\|Failed to execute'
rm -f /etc/armor-example-twin
rm -rf /etc/systemd/system/nginx.service.d
systemctl daemon-reload
finish
