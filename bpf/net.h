/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Network rules. `net` rules decide socket creation by address family; `connect` and `bind`
 * rules for tcp: and udp: decide by port and address, at connect(), at sendto()/sendmsg()
 * with an address (a datagram, or TCP Fast Open, reaches that address without connect()), at
 * bind(), and at listen() on a TCP socket with no port yet (the kernel then picks one). The
 * compiler resolved `net` rules into one verdict per family (src/compile/net.rs); port rules
 * are a short list, scanned in full, since a deny anywhere in it wins.
 *
 * Unix socket connects and sends, decided in the unix class (`connect unix:`) on the name of
 * the socket connected to: the path it is bound at (built from its inode, so another name
 * for it changes nothing) or `@` and its abstract name. The implicit `bus` protection refuses
 * the service manager, the system bus and user managers (the protections' shared table,
 * walk.h); logging and readiness sockets are always allowed (src/compile.rs). A socket created inside the
 * caller's own unit is always reachable.
 */
#ifndef UNITARMOR_NET_H
#define UNITARMOR_NET_H

#include "path.h"

static __always_inline int decide_unix(struct sock *other)
{
	struct unix_sock *u = (struct unix_sock *)other;
	struct unix_address *addr;
	struct dentry *dentry;
	struct scratch *s;
	struct armor a;
	__u32 pos, len;
	__u8 status = PATH_OK;
	char first;

	if (!armored(&a) || !(a.pol->header.classes & (1 << UA_CLASS_UNIX)) || setup_phase())
		return 0;
	if (in_unit(BPF_CORE_READ(other, sk_cgrp_data.cgroup, kn, id), a.binding.root))
		return 0;
	s = get_scratch();
	if (!s)
		return 0;
	claim(&a);
	dentry = BPF_CORE_READ(u, path.dentry);
	if (dentry) {
		pos = build_path(s, BPF_CORE_READ(u, path.mnt), dentry, &status, 0);
	} else {
		/* Abstract: sun_path starts with a NUL; the name is the bytes after it. */
		addr = BPF_CORE_READ(u, addr);
		if (!addr)
			return 0; /* unnamed: reachable only through a socketpair or passed fd */
		len = BPF_CORE_READ(addr, len);
		if (len <= 3)
			return 0;
		len = (len - 3) & 0x7f;
		const char *name = (const char *)addr + bpf_core_field_offset(struct unix_address, name) +
				   bpf_core_field_offset(struct sockaddr_un, sun_path);
		bpf_probe_read_kernel(&first, 1, name);
		if (first)
			return 0;
		pos = UA_PATH_MAX - len;
		bpf_probe_read_kernel(&s->path[slot(0, pos)], BOUND(len, 127), name + 1);
		pos -= 1;
		s->path[slot(0, pos)] = '@';
	}
	return decide_built(&a, s, UA_CLASS_UNIX, UA_OP_CONNECT, pos, status);
}

SEC("lsm/unix_stream_connect")
int BPF_PROG(ua_unix_stream_connect, struct sock *sock, struct sock *other, struct sock *newsk)
{
	return decide_unix(other);
}

/* Datagrams: connect() and sendto() on an unconnected socket. */
SEC("lsm/unix_may_send")
int BPF_PROG(ua_unix_may_send, struct socket *sock, struct socket *other)
{
	return decide_unix(BPF_CORE_READ(other, sk));
}


/* ---- Address families (`net`) ---- */

#define AF_UNIX 1
#define AF_INET 2
#define AF_NETLINK 16
#define AF_INET6 10
#define SOCK_RAW 3
#define SOCK_TYPE_MASK 0xf
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_UDPLITE 136
#define IPPROTO_MPTCP 262
#define MSG_FASTOPEN 0x20000000

/* Whether some installed policy has net, connect or bind rules: while none has, these hooks
 * return after one array read. */
static __always_inline bool net_rules_in_use(void)
{
	__u32 zero = 0;
	struct ua_config *cfg = bpf_map_lookup_elem(&settings, &zero);

	return cfg && cfg->net_policies;
}

/* Reports (or refuses) a network operation decided by `rule`; with `has_addr`, the event's
 * path holds the 16 address bytes (a01, a23: IPv6 or IPv4-mapped words, memory order) at the
 * end of the buffer. The address comes as numbers, not an array on the stack, which would
 * add to a frame under the 512-byte limit (ua_decide_inet()). */
static __always_inline int net_verdict(struct armor *a, __u32 rule, bool audit, __u8 class, __u8 op,
				       __u32 arg, bool has_addr, __u64 a01, __u64 a23)
{
	struct scratch *s = get_scratch();
	struct report r = { .rule = rule, .arg = arg, .pos = UA_PATH_MAX, .class = class, .op = op };

	if (rule == UA_RULE_NONE)
		return 0;
	if (!s)
		return audit || a->pol->header.mode == UA_MODE_AUDIT ? 0 : -EACCES;
	if (has_addr) {
		claim(a);
		*(__u64 *)&s->path[UA_PATH_MAX - 16] = a01;
		*(__u64 *)&s->path[UA_PATH_MAX - 8] = a23;
		r.pos = UA_PATH_MAX - 16;
	}
	if (audit) {
		r.verdict = UA_VERDICT_AUDITED;
		emit(a, s, &r);
		return 0;
	}
	return deny(a, s, &r, -EACCES);
}

/* net_verdict() for an operation without an address. */
static __always_inline int decide_net(struct armor *a, __u32 rule, bool audit, __u8 class, __u8 op,
				      __u32 arg)
{
	return net_verdict(a, rule, audit, class, op, arg, false, 0, 0);
}

SEC("lsm/socket_create")
int BPF_PROG(ua_socket_create, int family, int type, int protocol, int kern)
{
	__u32 slot = family >= UA_NET_RAW || family < 0 ? UA_NET_RAW - 1 : family;
	__u32 rule, raw = UA_RULE_NONE;
	bool audit, raw_audit;
	struct armor a;

	/* Sockets the kernel makes for itself are not the unit's. */
	if (kern || !net_rules_in_use() || !armored(&a) || setup_phase())
		return 0;
	from_context(&a);
	rule = slot_rule(&a, true, slot, &audit);
	/* Netlink's SOCK_RAW is its ordinary type (getifaddrs(), sd-netlink), no rawer than
	 * SOCK_DGRAM there: `raw` is about every other family's. */
	if ((type & SOCK_TYPE_MASK) == SOCK_RAW && family != AF_NETLINK) {
		raw = slot_rule(&a, true, UA_NET_RAW, &raw_audit);
		/* A refusal of either kind wins over the other's audit. */
		if (raw != UA_RULE_NONE && (rule == UA_RULE_NONE || audit) && !raw_audit) {
			rule = raw;
			audit = false;
		} else if (rule == UA_RULE_NONE) {
			rule = raw;
			audit = true;
		}
	}
	return decide_net(&a, rule, audit, UA_CLASS_NET, UA_OP_SOCKET,
			  (family & 0xffff) | (type & SOCK_TYPE_MASK) << 16);
}

/* ---- Ports (`connect`, `bind`) ---- */

/* include/uapi/linux/in.h, in6.h: fixed layouts, read as plain bytes. */
struct ua_sockaddr_in {
	__u16 family;
	__be16 port;
	__u32 addr;
};

struct ua_sockaddr_in6 {
	__u16 family;
	__be16 port;
	__u32 flowinfo;
	__u32 addr[4];
};

#define AF_UNSPEC 0
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOL_IP 0
#define SOL_IPV6 41
#define IP_OPTIONS 4
#define IPV6_2292PKTOPTIONS 6
#define IP_LOCAL_PORT_RANGE 51
#define IPV6_RTHDR 57
/* The kernel's default ephemeral port range (net.ipv4.ip_local_port_range, a sysctl the
 * kernel-settings protection keeps units from changing). */
#define EPHEMERAL_FIRST 32768
#define EPHEMERAL_LAST 60999

/* The port-rule kind of socket `sock` for a connect (UA_PORT_BIND for a bind), or -1 if it is
 * neither a TCP nor a UDP socket. MPTCP is TCP to the peer; UDP-Lite is UDP. A raw socket
 * with one of these protocols numbers has no ports. */
static __always_inline int port_kind(struct socket *sock, struct sock *sk, int bind)
{
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	short type = BPF_CORE_READ(sock, type);

	if ((proto == IPPROTO_TCP || proto == IPPROTO_MPTCP) && type == SOCK_STREAM)
		return bind;
	if ((proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE) && type == SOCK_DGRAM)
		return bind | UA_PORT_UDP;
	return -1;
}

/* ua_port_scan()'s outcomes (bits 32.. of its result; the rule is bits 0..31). */
#define SCAN_NONE 0
#define SCAN_DENY 1
#define SCAN_AUDIT 2
#define SCAN_ALLOW 3

_Static_assert((UA_PORT_RULES & (UA_PORT_RULES - 1)) == 0, "port_scan_one() masks its index");

/* What ua_port_scan()'s loop reads and carries from one rule to the next (bpf_loop()'s
 * context, on the caller's stack: each scan its own, whatever runs on this CPU meanwhile). */
struct port_scan {
	__u64 a[4], b[4];	/* the address and the other one, as 32-bit words */
	__u64 lo, hi;		/* the ports asked for */
	__u64 mask;		/* the process's from= mask */
	__u64 result;		/* set by the entry that decides, which ends the loop */
	__u32 policy, kind;
	__u32 allowed;		/* whether an allow entry matched so far */
	__u32 allow_rule;	/* the first that did */
	bool has_alt, listed;
};

/* One port rule, entry `i` of the policy's list: 0 to go on to the next, 1 to stop (with
 * `result` set if this entry decided). */
static long port_scan_one(__u32 i, void *ctx)
{
	struct port_scan *c = ctx;
	struct ua_policy_table *pol = bpf_map_lookup_elem(&policies, &c->policy);
	struct ua_port_rule *e;
	__u64 miss, amiss, bmiss, fm;

	/* Cannot fail (an array, the index the caller found); if it did, refuse. */
	if (!pol) {
		c->result = (__u64)SCAN_DENY << 32 | UA_RULE_NOT_ALLOWED;
		return 1;
	}
	/* bpf_loop() runs at most UA_PORT_RULES iterations; the mask bounds the index for the
	 * verifier (a comparison, the compiler tests on a copy of the register it indexes with). */
	e = &pol->ports[i & (UA_PORT_RULES - 1)];
	/* Deny entries match a range they overlap (the kernel may pick any port of it), the
	 * others only one they cover. Each test is folded into one word without a branch
	 * (x - y >> 63 is x < y for 32-bit values). */
	if (e->action == UA_ACT_DENY)
		miss = (e->kind ^ c->kind) | ((c->hi - e->first) >> 63) |
		       (((__u64)e->last - c->lo) >> 63);
	else
		miss = (e->kind ^ c->kind) | ((c->lo - e->first) >> 63) |
		       (((__u64)e->last - c->hi) >> 63);
	/* An entry of a from= rule is for the processes of its pattern only. */
	fm = e->from;
	miss |= ((0 - fm) >> 63) & (((fm & c->mask) - 1) >> 63);
	if (miss)
		return 0;
	amiss = ((c->a[0] & e->mask[0]) ^ e->addr[0]) | ((c->a[1] & e->mask[1]) ^ e->addr[1]) |
		((c->a[2] & e->mask[2]) ^ e->addr[2]) | ((c->a[3] & e->mask[3]) ^ e->addr[3]);
	if (e->action == UA_ACT_DENY) {
		bmiss = ((c->b[0] & e->mask[0]) ^ e->addr[0]) | ((c->b[1] & e->mask[1]) ^ e->addr[1]) |
			((c->b[2] & e->mask[2]) ^ e->addr[2]) | ((c->b[3] & e->mask[3]) ^ e->addr[3]);
		if (!amiss || (c->has_alt && !bmiss)) {
			c->result = (__u64)SCAN_DENY << 32 | e->rule;
			return 1;
		}
		return 0;
	}
	if (amiss)
		return 0;
	if (e->action == UA_ACT_ALLOW) {
		if (!c->allowed)
			c->allow_rule = e->rule;
		c->allowed = 1;
		return 0;
	}
	/* The first audit entry: every deny and allow entry came before it. An allow-list
	 * kind with no allow match is decided after the loop. */
	if (!(c->listed && !c->allowed))
		c->result = (__u64)SCAN_AUDIT << 32 | e->rule;
	return 1;
}

/*
 * Scans policy `polkind & 0xffffffff`'s port rules for a connect or bind of kind
 * `(polkind >> 32) & 0xff` to port `(polkind >> 40) & 0xffff` of address (a01, a23), and of
 * the other address (b01, b23) it reaches too if bit 56 is set (words of the IPv6 form, in
 * memory order): a matching deny wins, an allow-list kind refuses what no allow rule matches,
 * an audit rule reports. The compiler put the deny entries first, then allow, then audit, so
 * the first match mostly decides. `alt` is matched by deny rules only (a dual-stack bind of
 * `::` also binds 0.0.0.0). Port 0 is the kernel's pick from the ephemeral range: a rule whose
 * range covers all of it matches.
 *
 * The entries are scanned by bpf_loop(), whose callback the verifier checks once, with
 * whatever the context holds; an open-coded 64-entry loop was followed path by path, every
 * iteration over (a quarter of a million instructions for each of the four programs that
 * call this, most of the daemon's load time). A global function as well: checked once per
 * program, not once for every way decide_sockaddr() reaches it.
 */
__noinline __u64 ua_port_scan(__u64 polkind, __u64 a01, __u64 a23, __u64 b01, __u64 b23)
{
	__u32 kind = (polkind >> 32) & 0xff, port = (polkind >> 40) & 0xffff;
	/* The ports asked for: one, or for a bind of port 0 any of the ephemeral range. */
	bool any_port = !port && (kind & UA_PORT_BIND);
	__u32 zero = unfolded_zero();
	struct port_scan c = {
		.a = { (__u32)a01, a01 >> 32, (__u32)a23, a23 >> 32 },
		.b = { (__u32)b01, b01 >> 32, (__u32)b23, b23 >> 32 },
		.lo = any_port ? EPHEMERAL_FIRST : port,
		.hi = any_port ? EPHEMERAL_LAST : port,
		.mask = polkind >> 57,
		.result = (__u64)SCAN_NONE << 32 | UA_RULE_NONE,
		.policy = (__u32)polkind,
		.kind = kind,
		.allowed = zero,
		.allow_rule = UA_RULE_NONE | zero,
		.has_alt = (polkind >> 56) & 1,
	};
	struct ua_policy_table *pol = bpf_map_lookup_elem(&policies, &c.policy);
	__u32 n;

	if (!pol)
		return (__u64)SCAN_DENY << 32 | UA_RULE_NOT_ALLOWED;
	c.listed = (pol->port_allowlist & (1u << (kind & 3))) ||
		   ((pol->port_from_allow >> (8 * (kind & 3))) & c.mask);
	n = pol->nports;
	if (n > UA_PORT_RULES)
		n = UA_PORT_RULES;
	bpf_loop(n, port_scan_one, &c, 0);
	if ((c.result >> 32) != SCAN_NONE)
		return c.result;
	if (c.listed && !c.allowed)
		return (__u64)SCAN_DENY << 32 | UA_RULE_NOT_ALLOWED;
	if (c.allowed)
		return (__u64)SCAN_ALLOW << 32 | c.allow_rule;
	return c.result;
}

/* Decides a connect or bind of kind `kind` to address (a01, a23) (words of the IPv6 or
 * IPv4-mapped form, memory order) and `port` (host order), and to the IPv4 address `alt4`
 * (network order) as well if `has_alt` (see ua_port_scan()), for armor `a` whose
 * from_context() ran. */
static __always_inline int decide_port(struct armor *a, int kind, __u64 a01, __u64 a23, bool has_alt,
				       __u32 alt4, __u16 port)
{
	__u32 arg = UA_NET_ARG(port, kind & UA_PORT_UDP ? IPPROTO_UDP : IPPROTO_TCP);
	__u8 class = kind & UA_PORT_BIND ? UA_CLASS_BIND : UA_CLASS_CONNECT;
	__u8 op = kind & UA_PORT_BIND ? UA_OP_INET_BIND : UA_OP_INET_CONNECT;
	__u64 polkind = a->binding.policy | (__u64)(kind & 0xff) << 32 | (__u64)port << 40;
	__u64 b23 = bpf_htonl(0xffff) | (__u64)alt4 << 32, r;

	if (a->from_lost)
		return net_verdict(a, UA_RULE_UNBUILDABLE, false, class, op, arg, true, a01, a23);
	polkind |= (__u64)(a->from_mask & 0x7f) << 57;
	if (has_alt)
		polkind |= 1ULL << 56;
	r = ua_port_scan(polkind, a01, a23, 0, b23);
	if ((r >> 32) == SCAN_NONE)
		return 0;
	if ((r >> 32) == SCAN_ALLOW) {
		ua_count(a->binding.policy, (__u32)r, class, UA_HIT_ALLOWED);
		return 0;
	}
	return net_verdict(a, (__u32)r, (r >> 32) == SCAN_AUDIT, class, op, arg, true, a01, a23);
}

/* ua_decide_inet()'s third argument: the port-rule kind, the port (host order), whether the
 * socket is IPv6, whether the other address `alt4` (network order) is reached too. */
#define INET_ARGS(kind, port, v6, has_alt, alt4)                                              \
	((__u64)((kind) & 0xff) | (__u64)(port) << 8 | (__u64)!!(v6) << 24 |                   \
	 (__u64)!!(has_alt) << 25 | (__u64)(alt4) << 32)

/*
 * Decides a connect or bind of the current task to address (a01, a23) (words of the IPv6 or
 * IPv4-mapped form, in memory order) as INET_ARGS() `args` describes it: 0 to let it happen,
 * negative to refuse it. An IPv6 socket that reaches an IPv4 address is held to `net inet`
 * rules as well.
 *
 * A global function, which finds the task's armor again rather than take it from its caller:
 * the verifier checks it once per program, with whatever its arguments hold. Inlined, it was
 * checked again for each of the ways its callers reach it (each address form, each wildcard
 * case), which made socket_connect, socket_bind and socket_sendmsg a third of everything
 * the daemon's start verifies.
 */
__noinline int ua_decide_inet(__u64 a01, __u64 a23, __u64 args)
{
	struct armor a;
	bool audit;
	__u32 rule;

	if (!armored(&a))
		return 0;
	from_context(&a); /* the process's own table under from= (walk.h) */
	/* IPv4 through an IPv6 socket (an IPv4-mapped address, ::ffff:a.b.c.d) is IPv4:
	 * `deny net inet` holds for it too. */
	if ((args >> 24) & 1 && !a01 && (__u32)a23 == bpf_htonl(0xffff)) {
		rule = slot_rule(&a, true, AF_INET, &audit);
		if (rule != UA_RULE_NONE && !audit)
			return decide_net(&a, rule, false, UA_CLASS_NET, UA_OP_SOCKET,
					  AF_INET | SOCK_STREAM << 16);
	}
	return decide_port(&a, args & 0xff, a01, a23, (args >> 25) & 1, args >> 32,
			   (args >> 8) & 0xffff);
}

/* What a hook returns for ua_decide_inet()'s verdict `r`: the verifier of newer kernels
 * checks that an LSM program returns 0 or an error, which a global function's result is not
 * known to be. */
static __always_inline int inet_verdict(int r)
{
	return r < 0 ? -EACCES : 0;
}

/*
 * Decides a connect (`bind` 0; `send`: a datagram's address) or bind (UA_PORT_BIND) of `sock`
 * to the kernel copy of a sockaddr at `address`, as the kernel will read it:
 * - an IPv4 socket takes AF_UNSPEC as AF_INET in bind() and sendmsg(); in connect() it
 *   disconnects (not decided). Other families the kernel refuses (not decided).
 * - connect() to the wildcard address reaches loopback: 0.0.0.0 is 127.0.0.1, `::` is ::1
 *   (or 127.0.0.1, for a socket bound to an IPv4-mapped address: denied if either is).
 * - a bind of `::` on a dual-stack socket binds 0.0.0.0 as well (denied if either is).
 * - an IPv6 socket that reaches an IPv4 address is held to `net inet` rules as well.
 */
static __always_inline int decide_sockaddr(struct socket *sock, void *address, int addrlen, int bind,
					   bool send)
{
	struct ua_sockaddr_in6 sa = {};
	struct sock *sk;
	/* The address's words (IPv6 or IPv4-mapped form, memory order), as ua_decide_inet()
	 * takes them: numbers, not an array, which keeps this frame small enough for the calls
	 * under it (the verifier allows 512 bytes of stack for all frames together). */
	__u64 a01 = 0, a23, loopback4 = (__u64)bpf_htonl(0x7f000001) << 32;
	__u32 alt4 = 0, ffff = bpf_htonl(0xffff);
	bool has_alt = false;
	__u16 family, sfam;
	int kind;

	if (!net_rules_in_use())
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	kind = port_kind(sock, sk, bind);
	if (kind < 0 || !maybe_armored() || setup_phase())
		return 0;
	if (addrlen < (int)sizeof(struct ua_sockaddr_in) ||
	    bpf_probe_read_kernel(&sa, sizeof(struct ua_sockaddr_in), address))
		return 0;
	sfam = sa.family;
	if (sfam == AF_UNSPEC && family == AF_INET && (bind || send))
		sfam = AF_INET;
	if (sfam == AF_INET) {
		struct ua_sockaddr_in *in = (void *)&sa;
		__u32 v4 = in->addr;

		/* A connect to 0.0.0.0 goes to the socket's own address, or to loopback. */
		if (!bind && !v4)
			v4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr) ?: bpf_htonl(0x7f000001);
		a23 = ffff | (__u64)v4 << 32;
	} else if (sfam == AF_INET6) {
		if (addrlen < (int)sizeof(sa) || bpf_probe_read_kernel(&sa, sizeof(sa), address))
			return 0;
		a01 = sa.addr[0] | (__u64)sa.addr[1] << 32;
		a23 = sa.addr[2] | (__u64)sa.addr[3] << 32;
		if (!(a01 | a23)) {
			/* `::`: loopback for a connect, 0.0.0.0 as well for a dual-stack bind. */
			has_alt = true;
			if (!bind) {
				a23 = (__u64)bpf_htonl(1) << 32;
				alt4 = bpf_htonl(0x7f000001);
			}
		} else if (!a01 && a23 == ffff && !bind) {
			/* ::ffff:0.0.0.0, the IPv4 wildcard: loopback, as above. */
			a23 = ffff | loopback4;
		}
	} else {
		return 0;
	}
	return inet_verdict(ua_decide_inet(a01, a23, INET_ARGS(kind, bpf_ntohs(sa.port),
							       family == AF_INET6, has_alt, alt4)));
}

SEC("lsm/socket_connect")
int BPF_PROG(ua_socket_connect, struct socket *sock, void *address, int addrlen)
{
	return decide_sockaddr(sock, address, addrlen, 0, false);
}

SEC("lsm/socket_bind")
int BPF_PROG(ua_socket_bind, struct socket *sock, void *address, int addrlen)
{
	return decide_sockaddr(sock, address, addrlen, UA_PORT_BIND, false);
}

/* listen() on a TCP socket that has no port: the kernel picks one, a bind no bind() asked
 * for, decided as a bind of port 0 to the wildcard address. */
SEC("lsm/socket_listen")
int BPF_PROG(ua_socket_listen, struct socket *sock, int backlog)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u16 family;
	int kind;

	if (!net_rules_in_use() || !sk || BPF_CORE_READ(sk, __sk_common.skc_num))
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	kind = port_kind(sock, sk, UA_PORT_BIND);
	if ((family != AF_INET && family != AF_INET6) || kind < 0 || !maybe_armored() ||
	    setup_phase())
		return 0;
	/* 0.0.0.0 for an IPv4 socket; `::` (and 0.0.0.0 with it) for an IPv6 one. */
	return inet_verdict(ua_decide_inet(0, family == AF_INET ? bpf_htonl(0xffff) : 0,
					   INET_ARGS(kind, 0, false, family == AF_INET6, 0)));
}

/* A datagram to an address (sendto(), sendmsg() with msg_name, on UDP), or a TCP Fast Open
 * connect (MSG_FASTOPEN with an address): a connect. Called by socket_sendmsg (procs.h). */
static __always_inline int inet_sendmsg(struct socket *sock, struct msghdr *msg)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);
	int kind;

	if (!sk || !net_rules_in_use())
		return 0;
	kind = port_kind(sock, sk, 0);
	if (kind < 0 || (!(kind & UA_PORT_UDP) && !(BPF_CORE_READ(msg, msg_flags) & MSG_FASTOPEN)))
		return 0;
	return decide_sockaddr(sock, BPF_CORE_READ(msg, msg_name), BPF_CORE_READ(msg, msg_namelen), 0,
			       true);
}

/* inet_sendmsg() as a global function, for socket_sendmsg (procs.h): that hook's frame stays
 * small enough for this chain of calls, down to an event's executable path, to fit the
 * verifier's 512 bytes of stack. */
__noinline int ua_inet_sendmsg(__u64 sock, __u64 msg)
{
	return inet_sendmsg((struct socket *)sock, (struct msghdr *)msg);
}

/* Source routing sends a connect's packets to another address first (IPv4 LSRR/SSRR options,
 * IPv6 routing headers, also as sticky IPV6_2292PKTOPTIONS), which no connect rule saw; a
 * socket's own ephemeral port range (IP_LOCAL_PORT_RANGE) picks the port of a bind of port 0:
 * both refused in units with port rules. */
SEC("lsm/socket_setsockopt")
int BPF_PROG(ua_socket_setsockopt, struct socket *sock, int level, int optname)
{
	struct armor a;

	bool range = level == SOL_IP && optname == IP_LOCAL_PORT_RANGE;

	if (!range && !((level == SOL_IP && optname == IP_OPTIONS) ||
			(level == SOL_IPV6 && (optname == IPV6_RTHDR || optname == IPV6_2292PKTOPTIONS))))
		return 0;
	if (!net_rules_in_use() || !armored(&a) || setup_phase())
		return 0;
	/* Any port rule: connect rules for source routes, bind rules for a socket's own ephemeral
	 * range (6.3+), which would let it pick the port a rule refuses. */
	if (!a.pol->nports && !a.pol->port_allowlist)
		return 0;
	return decide_net(&a, UA_RULE_SOURCE_ROUTE, false, UA_CLASS_CONNECT, UA_OP_SOURCE_ROUTE,
			  level << 16 | optname);
}

#endif
