//go:build ignore

// The XDP fast path for PeerDist discovery probes (MS-PCCRD over
// WS-Discovery, UDP 3702). It runs on every LAN interface before the
// network stack: anything that is not a PeerDist V1 probe in a layout it
// decodes with certainty passes untouched, so the socket path (or another
// service on the host) sees it exactly as without this program. A probe it
// does decode is rate-limited per source, its segment IDs are looked up in
// the held and peer maps, and then it is either dropped (nothing held,
// nothing to forward: a Windows peer would stay silent too) or handed to
// the leader as a compact event on the ring buffer and dropped.
//
// Certainty comes from matching a fixed template: the envelope, namespace
// declarations, header and body elements of the probes iPXE, Windows (the
// MS-PCCRD 4.1 layout) and Outpost send, with XML white space (at most 15
// bytes) between elements. The only variable parts are the MessageID (1 to
// 64 characters of a conservative set) and the Scopes text (1 to 8 tokens
// of 64 hex digits, each token in one letter case). Every datagram that
// matches is one the Go decoder (peerdist/pccrd) reads the same way; the
// differential test holds the two to that.
//
// Verifier notes: variable-length steps (white space) are computed without
// branches (SWAR), and after the loops whose exit depends on the data (the
// MessageID, the tokens) the offsets are passed through a per-CPU scratch
// value so that the verifier continues with one state instead of one per
// exit. Packet bytes are read with 8-byte loads at per-literal bounds checks.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define WSD_PORT 3702
#define LEADER_PORT 3703 /* leaders re-multicast forwarded probes from this port */
#define MAX_IDS 8
#define ID_LEN 32
#define TOKEN_LEN 64
#define MSGID_MAX 64
#define MAX_PAYLOAD 2048
#define MAX_WS 15
#define MAX_SLOTS 64

/* Config flags (config.flags). */
#define CFG_FORWARD 1     /* the leader forwards probes for segments held nowhere known */
#define CFG_HELD_SYNCED 2 /* the held map lists every segment the store holds */
#define CFG_PEER_SYNCED 4 /* the peer map lists every segment peers are known to hold */

/* Outcomes, one per-CPU counter each. */
enum counter {
	C_OTHER,          /* not UDP to port 3702: passed */
	C_FRAGMENT,       /* an IP fragment: passed (the stack reassembles) */
	C_WSD,            /* UDP datagrams to port 3702 */
	C_PASS_UNICAST,   /* to 3702 but not to the discovery group: passed */
	C_PASS_HEADER,    /* lengths that do not add up, truncated: passed */
	C_PASS_OVERSIZE,  /* larger than the fast path reads: passed */
	C_PASS_OTHER_WSD, /* not a PeerDist V1 probe the fast path knows (printers, Hello, other layouts): passed */
	C_PASS_V2,        /* a PeerDist V2 probe (base64 scopes): passed */
	C_PASS_UNCERTAIN, /* a PeerDist V1 probe not decoded with certainty: passed */
	C_PASS_CHECKSUM,  /* UDP checksum not verified (bad, or partial from this host): passed */
	C_PASS_RINGBUF,   /* the ring buffer was full: passed to the socket path */
	C_DROP_RATE,      /* over the per-source rate: dropped */
	C_DROP_NOT_HELD,  /* nothing held or known, forwarding off: dropped */
	C_CAPTURED,       /* handed to the leader on the ring buffer, then dropped */
	C_CAPTURED_HELD,  /* of those, with a segment in the held map */
	C_CAPTURED_PEER,  /* of those, with a segment in the peer map */
	C_PASS_VLAN,      /* to 3702 with an 802.1Q tag: passed to the VLAN's own device, whose program sees it untagged */
	C_MAX
};

struct counters {
	__u64 n[C_MAX];
};

struct config {
	__u64 rate_interval_ns; /* 0: no per-source limit */
	__u64 burst_ns;         /* (burst - 1) * rate_interval_ns */
	__u32 flags;
	__u32 pad;
};

struct id_key {
	__u8 b[ID_LEN];
};

struct addr_key {
	__u8 b[16];
};

/* What the leader gets for each captured probe. */
struct event {
	__u8 addr[16];   /* source address; IPv4 as ::ffff:a.b.c.d */
	__u32 ifindex;   /* interface it arrived on */
	__u16 port;      /* source port, host order */
	__u8 count;      /* segment IDs (1..MAX_IDS) */
	__u8 held;       /* bit i: ids[i] is in the held map */
	__u8 peer;       /* bit i: ids[i] is in the peer map */
	__u8 upper;      /* bit i: token i was written in upper case */
	__u8 msgid_len;  /* bytes of msgid used */
	__u8 pad;
	char msgid[MSGID_MAX];
	__u8 ids[MAX_IDS][ID_LEN];
};

/* Per-CPU working memory: decoded IDs (map keys must live in memory), the
 * addresses, and a cell that hides values from the verifier (launder). */
struct scratch {
	__u8 ids[MAX_IDS][ID_LEN];
	__u8 saddr[16];
	__u64 csum;    /* pseudo header + UDP header, ones' complement partial sum */
	__u64 no_csum; /* IPv4 datagram without a checksum */
	__u64 cell;
	/* The event's fields, from the main program to capture. */
	__u32 ev_ifindex, ev_plen, ev_msgid_off, ev_msgid_len;
	__u16 ev_port;
	__u8 ev_count, ev_held, ev_peer, ev_upper, ev_pad[2];
};

/* bpf2go -type needs the types referenced from globals. */
const struct event *unused_event __attribute__((unused));
const struct counters *unused_counters __attribute__((unused));
const struct config *unused_config __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct counters);
} stats SEC(".maps");

/* ifindex -> counters slot; interfaces without one count in slot 0. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} ifslots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* Segments the store holds (32-byte IDs), kept by the store's change feed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct id_key);
	__type(value, __u8);
} held SEC(".maps");

/* Segments peer leaders reported, kept from the leader's holders table. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct id_key);
	__type(value, __u8);
} peer SEC(".maps");

/* Per-source token bucket as GCRA: the theoretical arrival time, in ns. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct addr_key);
	__type(value, __u64);
} ratelimit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 19);
} events SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* ---- 8-byte packet words and SWAR helpers ---- */

typedef __u64 __attribute__((may_alias)) u64a;
typedef __u32 __attribute__((may_alias)) u32a;

#define ld64(p) (*(const u64a *)(p))
#define REP(c) (0x0101010101010101ULL * (__u64)(c))
#define HI REP(0x80)
#define LO7 REP(0x7f)

/* The 8 bytes of string literal s at i as a little-endian word; folded at
 * compile time. */
#define SB(s, i, k) ((__u64)(__u8)(s)[(i) + (k)] << (8 * (k)))
#define S8(s, i) (SB(s, i, 0) | SB(s, i, 1) | SB(s, i, 2) | SB(s, i, 3) | SB(s, i, 4) | SB(s, i, 5) | SB(s, i, 6) | SB(s, i, 7))

/* Non-zero unless the n (>= 8) bytes at p are s; the caller checked
 * p + n <= end. The last word overlaps the one before when n % 8 != 0. */
static __always_inline __u64 lit_diff(const __u8 *p, const char *s, const int n)
{
	__u64 d = 0;
#pragma unroll
	for (int i = 0; i + 8 <= n; i += 8)
		d |= ld64(p + i) ^ S8(s, i);
	if (n % 8)
		d |= ld64(p + n - 8) ^ S8(s, n - 8);
	return d;
}

/* 1 if x == 0, else 0, without a branch. */
static __always_inline __u64 is_zero(__u64 x)
{
	return ((x | (0 - x)) >> 63) ^ 1;
}

/* 0x80 in every byte of y that is zero (exact: no carries between bytes). */
static __always_inline __u64 zero_bytes(__u64 y)
{
	return ~(((y & LO7) + LO7) | y | LO7);
}

/* 0x80 in every byte of x in [lo, hi]. */
static __always_inline __u64 in_range(__u64 x, __u8 lo, __u8 hi)
{
	__u64 x7 = (x & LO7) | HI;
	__u64 ge_lo = (x7 - REP(lo)) & HI;
	__u64 gt_hi = (x7 - REP(hi + 1)) & HI;
	return ge_lo & ~gt_hi & ~(x & HI);
}

/* 0x80 in every byte of x that is XML white space. */
static __always_inline __u64 ws_flags(__u64 x)
{
	return zero_bytes(x ^ REP(' ')) | zero_bytes(x ^ REP('\t')) | zero_bytes(x ^ REP('\n')) |
	       zero_bytes(x ^ REP('\r'));
}

/* How many leading (lowest-addressed) bytes have 0x80 in flags: 0..8. */
static __always_inline __u64 lead_count(__u64 flags)
{
	__u64 other = ~flags & HI;
	__u64 low = other & (0 - other);
	__u64 k = ((low >> 7) * 0x0001020304050607ULL) >> 56;
	return k + (is_zero(other) << 3);
}

/* Length of the white-space run at p (p + 16 <= end checked): 0..16. */
static __always_inline __u64 ws_run(const __u8 *p)
{
	__u64 k1 = lead_count(ws_flags(ld64(p)));
	__u64 k2 = lead_count(ws_flags(ld64(p + 8)));
	return k1 + (k1 >> 3) * k2;
}

/* Bounds v to [0, mask] in a way every verifier follows: an AND the
 * compiler cannot drop. Older verifiers (Linux 6.1) lose the range of a
 * value computed with multiplications even after a comparison with a
 * constant, and refuse to add it to a packet pointer. */
#define BOUND(v, mask) asm volatile("%0 &= " #mask : "+r"(v))

/* Hides v from the verifier's value tracking: one state instead of one per
 * loop exit. The result must be bounded again by the caller. */
static __always_inline __u64 launder(struct scratch *s, __u64 v)
{
	*(volatile __u64 *)&s->cell = v;
	return *(volatile __u64 *)&s->cell;
}

/* Decodes 8 hex digits at p into 4 bytes at out. Returns 0x80 flags of the
 * bytes that are not hex digits; lower and upper collect letter cases. */
static __always_inline __u64 hex8(const __u8 *p, __u8 *out, __u64 *lower, __u64 *upper)
{
	__u64 x = ld64(p);
	__u64 digit = in_range(x, '0', '9');
	__u64 alpha = in_range(x | REP(0x20), 'a', 'f');
	__u64 small = (x << 2) & HI; /* the 0x20 bit of each byte, moved to 0x80 */
	*lower |= alpha & small;
	*upper |= alpha & ~small;
	__u64 v = (x & REP(0x0f)) + (alpha >> 7) * 9;
	__u64 pair = ((v & 0x00ff00ff00ff00ffULL) << 4) | ((v >> 8) & 0x00ff00ff00ff00ffULL);
	*(u32a *)out = (__u32)((pair & 0xff) | ((pair >> 8) & 0xff00) | ((pair >> 16) & 0xff0000) |
			       ((pair >> 24) & 0xff000000));
	return ~(digit | alpha) & HI;
}

static __always_inline int is_ws(__u8 c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* MessageID characters the fast path accepts: printable ASCII that XML
 * carries as itself (no markup, no entity references, no quotes). */
static __always_inline int msgid_char(__u8 c)
{
	return c > ' ' && c < 0x7f && c != '<' && c != '>' && c != '&' && c != '"' && c != '\'';
}

/* ---- the template ---- */

#define DECL_LOWER "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
#define DECL_UPPER "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
#define ENVELOPE                                                                                    \
	"<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\""                     \
	" xmlns:wsa=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\""                           \
	" xmlns:wsd=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\""                            \
	" xmlns:PeerDist=\"http://schemas.microsoft.com/p2p/2007/09/PeerDistributionDiscovery\">"
#define HEADER "<soap:Header>"
#define TO "<wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To>"
#define ACTION "<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</wsa:Action>"
#define MSGID_OPEN "<wsa:MessageID>"
#define MSGID_CLOSE "</wsa:MessageID>"
#define HEADER_CLOSE "</soap:Header>"
#define BODY "<soap:Body>"
#define PROBE "<wsd:Probe>"
#define TYPES_V1 "<wsd:Types>PeerDist:PeerDistData</wsd:Types>"
#define TYPES_V2 "<wsd:Types>PeerDist:PeerDistDataV2</wsd:Types>"
#define SCOPES "<wsd:Scopes MatchBy=\"http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0\">"
#define SCOPES_CLOSE "</wsd:Scopes>"
#define PROBE_CLOSE "</wsd:Probe>"
#define BODY_CLOSE "</soap:Body>"
#define ENVELOPE_CLOSE "</soap:Envelope>"

#define L(s) ((int)sizeof(s) - 1)

/* The shortest datagram that can match: one MessageID character, one token. */
#define MIN_PAYLOAD                                                                                    \
	(L(ENVELOPE) + L(HEADER) + L(TO) + L(ACTION) + L(MSGID_OPEN) + 1 + L(MSGID_CLOSE) +            \
	 L(HEADER_CLOSE) + L(BODY) + L(PROBE) + L(TYPES_V1) + L(SCOPES) + TOKEN_LEN + L(SCOPES_CLOSE) + \
	 L(PROBE_CLOSE) + L(BODY_CLOSE) + L(ENVELOPE_CLOSE))

/* Outcome of parsing: a counter to bump and pass, or a decoded probe. */
#define PARSED C_MAX

struct probe {
	__u32 msgid_off; /* MessageID offset in the payload */
	__u32 msgid_len;
	__u32 count;
	__u32 upper;
};

/* White space between elements: at most MAX_WS bytes. */
#define SKIP_WS(why)                                                  \
	do {                                                          \
		const __u8 *_p = pl + off;                            \
		barrier_var(_p);                                      \
		if (_p + 16 > end)                                    \
			return why;                                   \
		__u64 _k = ws_run(_p);                                \
		if (_k > MAX_WS)                                      \
			return why;                                   \
		BOUND(_k, 15);                                        \
		off += _k;                                            \
	} while (0)

/* The literal lit at the current offset, else return why. */
#define EXPECT(lit, why)                                              \
	do {                                                          \
		const __u8 *_p = pl + off;                            \
		barrier_var(_p);                                      \
		if (_p + L(lit) > end)                                \
			return why;                                   \
		if (lit_diff(_p, lit, L(lit)))                        \
			return why;                                   \
		off += L(lit);                                        \
	} while (0)

#define ELEMENT(lit, why)          \
	do {                       \
		SKIP_WS(why);      \
		EXPECT(lit, why);  \
	} while (0)

/* parse matches the payload [pl, end) against the template, decoding the
 * segment IDs into s->ids. It returns PARSED or the pass counter. */
static __always_inline int parse(const __u8 *pl, const __u8 *end, struct scratch *s, struct probe *pr)
{
	__u64 off = 0;

	/* Optional XML declaration (MIN_PAYLOAD bytes are there). */
	off = (is_zero(lit_diff(pl, DECL_LOWER, L(DECL_LOWER))) | is_zero(lit_diff(pl, DECL_UPPER, L(DECL_UPPER)))) *
	      L(DECL_LOWER);
	ELEMENT(ENVELOPE, C_PASS_OTHER_WSD);
	ELEMENT(HEADER, C_PASS_OTHER_WSD);
	ELEMENT(TO, C_PASS_OTHER_WSD);
	ELEMENT(ACTION, C_PASS_OTHER_WSD);
	ELEMENT(MSGID_OPEN, C_PASS_OTHER_WSD);

	/* The MessageID: 1..MSGID_MAX characters up to '<'. */
	{
		const __u8 *p = pl + off;
		barrier_var(p); /* checks and reads through this one register */
		if (p + MSGID_MAX + 1 > end)
			return C_PASS_OTHER_WSD;
		__u32 n = MSGID_MAX + 1;
		for (int i = 0; i <= MSGID_MAX; i++) {
			__u8 c = p[i];
			if (c == '<') {
				n = i;
				break;
			}
			if (!msgid_char(c))
				return C_PASS_OTHER_WSD;
		}
		if (n == 0 || n > MSGID_MAX)
			return C_PASS_OTHER_WSD;
		pr->msgid_off = off;
		pr->msgid_len = n;
		off = launder(s, off + n) & (MAX_PAYLOAD - 1);
	}
	EXPECT(MSGID_CLOSE, C_PASS_OTHER_WSD);
	ELEMENT(HEADER_CLOSE, C_PASS_OTHER_WSD);
	ELEMENT(BODY, C_PASS_OTHER_WSD);
	ELEMENT(PROBE, C_PASS_OTHER_WSD);
	SKIP_WS(C_PASS_OTHER_WSD);
	{
		const __u8 *p = pl + off;
		barrier_var(p); /* checks and reads through this one register */
		if (p + L(TYPES_V2) > end)
			return C_PASS_OTHER_WSD;
		if (lit_diff(p, TYPES_V1, L(TYPES_V1)))
			return lit_diff(p, TYPES_V2, L(TYPES_V2)) ? C_PASS_OTHER_WSD : C_PASS_V2;
		off += L(TYPES_V1);
	}
	/* From here on it is a PeerDist V1 probe: what does not fit is
	 * "uncertain", for the socket path to decide. */
	ELEMENT(SCOPES, C_PASS_UNCERTAIN);
	SKIP_WS(C_PASS_UNCERTAIN);

	/* Tokens: 64 hex digits each, separated by white space. */
	__u32 count = 0, upper = 0;
	__u8 next = 0;
	for (int t = 0; t < MAX_IDS; t++) {
		const __u8 *p = pl + off;
		barrier_var(p); /* checks and reads through this one register */
		if (p + TOKEN_LEN + 16 > end)
			return C_PASS_UNCERTAIN;
		__u64 bad = 0, lo = 0, up = 0;
#pragma unroll
		for (int w = 0; w < TOKEN_LEN / 8; w++)
			bad |= hex8(p + 8 * w, &s->ids[t][4 * w], &lo, &up);
		if (bad || (lo && up))
			return C_PASS_UNCERTAIN; /* not hex, or mixed case: no exact echo */
		upper |= (__u32)(1 - is_zero(up)) << t;
		__u64 k = ws_run(p + TOKEN_LEN);
		if (k > MAX_WS)
			return C_PASS_UNCERTAIN;
		BOUND(k, 15);
		const __u8 *q = p + TOKEN_LEN + k;
		barrier_var(q);
		if (q + 1 > end)
			return C_PASS_UNCERTAIN;
		next = *q;
		off += TOKEN_LEN + k;
		count = t + 1;
		if (next == '<')
			break;
		if (k == 0)
			return C_PASS_UNCERTAIN; /* longer than 64 digits (SHA-384/512 IDs) or junk */
	}
	if (next != '<')
		return C_PASS_UNCERTAIN; /* more than MAX_IDS tokens */
	off = launder(s, off) & (MAX_PAYLOAD - 1);
	pr->count = launder(s, count) & 15;
	pr->upper = launder(s, upper) & 0xff;

	EXPECT(SCOPES_CLOSE, C_PASS_UNCERTAIN);
	ELEMENT(PROBE_CLOSE, C_PASS_UNCERTAIN);
	ELEMENT(BODY_CLOSE, C_PASS_UNCERTAIN);
	ELEMENT(ENVELOPE_CLOSE, C_PASS_UNCERTAIN);

	/* Only white space may follow the root element. */
	{
		const __u8 *p = pl + off;
		barrier_var(p); /* checks and reads through this one register */
		for (int i = 0; i < 16; i++) {
			if (p + i + 1 > end)
				return PARSED;
			if (!is_ws(p[i]))
				return C_PASS_UNCERTAIN;
		}
		return C_PASS_UNCERTAIN;
	}
}

/* Ones' complement sum of the payload (plen bytes at pl, pl + plen == end)
 * added to s->csum: 1 if the UDP checksum is right. */
static __always_inline int checksum_ok(const __u8 *pl, __u32 plen, const __u8 *end, struct scratch *s)
{
	if (s->no_csum)
		return 1;
	__u64 sum = s->csum;
	__u32 words = plen / 8;
	/* A pointer of its own (an unknown offset, 0 at run time): the checks
	 * below then widen its range, not pl's, and the loop's exits merge. */
	const __u8 *p = pl + (launder(s, 0) & 1);
	for (int i = 0; i < MAX_PAYLOAD / 8; i++) {
		if (i >= words)
			break;
		barrier_var(p); /* keeps clang from rewriting the check below as end + 1 */
		if (p + 8 > end)
			return 0;
		__u64 w = ld64(p);
		sum += (w & 0xffffffff) + (w >> 32);
		p += 8;
	}
	__u32 rest = plen & 7;
	if (rest) {
		/* The last 8 bytes, of which the top rest are not summed yet. */
		const __u8 *q = pl + ((plen - 8) & (MAX_PAYLOAD - 1));
		if (q + 8 > end)
			return 0;
		__u64 w = ld64(q) >> (8 * (8 - rest));
		sum += (w & 0xffffffff) + (w >> 32);
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

static __always_inline void bump(struct counters *c, int i)
{
	if (c && i >= 0 && i < C_MAX)
		c->n[i]++;
}

/* pass_counted passes a frame that is not for the fast path, counted in
 * slot 0 (all interfaces together): other traffic, fragments, and tagged
 * discovery datagrams (C_PASS_VLAN), which are for a VLAN interface: only
 * that device (where the stack delivers them untagged, with itself as the
 * ingress) attributes them to the right subnet, and a NIC that strips
 * tags in hardware would hide the tag from this program anyway. The Go
 * side attaches to VLAN interfaces, not to their trunk port. */
static __always_inline int pass_counted(__u32 which)
{
	__u32 zero = 0;
	struct counters *c = bpf_map_lookup_elem(&stats, &zero);
	if (c && which < C_MAX)
		c->n[which]++;
	return XDP_PASS;
}

/* Over the per-source rate? GCRA: a bucket of burst tokens refilled at one
 * per rate_interval_ns. Racy across CPUs by design (a limit, not a count). */
static __always_inline int over_rate(struct config *cfg, struct scratch *s)
{
	if (!cfg->rate_interval_ns)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	struct addr_key key;
	__builtin_memcpy(&key, s->saddr, sizeof(key));
	__u64 *tat = bpf_map_lookup_elem(&ratelimit, &key);
	if (!tat) {
		__u64 next = now + cfg->rate_interval_ns;
		bpf_map_update_elem(&ratelimit, &key, &next, BPF_ANY);
		return 0;
	}
	__u64 t = *tat;
	if (t < now)
		t = now;
	if (t - now > cfg->burst_ns)
		return 1;
	*tat = t + cfg->rate_interval_ns;
	return 0;
}

/* capture checks the UDP checksum of a probe the leader is to answer and
 * hands it over on the ring buffer; it returns the verdict. It is a global
 * function, so the verifier checks it once, on its own, rather than once
 * for every way the main program reaches it. The caller left the probe's
 * fields in scratch. */
__attribute__((noinline)) int capture(struct xdp_md *ctx, __u32 hdrs, __u32 slot)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct counters *c = bpf_map_lookup_elem(&stats, &slot);
	if (!s || !c)
		return XDP_PASS;
	const __u8 *pl = data + (hdrs & 127);
	__u32 plen = s->ev_plen;
	if (plen > MAX_PAYLOAD || pl + plen > end || pl + plen < end)
		return XDP_PASS; /* cannot happen: the caller checked */
	if (!checksum_ok(pl, plen, end, s)) {
		c->n[C_PASS_CHECKSUM]++;
		return XDP_PASS;
	}
	__u32 mo = s->ev_msgid_off & (MAX_PAYLOAD - 1);
	const __u8 *m = pl + mo;
	if (m + MSGID_MAX > end)
		return XDP_PASS; /* cannot happen: the template follows the MessageID */
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		c->n[C_PASS_RINGBUF]++;
		return XDP_PASS;
	}
	__builtin_memcpy(e->addr, s->saddr, 16);
	e->ifindex = s->ev_ifindex;
	e->port = s->ev_port;
	e->count = s->ev_count;
	e->held = s->ev_held;
	e->peer = s->ev_peer;
	e->upper = s->ev_upper;
	e->msgid_len = s->ev_msgid_len;
	e->pad = 0;
#pragma unroll
	for (int i = 0; i < MSGID_MAX; i += 8)
		*(u64a *)&e->msgid[i] = ld64(m + i);
#pragma unroll
	for (int i = 0; i < MAX_IDS * ID_LEN; i += 8)
		*(u64a *)&((__u8 *)e->ids)[i] = *(u64a *)&((__u8 *)s->ids)[i];
	bpf_ringbuf_submit(e, 0);
	c->n[C_CAPTURED]++;
	if (s->ev_held)
		c->n[C_CAPTURED_HELD]++;
	if (s->ev_peer)
		c->n[C_CAPTURED_PEER]++;
	return XDP_DROP;
}

SEC("xdp")
int outpost_probe(struct xdp_md *ctx)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;
	const struct ethhdr *eth = (const void *)data;
	if ((const __u8 *)(eth + 1) > end)
		return XDP_PASS;
	__be16 proto = eth->h_proto;
	const __u8 *l3 = (const __u8 *)(eth + 1);
	__u32 hdrs = sizeof(*eth); /* bytes before the UDP payload */
	int tagged = 0;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		const struct vlan_hdr *vh = (const void *)l3;
		if ((const __u8 *)(vh + 1) > end)
			return XDP_PASS;
		proto = vh->proto;
		l3 = (const __u8 *)(vh + 1);
		hdrs += sizeof(*vh);
		tagged = 1;
	}

	__u32 zero = 0;
	struct scratch *s;
	const struct udphdr *udp;
	__u32 ulen;
	int unicast;
	if (proto == bpf_htons(ETH_P_IP)) {
		const struct iphdr *ip = (const void *)l3;
		if ((const __u8 *)(ip + 1) > end)
			return XDP_PASS;
		if (ip->protocol != IPPROTO_UDP)
			return pass_counted(C_OTHER);
		if (ip->frag_off & bpf_htons(0x3fff))
			return pass_counted(C_FRAGMENT); /* MF set or a non-zero offset */
		if (ip->ihl != 5)
			return pass_counted(C_OTHER); /* IPv4 options: never on discovery traffic */
		udp = (const void *)(ip + 1);
		if ((const __u8 *)(udp + 1) > end)
			return XDP_PASS;
		if (udp->dest != bpf_htons(WSD_PORT))
			return pass_counted(C_OTHER);
		if (tagged)
			return pass_counted(C_PASS_VLAN);
		s = bpf_map_lookup_elem(&scratch, &zero);
		if (!s)
			return XDP_PASS;
		ulen = bpf_ntohs(udp->len);
		unicast = ip->daddr != bpf_htonl(0xeffffffa); /* 239.255.255.250 */
		if (bpf_ntohs(ip->tot_len) != ulen + sizeof(*ip))
			ulen = 0; /* lengths disagree: pass */
		hdrs += sizeof(*ip) + sizeof(*udp);
		__u64 mapped[2] = {0, ((__u64)ip->saddr << 32) | 0xffff0000};
		__builtin_memcpy(s->saddr, mapped, 16);
		s->no_csum = udp->check == 0;
		s->csum = (__u64)ip->saddr + ip->daddr + bpf_htons(IPPROTO_UDP) + udp->len;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		const struct ipv6hdr *ip6 = (const void *)l3;
		if ((const __u8 *)(ip6 + 1) > end)
			return XDP_PASS;
		if (ip6->nexthdr == IPPROTO_FRAGMENT)
			return pass_counted(C_FRAGMENT);
		if (ip6->nexthdr != IPPROTO_UDP)
			return pass_counted(C_OTHER); /* extension headers: never on discovery traffic */
		udp = (const void *)(ip6 + 1);
		if ((const __u8 *)(udp + 1) > end)
			return XDP_PASS;
		if (udp->dest != bpf_htons(WSD_PORT))
			return pass_counted(C_OTHER);
		if (tagged)
			return pass_counted(C_PASS_VLAN);
		s = bpf_map_lookup_elem(&scratch, &zero);
		if (!s)
			return XDP_PASS;
		ulen = bpf_ntohs(udp->len);
		const __u32 *d = ip6->daddr.in6_u.u6_addr32;
		unicast = d[0] != bpf_htonl(0xff020000) || d[1] || d[2] || d[3] != bpf_htonl(0xc); /* ff02::c */
		if (bpf_ntohs(ip6->payload_len) != ulen)
			ulen = 0;
		hdrs += sizeof(*ip6) + sizeof(*udp);
		__builtin_memcpy(s->saddr, &ip6->saddr, 16);
		s->no_csum = 0; /* a zero checksum is invalid over IPv6: checksum_ok fails it */
		const __u32 *a = ip6->saddr.in6_u.u6_addr32;
		s->csum = (__u64)a[0] + a[1] + a[2] + a[3] + d[0] + d[1] + d[2] + d[3] + bpf_htons(IPPROTO_UDP) +
			  udp->len;
	} else {
		return pass_counted(C_OTHER);
	}
	s->csum += (__u64)udp->source + udp->dest + udp->len + udp->check;
	__u16 sport = bpf_ntohs(udp->source);

	/* From here on: discovery traffic, counted per interface. */
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 *slotp = bpf_map_lookup_elem(&ifslots, &ifindex);
	__u32 slot = slotp ? *slotp : 0;
	struct counters *c = bpf_map_lookup_elem(&stats, &slot);
	if (!c)
		return XDP_PASS;
	c->n[C_WSD]++;
	if (unicast) {
		c->n[C_PASS_UNICAST]++;
		return XDP_PASS;
	}

	/* One payload pointer whatever the headers were (see launder). */
	const __u8 *pl = data + (launder(s, hdrs) & 127);
	if (ulen < sizeof(*udp)) {
		c->n[C_PASS_HEADER]++;
		return XDP_PASS;
	}
	__u32 plen = ulen - sizeof(*udp);
	if (plen > MAX_PAYLOAD) {
		c->n[C_PASS_OVERSIZE]++;
		return XDP_PASS;
	}
	if (pl + plen > end || pl + plen < end) { /* truncated, or trailing bytes */
		c->n[C_PASS_HEADER]++;
		return XDP_PASS;
	}
	if (pl + MIN_PAYLOAD > end) {
		c->n[C_PASS_OTHER_WSD]++;
		return XDP_PASS;
	}

	struct probe pr = {};
	int r = parse(pl, end, s, &pr);
	if (r != PARSED) {
		bump(c, r);
		return XDP_PASS;
	}

	struct config *cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg)
		return XDP_PASS;
	if (over_rate(cfg, s)) {
		c->n[C_DROP_RATE]++;
		return XDP_DROP;
	}

	__u32 count = pr.count;
	if (count < 1 || count > MAX_IDS)
		return XDP_PASS;
	/* The bits collect in scratch memory, not registers: the verifier
	 * then follows one state per lookup outcome, not every combination. */
	volatile __u64 *bits = &s->cell;
	*bits = 0;
	for (int i = 0; i < MAX_IDS; i++) {
		if (i >= count)
			break;
		if (bpf_map_lookup_elem(&held, s->ids[i]))
			*bits |= 1 << i;
		else if (bpf_map_lookup_elem(&peer, s->ids[i]))
			*bits |= 1 << (8 + i);
	}
	__u32 held_bits = *bits & 0xff, peer_bits = (*bits >> 8) & 0xff;
	__u32 flags = cfg->flags;
	int unsure = !(flags & CFG_HELD_SYNCED) || !(flags & CFG_PEER_SYNCED);
	int forward = (flags & CFG_FORWARD) && sport != LEADER_PORT;
	if (!held_bits && !peer_bits && !unsure && !forward) {
		c->n[C_DROP_NOT_HELD]++;
		return XDP_DROP;
	}

	/* The leader answers (or forwards) it. */
	s->ev_ifindex = ifindex;
	s->ev_port = sport;
	s->ev_count = count;
	s->ev_held = held_bits;
	s->ev_peer = peer_bits;
	s->ev_upper = pr.upper;
	s->ev_msgid_off = pr.msgid_off;
	s->ev_msgid_len = pr.msgid_len;
	s->ev_plen = plen;
	return capture(ctx, hdrs, slot);
}

char __license[] SEC("license") = "Dual BSD/GPL";
