/* SPDX-License-Identifier: GPL-2.0-only */
/*
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

#endif
