// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// The proxy's TLS plaintext, read where the proxy reads and writes it:
// uprobes on libssl's SSL_read, SSL_write, SSL_read_ex and SSL_write_ex
// (the entry saves the buffer, the return copies what the call moved),
// SSL_do_handshake (a connection seen from its start), SSL_free (its end).
// The TCP 4-tuple comes from the socket tracepoints while the thread is
// inside one of those calls; new processes of a traced one are traced too.
// Everything goes to user space through one ring buffer: a fixed header
// (struct rec_hdr) followed by up to CHUNK bytes.
//
// Built by bpf2go (see the package documentation); the compiled object is
// committed, so building wsdiag needs no clang.

#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;

char LICENSE[] SEC("license") = "Dual MIT/GPL";

// The few kernel fields read, by name (CO-RE against the running kernel's
// BTF): no vmlinux.h needed.
struct in6_addr {
	union {
		u8 u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	union {
		struct {
			u32 skc_daddr;
			u32 skc_rcv_saddr;
		};
	};
	union {
		struct {
			u16 skc_dport;
			u16 skc_num;
		};
	};
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

#define AF_INET 2
#define AF_INET6 10

// CHUNK is the most plaintext one record carries; MAX_CHUNKS bounds the
// records of one call (nginx and haproxy move at most 16 KiB per call;
// bytes past the limit are counted and show as lost).
#define CHUNK 16384
#define MAX_CHUNKS 8

// Record types.
enum {
	REC_DATA = 1, // plaintext of one call (or a CHUNK of it)
	REC_END = 2,  // SSL_free: a direction ends at off
	REC_FORK = 3, // a traced process made a process: pid (ssl: the parent)
};

// Directions, as the traced process sees them.
enum {
	DIR_READ = 0,  // from the peer (SSL_read)
	DIR_WRITE = 1, // to the peer (SSL_write)
};

// Header flags.
enum {
	FLAG_START = 1, // the connection's handshake was seen: off 0 is its first plaintext byte
};

// rec_hdr starts every ring record (80 bytes, little-endian as the host).
struct rec_hdr {
	u8 type;
	u8 dir;
	u8 flags;
	u8 family; // AF_INET, AF_INET6, or 0 while the 4-tuple is unknown
	u32 pid;   // thread group (process) id
	u32 tid;
	u32 len; // bytes that follow
	u64 ssl; // the SSL* (a process's own)
	u64 ts;  // bpf_ktime_get_ns (CLOCK_MONOTONIC)
	u64 off; // offset of the bytes in the direction's plaintext
	u32 gen; // generation of the SSL* (a new one per connection)
	u16 lport, rport; // the traced process's end, the peer's (host order)
	u8 laddr[16], raddr[16]; // IPv4 in the first 4 bytes
};

// Counters (index into the stats map), summed over CPUs by user space.
enum {
	ST_CALLS,      // calls captured
	ST_BYTES,      // bytes written to the ring
	ST_SKIP_CALLS, // calls on connections left out by sampling
	ST_CONNS,      // connections captured
	ST_SKIP_CONNS, // connections left out by sampling
	ST_DROPS,      // records lost: the ring was full
	ST_DROP_BYTES, // their bytes
	ST_FAULTS,     // records lost: the buffer could not be read
	ST_FAULT_BYTES,
	ST_TRUNC_BYTES, // bytes past MAX_CHUNKS*CHUNK of one call
	ST_FORKS,       // processes added by fork
	ST_TRAPS,       // uprobe and uretprobe hits, all of them
	ST_NSTATS,
};

// config is set by user space.
struct config {
	u32 keep;      // of 65536: the share of new connections captured
	u32 midstream; // capture connections first seen after their handshake
};

// Call kinds.
enum {
	CALL_READ = 0,
	CALL_WRITE = 1,
	CALL_HANDSHAKE = 2,
};

// call is a thread's SSL call in progress.
struct call {
	u64 ssl;
	u64 buf;
	u64 outp; // _ex: where the byte count is written
	u8 kind;
	u8 ex;
};

struct conn_key {
	u32 pid;
	u32 pad;
	u64 ssl;
};

// conn is what is known of one SSL*.
struct conn {
	u64 sk;     // the socket it was last seen on
	u64 off[2]; // bytes so far by direction (captured or lost)
	u32 gen;
	u8 start;
	u8 skip;
	u8 family;
	u8 pad;
	u16 lport, rport;
	u8 laddr[16], raddr[16];
};

struct scratch {
	struct rec_hdr h;
	u8 data[CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u8);
} pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_NSTATS);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct config);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} gens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); // user space sets the size at load
} events SEC(".maps");

static __always_inline void count(u32 i, u64 n)
{
	u64 *v = bpf_map_lookup_elem(&stats, &i);
	if (v)
		*v += n;
}

// wake says whether to wake the reader: only when the ring is an eighth
// full. A wakeup costs the traced process as much as the copy of many
// records; the reader polls the ring every few milliseconds anyway.
static __always_inline u64 wake(void)
{
	u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	return avail > size / 8 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline int traced(u32 pid)
{
	return bpf_map_lookup_elem(&pids, &pid) != 0;
}

// next_gen numbers connections: a count per CPU, with the CPU in the low
// bits (no atomic operations: the object loads on kernels before 5.12).
static __always_inline u32 next_gen(void)
{
	u32 z = 0;
	u32 *g = bpf_map_lookup_elem(&gens, &z);
	if (!g)
		return 0;
	*g += 1;
	return (*g << 8) | (bpf_get_smp_processor_id() & 0xff);
}

// sample decides whether a new connection is captured.
static __always_inline int sample(u8 start)
{
	u32 z = 0;
	struct config *c = bpf_map_lookup_elem(&cfg, &z);
	if (!c)
		return 0;
	if (!start && !c->midstream)
		return 0;
	if (c->keep >= 65536)
		return 1;
	return (bpf_get_prandom_u32() & 0xffff) < c->keep;
}

// conn_new starts the record of an SSL* first seen now.
static __always_inline struct conn *conn_new(struct conn_key *k, u8 start)
{
	struct conn c = {};
	c.start = start;
	c.gen = next_gen();
	c.skip = !sample(start);
	count(c.skip ? ST_SKIP_CONNS : ST_CONNS, 1);
	bpf_map_update_elem(&conns, k, &c, BPF_NOEXIST);
	return bpf_map_lookup_elem(&conns, k);
}

static __always_inline int enter(struct pt_regs *ctx, u8 kind, u8 ex)
{
	count(ST_TRAPS, 1);
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	if (!traced(pid))
		return 0;
	struct conn_key k = {.pid = pid, .ssl = PT_REGS_PARM1(ctx)};
	struct conn *c = bpf_map_lookup_elem(&conns, &k);
	if (!c) {
		c = conn_new(&k, kind == CALL_HANDSHAKE);
		if (!c)
			return 0;
	}
	if (c->skip) {
		if (kind != CALL_HANDSHAKE)
			count(ST_SKIP_CALLS, 1);
		return 0;
	}
	struct call call = {.ssl = k.ssl, .kind = kind, .ex = ex};
	if (kind != CALL_HANDSHAKE) {
		call.buf = PT_REGS_PARM2(ctx);
		if (ex)
			call.outp = PT_REGS_PARM4(ctx);
	}
	bpf_map_update_elem(&calls, &id, &call, BPF_ANY);
	return 0;
}

static __always_inline void fill(struct rec_hdr *h, struct conn *c, u32 pid, u32 tid, u64 ssl)
{
	h->pid = pid;
	h->tid = tid;
	h->ssl = ssl;
	h->ts = bpf_ktime_get_ns();
	h->gen = c->gen;
	h->flags = c->start ? FLAG_START : 0;
	h->family = c->family;
	h->lport = c->lport;
	h->rport = c->rport;
	__builtin_memcpy(h->laddr, c->laddr, 16);
	__builtin_memcpy(h->raddr, c->raddr, 16);
}

static __always_inline int leave(struct pt_regs *ctx)
{
	count(ST_TRAPS, 1);
	u64 id = bpf_get_current_pid_tgid();
	struct call *cp = bpf_map_lookup_elem(&calls, &id);
	if (!cp)
		return 0;
	struct call call = *cp;
	bpf_map_delete_elem(&calls, &id);
	if (call.kind == CALL_HANDSHAKE)
		return 0;

	int ret = (int)PT_REGS_RC(ctx); // the C int in a 64-bit register
	u64 n = 0;
	if (call.ex) {
		if (ret != 1)
			return 0;
		if (bpf_probe_read_user(&n, sizeof(n), (void *)call.outp))
			return 0;
	} else {
		if (ret <= 0)
			return 0;
		n = ret;
	}
	if (n == 0)
		return 0;

	u32 pid = id >> 32;
	struct conn_key k = {.pid = pid, .ssl = call.ssl};
	struct conn *c = bpf_map_lookup_elem(&conns, &k);
	if (!c)
		return 0;
	u32 z = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &z);
	if (!s)
		return 0;
	u8 dir = call.kind == CALL_READ ? DIR_READ : DIR_WRITE;
	fill(&s->h, c, pid, (u32)id, call.ssl);
	s->h.type = REC_DATA;
	s->h.dir = dir;
	u64 base = c->off[dir & 1];
	count(ST_CALLS, 1);
	for (int i = 0; i < MAX_CHUNKS; i++) {
		u64 done = (u64)i * CHUNK;
		if (done >= n)
			break;
		u64 len = n - done;
		if (len > CHUNK)
			len = CHUNK;
		len &= 0x7fff; // (a no-op the verifier needs to see the bound)
		s->h.off = base + done;
		s->h.len = len;
		if (bpf_probe_read_user(s->data, len, (void *)(call.buf + done))) {
			count(ST_FAULTS, 1);
			count(ST_FAULT_BYTES, len);
			continue;
		}
		if (bpf_ringbuf_output(&events, s, sizeof(struct rec_hdr) + len, wake())) {
			count(ST_DROPS, 1);
			count(ST_DROP_BYTES, len);
			continue;
		}
		count(ST_BYTES, len);
	}
	if (n > (u64)MAX_CHUNKS * CHUNK)
		count(ST_TRUNC_BYTES, n - (u64)MAX_CHUNKS * CHUNK);
	c->off[dir & 1] = base + n;
	return 0;
}

SEC("uprobe/SSL_read")
int BPF_KPROBE(ssl_read_enter) { return enter(ctx, CALL_READ, 0); }

SEC("uprobe/SSL_write")
int BPF_KPROBE(ssl_write_enter) { return enter(ctx, CALL_WRITE, 0); }

SEC("uprobe/SSL_read_ex")
int BPF_KPROBE(ssl_read_ex_enter) { return enter(ctx, CALL_READ, 1); }

SEC("uprobe/SSL_write_ex")
int BPF_KPROBE(ssl_write_ex_enter) { return enter(ctx, CALL_WRITE, 1); }

SEC("uprobe/SSL_do_handshake")
int BPF_KPROBE(ssl_handshake_enter) { return enter(ctx, CALL_HANDSHAKE, 0); }

// One return program serves every function: the thread's call says what
// it was.
SEC("uretprobe/SSL_call")
int BPF_KRETPROBE(ssl_leave) { return leave(ctx); }

// SSL_free ends a connection: the last offsets tell user space whether
// its tail was lost, and the SSL* may be reused for the next one.
SEC("uprobe/SSL_free")
int BPF_KPROBE(ssl_free, void *ssl)
{
	count(ST_TRAPS, 1);
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	if (!traced(pid))
		return 0;
	struct conn_key k = {.pid = pid, .ssl = (u64)ssl};
	struct conn *c = bpf_map_lookup_elem(&conns, &k);
	if (!c)
		return 0;
	if (!c->skip && c->family) {
		u32 z = 0;
		struct scratch *s = bpf_map_lookup_elem(&scratch, &z);
		if (s) {
			fill(&s->h, c, pid, (u32)id, k.ssl);
			s->h.type = REC_END;
			s->h.len = 0;
			for (u8 d = 0; d < 2; d++) {
				s->h.dir = d;
				s->h.off = c->off[d];
				if (bpf_ringbuf_output(&events, &s->h, sizeof(struct rec_hdr), wake()))
					count(ST_DROPS, 1);
			}
		}
	}
	bpf_map_delete_elem(&conns, &k);
	return 0;
}

// on_sock learns the 4-tuple of the SSL* the thread is inside a call on.
static __always_inline void on_sock(struct sock *sk)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	if (!traced(pid))
		return;
	struct call *call = bpf_map_lookup_elem(&calls, &id);
	if (!call)
		return;
	struct conn_key k = {.pid = pid, .ssl = call->ssl};
	struct conn *c = bpf_map_lookup_elem(&conns, &k);
	if (!c || c->sk == (u64)sk)
		return;
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return;
	if (c->sk) {
		// Another socket under the same SSL*: the pointer was reused
		// without an SSL_free seen. A new connection begins.
		c->off[0] = 0;
		c->off[1] = 0;
		c->gen = next_gen();
		c->start = call->kind == CALL_HANDSHAKE;
	}
	c->sk = (u64)sk;
	c->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__builtin_memset(c->laddr, 0, 16);
	__builtin_memset(c->raddr, 0, 16);
	if (family == AF_INET) {
		u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(c->laddr, &l, 4);
		__builtin_memcpy(c->raddr, &r, 4);
		c->family = AF_INET;
		return;
	}
	struct in6_addr l6 = BPF_CORE_READ(sk, __sk_common.skc_v6_rcv_saddr);
	struct in6_addr r6 = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr);
	__builtin_memcpy(c->laddr, l6.in6_u.u6_addr8, 16);
	__builtin_memcpy(c->raddr, r6.in6_u.u6_addr8, 16);
	c->family = AF_INET6;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(on_send, struct sock *sk, int ret, int flags)
{
	on_sock(sk);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(on_recv, struct sock *sk, int ret, int flags)
{
	on_sock(sk);
	return 0;
}

// A traced process's new process (an nginx worker after a reload) is
// traced from its first instruction; user space attaches its probes.
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	u32 ppid = BPF_CORE_READ(parent, tgid);
	u32 cpid = BPF_CORE_READ(child, tgid);
	if (ppid == cpid || !traced(ppid))
		return 0;
	u8 one = 1;
	bpf_map_update_elem(&pids, &cpid, &one, BPF_ANY);
	count(ST_FORKS, 1);
	struct rec_hdr h = {};
	h.type = REC_FORK;
	h.pid = cpid;
	h.ssl = ppid;
	h.ts = bpf_ktime_get_ns();
	bpf_ringbuf_output(&events, &h, sizeof(h), 0);
	return 0;
}
