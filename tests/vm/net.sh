#!/bin/bash
# `net`, `connect tcp:/udp:` and `bind` rules (issue 12): a root service is refused a socket
# family, a connect or a bind with EACCES, and the denial is in `journalctl -u UNIT` with its
# address, port, protocol or family; an unarmored twin (the same unit, no drop-in) does the
# same things. Deny, allow-list, audit, ArmorMode=audit, networks, port ranges, and the other
# ways to reach a port: an IPv6 socket to an IPv4-mapped address, MPTCP, a datagram sent with no
# connect(), TCP Fast Open, listen() with no bind(). Run in the guest by tests/vm/run (through
# suite.sh).
. ./lib.sh

d=/var/lib/armortest-net
mkdir -p "$d" /run/armortest-net
cp ./netprobe "$d/netprobe"
# Listeners outside any armor: 127.0.0.1 and ::1, ports 2525 and 5432; 127.0.0.1:2526.
systemd-run --unit armor-net-listener.service "$d/netprobe" serve \
  127.0.0.1 2525 ::1 2525 127.0.0.1 5432 ::1 5432 127.0.0.1 2526 >/dev/null

cat >"$d/try" <<'EOF'
#!/bin/sh
# try NAME: one line per attempt in /run/armortest-net/NAME.out: "ATTEMPT RESULT", RESULT being
# ok or the errno name.
p=/var/lib/armortest-net/netprobe
out=/run/armortest-net/$1.out
: >"$out"
attempt() {
  name=$1; shift
  if r=$("$@" 2>&1); then echo "$name ok"; else echo "$name $(echo "$r" | tail -n 1)"; fi >>"$out"
}
attempt packet $p socket 17 3
attempt raw-ip $p socket 2 3 1
attempt inet6-dgram $p socket 10 2
attempt tcp4-2525 $p connect tcp 127.0.0.1 2525
attempt tcp6-2525 $p connect tcp ::1 2525
attempt mapped-2525 $p mapped 127.0.0.1 2525
attempt mptcp-2525 $p connect mptcp 127.0.0.1 2525
attempt fastopen-2525 $p fastopen 127.0.0.1 2525
attempt tcp4-5432 $p connect tcp 127.0.0.1 5432
attempt tcp6-5432 $p connect tcp ::1 5432
attempt udp-sendto-5353 $p sendto 127.0.0.1 5353
attempt udp-connect-5353 $p connect udp 127.0.0.1 5353
attempt udp6-sendto-5353 $p sendto ::1 5353
attempt bind4-8080 $p bind tcp 0.0.0.0 8080
attempt bind6-8080 $p bind tcp :: 8080
attempt bind-udp-0 $p bind udp 127.0.0.1 0
attempt listen-unbound $p listen-unbound
attempt netlink-raw $p socket 16 3 0
attempt wild4-2526 $p connect tcp 0.0.0.0 2526
attempt bind-unspec-8080 $p bind-unspec 8080
attempt sendto-unspec-5353 $p sendto-unspec 127.0.0.1 5353
attempt bind6-8081 $p bind tcp :: 8081
attempt bind4-8089 $p bind tcp 0.0.0.0 8089
attempt bind4-8090 $p bind tcp 0.0.0.0 8090
attempt bind4-8100 $p bind tcp 0.0.0.0 8100
attempt bind4-8101 $p bind tcp 0.0.0.0 8101
attempt ipopts $p ipopts
# Logging through /dev/log needs a unix socket, whatever the family allow-list says.
attempt logger logger -t "armortest-$1" "hello from $1"
EOF
chmod 755 "$d/try"

result() { grep -qx "$2 $3" "/run/armortest-net/$1.out"; }
journal_has() { journalctl -u "$1" -o cat | grep -q "$2"; }
field() { journalctl -u "$1" -o verbose | grep -q "^ *$2\$"; }
oneshot() {
  unit "$1.service" "[Service]
Type=oneshot
ExecStart=$d/try %N"
}

for u in twin deny allow audit dry typo inet; do oneshot "armor-net-$u"; done
dropin armor-net-deny.service armor.conf '[X-Armor]
ArmorPolicy=deny net packet raw
ArmorPolicy=deny connect tcp:2525 udp:127.0.0.0/8:5353
ArmorPolicy=deny bind tcp:8080 tcp:0.0.0.0/0:8081
ArmorPolicy=deny connect tcp:127.0.0.1:2526
ArmorPolicy=deny bind tcp:8090-8100'
dropin armor-net-inet.service armor.conf '[X-Armor]
ArmorPolicy=deny net inet
ArmorPolicy=deny connect tcp:5400-5440'
dropin armor-net-allow.service armor.conf '[X-Armor]
ArmorPolicy=allow net inet inet6
ArmorPolicy=allow connect tcp:127.0.0.1:5432
ArmorPolicy=allow bind tcp:[::]:8080
ArmorPolicy=audit connect tcp:127.0.0.1:5432'
dropin armor-net-audit.service armor.conf '[X-Armor]
ArmorPolicy=audit connect tcp:2525
ArmorPolicy=audit net packet
ArmorPolicy=audit bind tcp:8080'
dropin armor-net-dry.service armor.conf '[X-Armor]
ArmorMode=audit
ArmorPolicy=deny net packet
ArmorPolicy=deny connect tcp:[::1]:2525
ArmorPolicy=deny bind tcp:8080'
dropin armor-net-typo.service armor.conf '[X-Armor]
ArmorPolicy=deny net pakcet
ArmorPolicy=deny connect tcp:10.0.0.1/8:25'
systemctl daemon-reload
wait_rules armor-net-deny.service 5
wait_rules armor-net-inet.service 2
wait_rules armor-net-allow.service 4
wait_rules armor-net-audit.service 3
wait_rules armor-net-dry.service 3
for u in twin deny allow audit dry inet; do
  check "armor-net-$u runs" systemctl start "armor-net-$u.service"
done

# The twin: every route works without armor.
for a in packet raw-ip inet6-dgram tcp4-2525 tcp6-2525 mapped-2525 mptcp-2525 fastopen-2525 \
  tcp4-5432 tcp6-5432 udp-sendto-5353 udp-connect-5353 udp6-sendto-5353 bind4-8080 bind6-8080 \
  bind-udp-0 listen-unbound netlink-raw wild4-2526 bind-unspec-8080 sendto-unspec-5353 bind6-8081 \
  bind4-8089 bind4-8090 bind4-8100 bind4-8101 ipopts logger; do
  check "twin: $a works" result armor-net-twin "$a" ok
done

# deny net packet raw / deny connect tcp:2525 udp:127.0.0.0/8:5353 / deny bind tcp:8080
check "deny net packet: a packet socket is refused" result armor-net-deny packet EACCES
check "deny net raw: a raw IP socket is refused" result armor-net-deny raw-ip EACCES
check "deny net packet raw: an IPv6 datagram socket is not" result armor-net-deny inet6-dgram ok
check "deny connect tcp:2525: IPv4 is refused" result armor-net-deny tcp4-2525 EACCES
check "deny connect tcp:2525: IPv6 is refused" result armor-net-deny tcp6-2525 EACCES
check "deny connect tcp:2525: an IPv6 socket to an IPv4-mapped address is refused" \
  result armor-net-deny mapped-2525 EACCES
check "deny connect tcp:2525: MPTCP is refused" result armor-net-deny mptcp-2525 EACCES
check "deny connect tcp:2525: TCP Fast Open (no connect) is refused" \
  result armor-net-deny fastopen-2525 EACCES
check "deny connect tcp:2525: another port is not" result armor-net-deny tcp4-5432 ok
check "deny connect udp:127.0.0.0/8:5353: a datagram sent with no connect is refused" \
  result armor-net-deny udp-sendto-5353 EACCES
check "deny connect udp:127.0.0.0/8:5353: a UDP connect is refused" \
  result armor-net-deny udp-connect-5353 EACCES
check "deny connect udp:127.0.0.0/8:5353: ::1 is outside the network" \
  result armor-net-deny udp6-sendto-5353 ok
check "deny bind tcp:8080: IPv4 is refused" result armor-net-deny bind4-8080 EACCES
check "deny bind tcp:8080: IPv6 is refused" result armor-net-deny bind6-8080 EACCES
check "deny bind tcp:8080: a UDP bind is not" result armor-net-deny bind-udp-0 ok
check "deny: logging still works" result armor-net-deny logger ok
check "deny net raw: a netlink socket (SOCK_RAW is its ordinary type) is not refused" \
  result armor-net-deny netlink-raw ok
check "deny connect tcp:127.0.0.1:2526: connect to 0.0.0.0 (loopback) is refused" \
  result armor-net-deny wild4-2526 EACCES
check "deny bind tcp:8080: a bind with AF_UNSPEC (read as AF_INET) is refused" \
  result armor-net-deny bind-unspec-8080 EACCES
check "deny connect udp:127.0.0.0/8:5353: a datagram to AF_UNSPEC (read as AF_INET) is refused" \
  result armor-net-deny sendto-unspec-5353 EACCES
check "deny bind tcp:0.0.0.0/0:8081: a dual-stack bind of :: is refused" \
  result armor-net-deny bind6-8081 EACCES
check "connect rules: a source route (IP_OPTIONS) is refused" result armor-net-deny ipopts EACCES
check "the source route's refusal says why" eventually journal_has armor-net-deny.service \
  'Denied setting IP options (source routing) by .*it would take connections or binds past'
check "deny net inet: an IPv4 socket is refused" result armor-net-inet tcp4-5432 EACCES
check "deny net inet: an IPv6 socket to an IPv4-mapped address is refused" \
  result armor-net-inet mapped-2525 EACCES
check "deny net inet: IPv6 to ::1 is not" result armor-net-inet tcp6-2525 ok
# deny connect tcp:5400-5440: a port inside the range is refused (2525, outside, works above).
check "deny connect tcp:5400-5440: [::1]:5432 is refused" result armor-net-inet tcp6-5432 EACCES
check "the range's connect denial names the range rule" eventually journal_has armor-net-inet.service \
  'Denied connect to tcp \[::1\]:5432 by .*rule "deny connect tcp:5400-5440" from .*armor-net-inet.service.d/armor.conf:3'
check "unitarmor check warns that CAP_NET_ADMIN walks around port rules" sh -c \
  "unitarmor check armor-net-deny.service 2>&1 | grep -q 'CAP_NET_ADMIN can redirect connections'"
check "the packet socket's denial is in journalctl -u" eventually journal_has armor-net-deny.service \
  'Denied creating a packet raw socket by .*netprobe (pid [0-9]*): rule "deny net packet raw" from /etc/systemd/system/armor-net-deny.service.d/armor.conf:2'
check "the connect's denial names address and port" eventually journal_has armor-net-deny.service \
  'Denied connect to tcp 127.0.0.1:2525 by .*netprobe (pid [0-9]*): rule "deny connect tcp:2525 udp:127.0.0.0/8:5353" from .*armor.conf:3'
check "the IPv6 connect's denial names [::1]:2525" eventually journal_has armor-net-deny.service \
  'Denied connect to tcp \[::1\]:2525'
check "the datagram's denial is a connect to udp 127.0.0.1:5353" eventually journal_has armor-net-deny.service \
  'Denied connect to udp 127.0.0.1:5353'
check "the bind's denial names it" eventually journal_has armor-net-deny.service \
  'Denied bind of tcp 0.0.0.0:8080 by'
check "connect records carry UNITARMOR_ADDRESS" field armor-net-deny.service 'UNITARMOR_ADDRESS=127.0.0.1'
check "connect records carry UNITARMOR_PORT" field armor-net-deny.service 'UNITARMOR_PORT=2525'
check "connect records carry UNITARMOR_PROTOCOL" field armor-net-deny.service 'UNITARMOR_PROTOCOL=udp'
check "connect records carry UNITARMOR_CLASS=connect" field armor-net-deny.service 'UNITARMOR_CLASS=connect'
check "socket records carry UNITARMOR_FAMILY" field armor-net-deny.service 'UNITARMOR_FAMILY=packet'
check "socket records carry UNITARMOR_CLASS=net" field armor-net-deny.service 'UNITARMOR_CLASS=net'
check "a bind's denial is one record of class, operation, protocol, address and port" \
  eventually record armor-net-deny.service UNITARMOR_ACTION=deny UNITARMOR_CLASS=bind \
  UNITARMOR_OPERATION=bind UNITARMOR_PROTOCOL=tcp UNITARMOR_ADDRESS=0.0.0.0 UNITARMOR_PORT=8080
check "an IPv6 bind's denial carries UNITARMOR_ADDRESS=::" eventually record armor-net-deny.service \
  UNITARMOR_CLASS=bind UNITARMOR_ADDRESS=:: UNITARMOR_PORT=8080
# deny bind tcp:8090-8100: both ends of the range are refused, the ports just past it are not.
check "deny bind tcp:8090-8100: its first port is refused" result armor-net-deny bind4-8090 EACCES
check "deny bind tcp:8090-8100: its last port is refused" result armor-net-deny bind4-8100 EACCES
check "deny bind tcp:8090-8100: the port below it is not" result armor-net-deny bind4-8089 ok
check "deny bind tcp:8090-8100: the port above it is not" result armor-net-deny bind4-8101 ok
check "the range's denial names the port and the range rule" eventually journal_has armor-net-deny.service \
  'Denied bind of tcp 0.0.0.0:8100 by .*rule "deny bind tcp:8090-8100" from .*armor-net-deny.service.d/armor.conf:6'

# allow net inet inet6 / allow connect tcp:127.0.0.1:5432 / allow bind tcp:[::]:8080
check "allow net inet inet6: a packet socket is refused" result armor-net-allow packet EACCES
check "allow net inet inet6: a raw IP socket is refused (raw is not allowed)" result armor-net-allow raw-ip EACCES
check "allow net inet inet6: an IPv6 datagram socket is allowed" result armor-net-allow inet6-dgram ok
check "allow net: logging through /dev/log still works" result armor-net-allow logger ok
check "allow connect tcp:127.0.0.1:5432: allowed" result armor-net-allow tcp4-5432 ok
check "allow connect tcp:127.0.0.1:5432: ::1 is not" result armor-net-allow tcp6-5432 EACCES
check "allow-list: another TCP port is refused" result armor-net-allow tcp4-2525 EACCES
check "allow-list: MPTCP to another port is refused" result armor-net-allow mptcp-2525 EACCES
check "allow-list: TCP Fast Open to another port is refused" result armor-net-allow fastopen-2525 EACCES
check "the TCP allow-list leaves UDP alone" result armor-net-allow udp-sendto-5353 ok
check "allow bind tcp:[::]:8080: binding :: is allowed" result armor-net-allow bind6-8080 ok
check "allow bind tcp:[::]:8080: binding 0.0.0.0 is not" result armor-net-allow bind4-8080 EACCES
check "bind allow-list: listen() with no port is refused" result armor-net-allow listen-unbound EACCES
check "the allow-list's denial says so" eventually journal_has armor-net-allow.service \
  'Denied connect to tcp 127.0.0.1:2525 by .*connect is an allow-list and no allow rule matches'
# The scan meets the allow entry, then the audit entry: allowed, and reported.
check "allow and audit connect tcp:127.0.0.1:5432: the allowed connect is reported" eventually \
  journal_has armor-net-allow.service 'Audited connect to tcp 127.0.0.1:5432'

check "audit connect tcp:2525: the connect works" result armor-net-audit tcp4-2525 ok
check "audit net packet: the socket works" result armor-net-audit packet ok
check "audit: the connect is reported" eventually journal_has armor-net-audit.service \
  'Audited connect to tcp 127.0.0.1:2525'
check "audit: the socket is reported" eventually journal_has armor-net-audit.service \
  'Audited creating a packet raw socket'
check "audit bind tcp:8080: the bind works" result armor-net-audit bind4-8080 ok
check "audit bind tcp:8080: it is reported" eventually journal_has armor-net-audit.service \
  'Audited bind of tcp 0.0.0.0:8080 by .*rule "audit bind tcp:8080"'
check "audit bind tcp:8080: its record says audit, bind, the port" eventually record armor-net-audit.service \
  UNITARMOR_ACTION=audit UNITARMOR_CLASS=bind UNITARMOR_ADDRESS=0.0.0.0 UNITARMOR_PORT=8080
check "ArmorMode=audit: the packet socket works" result armor-net-dry packet ok
check "ArmorMode=audit: the connect to [::1]:2525 works" result armor-net-dry tcp6-2525 ok
check "ArmorMode=audit: both are reported as would-deny" eventually sh -c \
  "journalctl -u armor-net-dry.service -o cat | grep -q 'Would deny creating a packet raw socket' &&
   journalctl -u armor-net-dry.service -o cat | grep -q 'Would deny connect to tcp \[::1\]:2525'"
check "ArmorMode=audit: the bind of port 8080 works" result armor-net-dry bind4-8080 ok
check "ArmorMode=audit: the bind is reported as would-deny" eventually journal_has armor-net-dry.service \
  'Would deny bind of tcp 0.0.0.0:8080 by .*rule "deny bind tcp:8080"'
check "ArmorMode=audit: the bind's record says would-deny, bind, the port" eventually record \
  armor-net-dry.service UNITARMOR_ACTION=would-deny UNITARMOR_CLASS=bind UNITARMOR_PORT=8080

check "a misspelt family is an error naming the file, line and the likely name" eventually sh -c \
  "unitarmor status armor-net-typo.service | grep -F 'armor-net-typo.service.d/armor.conf:2' | grep -q \"did you mean 'packet'\""
check "an address with bits past its prefix is an error naming the network" eventually sh -c \
  "unitarmor status armor-net-typo.service | grep -F 'armor.conf:3' | grep -q 'the network is 10.0.0.0/8'"
check "unitarmor check no longer calls net rules unenforced" sh -c \
  "! unitarmor check armor-net-deny.service 2>&1 | grep -q 'not enforced'"

systemctl stop armor-net-listener.service
finish
