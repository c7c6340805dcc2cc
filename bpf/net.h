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
 * for it changes nothing) or `@` and its abstract name. The implicit `bus` protection adds
 * deny entries for the service manager, the system bus and user managers; logging and
 * readiness sockets are always allowed (src/compile.rs). A socket created inside the
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
	if (in_unit(BPF_CORE_READ(other, sk_cgrp_data.cgroup, kn, id), a.binding->root))
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

#define AF_INET 2
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
	struct ua_config *cfg = bpf_map_lookup_elem(&config, &zero);

	return cfg && cfg->net_policies;
}

/* Reports (or refuses) a network operation decided by `rule`; the event's path holds the
 * 16 address bytes at the end of the buffer when `addr` is set. */
static __always_inline int decide_net(struct armor *a, __u32 rule, bool audit, __u8 class, __u8 op,
				      __u32 arg, const __u32 *addr)
{
	struct scratch *s = get_scratch();
	struct report r = { .rule = rule, .arg = arg, .pos = UA_PATH_MAX, .class = class, .op = op };

	if (rule == UA_RULE_NONE)
		return 0;
	if (!s)
		return audit || a->pol->header.mode == UA_MODE_AUDIT ? 0 : -EACCES;
	if (addr) {
		claim(a);
		__builtin_memcpy(&s->path[UA_PATH_MAX - 16], addr, 16);
		r.pos = UA_PATH_MAX - 16;
	}
	if (audit) {
		r.verdict = UA_VERDICT_AUDITED;
		emit(a, s, &r);
		return 0;
	}
	return deny(a, s, &r, -EACCES);
}

SEC("lsm/socket_create")
int BPF_PROG(ua_socket_create, int family, int type, int protocol, int kern)
{
	__u32 slot = family >= UA_NET_RAW || family < 0 ? UA_NET_RAW - 1 : family;
	__u32 rule, raw = UA_RULE_NONE;
	struct armor a;
	bool audit;

	/* Sockets the kernel makes for itself are not the unit's. */
	if (kern || !net_rules_in_use() || !armored(&a) || setup_phase())
		return 0;
	rule = a.pol->net_rule[slot & (UA_NET_SLOTS - 1)];
	audit = a.pol->net_audit & (1ULL << (slot & (UA_NET_SLOTS - 1)));
	if ((type & SOCK_TYPE_MASK) == SOCK_RAW) {
		raw = a.pol->net_rule[UA_NET_RAW];
		/* A refusal of either kind wins over the other's audit. */
		if (raw != UA_RULE_NONE && (rule == UA_RULE_NONE || audit) &&
		    !(a.pol->net_audit & (1ULL << UA_NET_RAW))) {
			rule = raw;
			audit = false;
		} else if (rule == UA_RULE_NONE) {
			rule = raw;
			audit = true;
		}
	}
	return decide_net(&a, rule, audit, UA_CLASS_NET, UA_OP_SOCKET,
			  (family & 0xffff) | (type & SOCK_TYPE_MASK) << 16, 0);
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

/* The port-rule kind of socket `sock` for a connect (UA_PORT_BIND for a bind), or -1 if its
 * protocol is neither TCP nor UDP. MPTCP is TCP to the peer; UDP-Lite is UDP. */
static __always_inline int port_kind(struct sock *sk, int bind)
{
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);

	if (proto == IPPROTO_TCP || proto == IPPROTO_MPTCP)
		return bind;
	if (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE)
		return bind | UA_PORT_UDP;
	return -1;
}

/* Decides a connect or bind of kind `kind` to `addr` (IPv6 or IPv4-mapped, network order),
 * `port` (host order), against the policy's port rules: a matching deny wins, an allow-list
 * kind refuses what no allow rule matches, an audit rule reports. */
static __always_inline int decide_port(struct armor *a, int kind, const __u32 *addr, __u16 port)
{
	__u32 deny = UA_RULE_NONE, allow = UA_RULE_NONE, audit = UA_RULE_NONE, n, i;
	struct ua_port_rule *e;
	__u32 arg = UA_NET_ARG(port, kind & UA_PORT_UDP ? IPPROTO_UDP : IPPROTO_TCP);
	__u8 class = kind & UA_PORT_BIND ? UA_CLASS_BIND : UA_CLASS_CONNECT;
	__u8 op = kind & UA_PORT_BIND ? UA_OP_INET_BIND : UA_OP_INET_CONNECT;

	n = a->pol->nports;
	for (i = 0; i < UA_PORT_RULES; i++) {
		if (i >= n)
			break;
		e = &a->pol->ports[i];
		if (e->kind != kind || port < e->first || port > e->last)
			continue;
		if ((addr[0] & e->mask[0]) != e->addr[0] || (addr[1] & e->mask[1]) != e->addr[1] ||
		    (addr[2] & e->mask[2]) != e->addr[2] || (addr[3] & e->mask[3]) != e->addr[3])
			continue;
		if (e->action == UA_ACT_DENY && deny == UA_RULE_NONE)
			deny = e->rule;
		else if (e->action == UA_ACT_ALLOW && allow == UA_RULE_NONE)
			allow = e->rule;
		else if (e->action == UA_ACT_AUDIT && audit == UA_RULE_NONE)
			audit = e->rule;
	}
	if (deny != UA_RULE_NONE)
		return decide_net(a, deny, false, class, op, arg, addr);
	if ((a->pol->port_allowlist & (1u << (kind & 3))) && allow == UA_RULE_NONE)
		return decide_net(a, UA_RULE_NOT_ALLOWED, false, class, op, arg, addr);
	return decide_net(a, audit, true, class, op, arg, addr);
}

/* Decides a connect (bind = 0) or bind (UA_PORT_BIND) of `sock` to the kernel copy of a
 * sockaddr at `address`. Addresses the kernel refuses anyway (too short, another family) and
 * AF_UNSPEC (a datagram socket's disconnect) are not decided. */
static __always_inline int decide_sockaddr(struct socket *sock, void *address, int addrlen, int bind)
{
	struct ua_sockaddr_in6 sa = {};
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u32 addr[4] = {};
	__u16 family;
	struct armor a;
	int kind;

	if (!net_rules_in_use() || !sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	kind = port_kind(sk, bind);
	if (kind < 0 || !armored(&a) || setup_phase())
		return 0;
	if (addrlen < (int)sizeof(struct ua_sockaddr_in) ||
	    bpf_probe_read_kernel(&sa, sizeof(struct ua_sockaddr_in), address))
		return 0;
	if (sa.family == AF_INET) {
		struct ua_sockaddr_in *in = (void *)&sa;

		addr[2] = bpf_htonl(0xffff);
		addr[3] = in->addr;
	} else if (sa.family == AF_INET6) {
		if (addrlen < (int)sizeof(sa) || bpf_probe_read_kernel(&sa, sizeof(sa), address))
			return 0;
		addr[0] = sa.addr[0];
		addr[1] = sa.addr[1];
		addr[2] = sa.addr[2];
		addr[3] = sa.addr[3];
	} else {
		return 0;
	}
	return decide_port(&a, kind, addr, bpf_ntohs(sa.port));
}

SEC("lsm/socket_connect")
int BPF_PROG(ua_socket_connect, struct socket *sock, void *address, int addrlen)
{
	return decide_sockaddr(sock, address, addrlen, 0);
}

SEC("lsm/socket_bind")
int BPF_PROG(ua_socket_bind, struct socket *sock, void *address, int addrlen)
{
	return decide_sockaddr(sock, address, addrlen, UA_PORT_BIND);
}

/* listen() on a TCP socket that has no port: the kernel picks one, a bind no bind() asked
 * for. Decided as a bind of port 0 to any address, which only an allow-list refuses. */
SEC("lsm/socket_listen")
int BPF_PROG(ua_socket_listen, struct socket *sock, int backlog)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u32 any[4] = {};
	__u16 family;
	struct armor a;
	int kind;

	if (!net_rules_in_use() || !sk || BPF_CORE_READ(sk, __sk_common.skc_num))
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	kind = port_kind(sk, UA_PORT_BIND);
	if ((family != AF_INET && family != AF_INET6) || kind < 0 || !armored(&a) || setup_phase())
		return 0;
	return decide_port(&a, kind, any, 0);
}

/* A datagram to an address (sendto(), sendmsg() with msg_name, on UDP), or a TCP Fast Open
 * connect (MSG_FASTOPEN with an address): a connect. Called by socket_sendmsg (procs.h). */
static __always_inline int inet_sendmsg(struct socket *sock, struct msghdr *msg)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);
	int kind;

	if (!sk || !net_rules_in_use())
		return 0;
	kind = port_kind(sk, 0);
	if (kind < 0 || (!(kind & UA_PORT_UDP) && !(BPF_CORE_READ(msg, msg_flags) & MSG_FASTOPEN)))
		return 0;
	return decide_sockaddr(sock, BPF_CORE_READ(msg, msg_name), BPF_CORE_READ(msg, msg_namelen), 0);
}

#endif
