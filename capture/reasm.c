/* capture/reasm.c: TCP reassembly, first-wins, bounded per flow, in total and in flow count.
 * See capture/reasm.h for the choices; sequence numbers compare modulo 2^32 (RFC 9293 3.4). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "capture/link.h"
#include "capture/reasm.h"

/* One buffered out-of-order piece. Pieces of a direction never overlap and are sorted by seq. */
struct seg {
	struct seg *next; /* owned */
	uint32_t seq;
	uint32_t len;
	uint8_t data[];
};

struct stream {
	uint32_t next_seq;  /* next byte to deliver */
	uint32_t ack_max;   /* highest acknowledgement the peer sent for this direction */
	uint32_t fin_seq;
	uint32_t syn_seq;
	uint8_t init, has_ack, has_fin, has_syn, done;
	unsigned pending;   /* events to report with the next delivery */
	struct seg *ooo;    /* owned list */
	size_t hist_len;    /* history bytes valid, ending at next_seq */
	uint8_t *hist;      /* borrowed: part of the flow allocation */
};

struct reasm_flow {
	struct reasm_flow *hnext;          /* hash chain */
	struct reasm_flow *lprev, *lnext;  /* LRU list, most recent first */
	uint32_t hash;
	struct reasm_key key;
	struct stream s[2];
	size_t bytes;                      /* out-of-order bytes buffered, both directions */
	unsigned char *app;                /* borrowed: part of the flow allocation */
};

struct reasm {
	struct reasm_config cfg;
	struct reasm_callbacks cb;
	struct reasm_flow **buckets; /* owned */
	size_t nbuckets;             /* a power of two */
	struct reasm_flow *lru_head, *lru_tail;
	struct reasm_flow *last; /* borrowed: the flow of the previous segment (cleared when it closes) */
	struct reasm_stats st;
};

static int seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static int seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }

static size_t pow2_ceil(size_t n)
{
	size_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

static uint32_t endpoint_hash(const uint8_t addr[16], uint16_t port)
{
	uint64_t a, b;
	memcpy(&a, addr, 8);
	memcpy(&b, addr + 8, 8);
	uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull) ^ port) * 0xFF51AFD7ED558CCDull;
	return (uint32_t)(h ^ (h >> 32));
}

/* Symmetric: both directions of a flow hash alike. */
static uint32_t key_hash(const struct reasm_key *k)
{
	uint32_t h = endpoint_hash(k->src, k->sport) + endpoint_hash(k->dst, k->dport);
	h ^= (uint32_t)k->vlan * 0x85EBCA6Bu ^ k->ipver;
	h ^= h >> 15;
	h *= 0x2C1B3C6Du;
	return h ^ (h >> 13);
}

/* 0 when `k` is the flow's direction 0, 1 when reversed, -1 when another flow. Inline: every
 * segment asks it once or twice. */
static BMS_HOT int key_dir(const struct reasm_key *fk, const struct reasm_key *k)
{
	if (fk->ipver != k->ipver || fk->vlan != k->vlan)
		return -1;
	if (fk->sport == k->sport && fk->dport == k->dport && memcmp(fk->src, k->src, 16) == 0 &&
	    memcmp(fk->dst, k->dst, 16) == 0)
		return 0;
	if (fk->sport == k->dport && fk->dport == k->sport && memcmp(fk->src, k->dst, 16) == 0 &&
	    memcmp(fk->dst, k->src, 16) == 0)
		return 1;
	return -1;
}

static void lru_unlink(struct reasm *r, struct reasm_flow *f)
{
	if (f->lprev)
		f->lprev->lnext = f->lnext;
	else
		r->lru_head = f->lnext;
	if (f->lnext)
		f->lnext->lprev = f->lprev;
	else
		r->lru_tail = f->lprev;
	f->lprev = f->lnext = NULL;
}

static void lru_push(struct reasm *r, struct reasm_flow *f)
{
	f->lprev = NULL;
	f->lnext = r->lru_head;
	if (r->lru_head)
		r->lru_head->lprev = f;
	r->lru_head = f;
	if (r->lru_tail == NULL)
		r->lru_tail = f;
}

/* Copies the last bytes delivered into the direction's history ring. */
static void hist_put(const struct reasm *r, struct stream *s, uint32_t seq, const uint8_t *data, size_t len)
{
	size_t cap = r->cfg.history_bytes;
	if (cap == 0)
		return;
	size_t n = len < cap ? len : cap;
	size_t off = len - n;
	size_t pos = (uint32_t)(seq + off) & (cap - 1);
	size_t first = cap - pos < n ? cap - pos : n;
	memcpy(s->hist + pos, data + off, first);
	if (n > first) /* wrapped around the ring */
		memcpy(s->hist, data + off + first, n - first);
	s->hist_len = s->hist_len + len > cap ? cap : s->hist_len + len;
}

/* 1 when bytes [seq, seq+len), already delivered, differ from the history where it still holds them. */
static int hist_differs(const struct reasm *r, const struct stream *s, uint32_t seq, const uint8_t *data, size_t len)
{
	size_t cap = r->cfg.history_bytes;
	uint32_t lo = s->next_seq - (uint32_t)s->hist_len;
	if (cap == 0 || s->hist_len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		uint32_t q = seq + (uint32_t)i;
		if (seq_lt(q, lo))
			continue; /* older than the history window: cannot compare */
		if (!seq_lt(q, s->next_seq))
			break;
		if (s->hist[q & (cap - 1)] != data[i])
			return 1;
	}
	return 0;
}

static void deliver(struct reasm *r, struct reasm_flow *f, int dir, const uint8_t *data, size_t len)
{
	struct stream *s = &f->s[dir];
	unsigned ev = s->pending;

	if (len == 0)
		return;
	s->pending = 0;
	hist_put(r, s, s->next_seq, data, len);
	s->next_seq += (uint32_t)len;
	r->cb.data(r->cb.user, f, dir, data, len, ev);
}

static void seg_free(struct reasm *r, struct reasm_flow *f, struct seg *g)
{
	size_t cost = sizeof(*g) + g->len;
	f->bytes -= cost;
	r->st.bytes_now -= cost;
	free(g);
}

static void skip_hole(struct reasm *r, struct stream *s, uint32_t to)
{
	r->st.gaps++;
	r->st.gap_bytes += (uint32_t)(to - s->next_seq);
	s->pending |= REASM_EV_GAP;
	s->next_seq = to;
	/* The history ends at next_seq: after a jump it would hold bytes at the wrong place. */
	s->hist_len = 0;
}

/* Delivers buffered pieces that have become contiguous. A hole is skipped when
 * the peer acknowledged past it (the capture lost those bytes) or `skip_all`. */
static void drain(struct reasm *r, struct reasm_flow *f, int dir, int skip_all)
{
	struct stream *s = &f->s[dir];
	struct seg *g;

	while ((g = s->ooo) != NULL) {
		uint32_t end = g->seq + g->len;
		if (seq_lt(s->next_seq, g->seq)) {
			if (!(skip_all || (s->has_ack && seq_le(g->seq, s->ack_max))))
				break;
			skip_hole(r, s, g->seq);
		}
		s->ooo = g->next;
		if (seq_lt(s->next_seq, end)) {
			uint32_t trim = s->next_seq - g->seq;
			deliver(r, f, dir, g->data + trim, g->len - trim);
		}
		seg_free(r, f, g);
	}
}

static int fits(const struct reasm *r, const struct reasm_flow *f, size_t len)
{
	size_t cost = sizeof(struct seg) + len;
	return f->bytes + cost <= r->cfg.max_flow_bytes && r->st.bytes_now + cost <= r->cfg.max_total_bytes;
}

static int seg_insert(struct reasm *r, struct reasm_flow *f, struct seg **at, uint32_t seq,
		      const uint8_t *data, size_t len, struct seg **made)
{
	/* Checked per piece: a segment that fills several holes is stored as several pieces,
	 * each with its own header, so the caller's check of the whole cannot bound them. */
	if (!fits(r, f, len))
		return -ENOSPC;
	struct seg *g = malloc(sizeof(*g) + len);
	if (g == NULL)
		return -ENOMEM;
	g->seq = seq;
	g->len = (uint32_t)len;
	memcpy(g->data, data, len);
	g->next = *at;
	*at = g;
	f->bytes += sizeof(*g) + len;
	r->st.bytes_now += sizeof(*g) + len;
	if (r->st.bytes_now > r->st.bytes_peak)
		r->st.bytes_peak = r->st.bytes_now;
	*made = g;
	return 0;
}

/* Buffers [seq, seq+len) around the pieces already held: first wins, differing overlaps flagged. */
static void buffer_ooo(struct reasm *r, struct reasm_flow *f, int dir, uint32_t seq, const uint8_t *p, size_t left)
{
	struct stream *s = &f->s[dir];
	struct seg **pp = &s->ooo;
	struct seg *made;

	while (left > 0) {
		struct seg *g = *pp;
		if (g == NULL || seq_le(seq + (uint32_t)left, g->seq)) {
			if (seg_insert(r, f, pp, seq, p, left, &made))
				goto nomem;
			return;
		}
		uint32_t gend = g->seq + g->len;
		if (seq_le(gend, seq)) {
			pp = &g->next;
			continue;
		}
		if (seq_lt(seq, g->seq)) {
			size_t n = (uint32_t)(g->seq - seq);
			if (seg_insert(r, f, pp, seq, p, n, &made))
				goto nomem;
			pp = &made->next;
			seq += (uint32_t)n;
			p += n;
			left -= n;
		}
		size_t n = (uint32_t)(gend - seq);
		if (n > left)
			n = left;
		if (memcmp(g->data + (uint32_t)(seq - g->seq), p, n) != 0) {
			s->pending |= REASM_EV_OVERLAP_DIFF;
			r->st.overlap_diff++;
		}
		seq += (uint32_t)n;
		p += n;
		left -= n;
		pp = &g->next;
	}
	return;
nomem:
	/* Over a limit (or out of memory) part-way: drop the rest and flag, as for the caps. */
	r->st.memcap_drops++;
	s->pending |= REASM_EV_MEMCAP | REASM_EV_GAP;
}

static void handle_data(struct reasm *r, struct reasm_flow *f, int dir, uint32_t seq, const uint8_t *data, size_t len)
{
	struct stream *s = &f->s[dir];
	int flushed = 0;

again:
	if (seq_le(seq + (uint32_t)len, s->next_seq)) {
		r->st.retransmitted++;
		if (hist_differs(r, s, seq, data, len)) {
			s->pending |= REASM_EV_OVERLAP_DIFF;
			r->st.overlap_diff++;
		}
		return;
	}
	if (seq_lt(seq, s->next_seq)) {
		size_t n = (uint32_t)(s->next_seq - seq);
		r->st.retransmitted++;
		if (hist_differs(r, s, seq, data, n)) {
			s->pending |= REASM_EV_OVERLAP_DIFF;
			r->st.overlap_diff++;
		}
		seq += (uint32_t)n;
		data += n;
		len -= n;
	}
	if (seq != s->next_seq && s->ooo == NULL && s->has_ack && seq_le(seq, s->ack_max))
		skip_hole(r, s, seq); /* the peer already has the bytes before seq: they are not coming */
	if (seq == s->next_seq) {
		deliver(r, f, dir, data, len);
		if (s->ooo != NULL) /* the common in-order case has nothing buffered: no call */
			drain(r, f, dir, 0);
		return;
	}
	if (!fits(r, f, len)) {
		if (!flushed) {
			/* Over a limit: give up waiting for this flow's holes, which frees its buffers. */
			flushed = 1;
			drain(r, f, dir, 1);
			drain(r, f, !dir, 1);
			goto again;
		}
		r->st.memcap_drops++;
		skip_hole(r, s, seq + (uint32_t)len);
		s->pending |= REASM_EV_MEMCAP;
		return;
	}
	r->st.out_of_order++;
	buffer_ooo(r, f, dir, seq, data, len);
	drain(r, f, dir, 0);
}

static void flow_close(struct reasm *r, struct reasm_flow *f, unsigned why)
{
	drain(r, f, 0, 1);
	drain(r, f, 1, 1);
	if (r->cb.close)
		r->cb.close(r->cb.user, f, why | f->s[0].pending | f->s[1].pending);
	struct reasm_flow **pp = &r->buckets[f->hash & (r->nbuckets - 1)];
	while (*pp != f)
		pp = &(*pp)->hnext;
	*pp = f->hnext;
	lru_unlink(r, f);
	if (r->last == f)
		r->last = NULL;
	r->st.flows_now--;
	free(f);
}

static struct reasm_flow *flow_new(struct reasm *r, const struct reasm_key *k, uint32_t h)
{
	if (r->st.flows_now >= r->cfg.max_flows && r->lru_tail != NULL) {
		r->st.evicted++;
		flow_close(r, r->lru_tail, REASM_EV_EVICTED);
	}
	size_t hist = r->cfg.history_bytes;
	/* The history rings are not cleared (hist_len says how much of each is valid): they are
	 * most of the allocation, and each new flow would zero them for nothing. */
	struct reasm_flow *f = malloc(sizeof(*f) + 2 * hist + r->cfg.app_size);
	if (f == NULL)
		return NULL;
	memset(f, 0, sizeof(*f));
	memset((unsigned char *)(f + 1) + 2 * hist, 0, r->cfg.app_size);
	f->hash = h;
	f->key = *k;
	unsigned char *tail = (unsigned char *)(f + 1);
	f->s[0].hist = tail;
	f->s[1].hist = tail + hist;
	f->app = tail + 2 * hist;
	f->hnext = r->buckets[h & (r->nbuckets - 1)];
	r->buckets[h & (r->nbuckets - 1)] = f;
	lru_push(r, f);
	r->st.flows++;
	r->st.flows_now++;
	return f;
}

int reasm_new(const struct reasm_config *cfg, const struct reasm_callbacks *cb, struct reasm **out)
{
	struct reasm *r = NULL;

	*out = NULL;
	if (cfg->max_flows == 0 || cb->data == NULL)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto fail;
	r->cfg = *cfg;
	r->cfg.history_bytes = cfg->history_bytes ? pow2_ceil(cfg->history_bytes) : 0;
	/* Round the app area up so that the flow allocation stays aligned for any type. */
	r->cfg.app_size = (cfg->app_size + 15) & ~(size_t)15;
	r->cb = *cb;
	r->nbuckets = pow2_ceil(cfg->max_flows < 1024 ? cfg->max_flows * 2 : cfg->max_flows);
	r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
	if (r->buckets == NULL)
		goto fail;
	*out = r;
	return 0;
fail:
	free(r);
	return -ENOMEM;
}

int reasm_tcp(struct reasm *r, const struct reasm_key *key, uint32_t seq, uint32_t ack, uint8_t flags,
	      const uint8_t *data, size_t len)
{
	uint32_t h;
	struct reasm_flow *f;
	int dir = -1;

	/* A request and its response usually follow each other: try the previous segment's flow
	 * before hashing (keys are unique in the table, so the answer is the same). */
	if (r->last != NULL && (dir = key_dir(&r->last->key, key)) >= 0) {
		f = r->last;
		h = f->hash;
	} else {
		h = key_hash(key);
		for (f = r->buckets[h & (r->nbuckets - 1)]; f != NULL; f = f->hnext)
			if (f->hash == h && (dir = key_dir(&f->key, key)) >= 0)
				break;
	}
	int pure_syn = (flags & (CAP_TCP_SYN | CAP_TCP_ACK)) == CAP_TCP_SYN;
	if (f != NULL && pure_syn && f->s[dir].init && !(f->s[dir].has_syn && f->s[dir].syn_seq == seq)) {
		/* A new connection on the same ports: the old one is over. */
		flow_close(r, f, REASM_EV_REUSED);
		f = NULL;
	}
	if (f == NULL) {
		if ((flags & CAP_TCP_RST) || (!(flags & CAP_TCP_SYN) && len == 0))
			return 0;
		f = flow_new(r, key, h);
		if (f == NULL)
			return -ENOMEM;
		dir = 0;
	} else if (r->lru_head != f) {
		lru_unlink(r, f);
		lru_push(r, f);
	}
	r->last = f;

	struct stream *s = &f->s[dir], *o = &f->s[!dir];
	if ((flags & CAP_TCP_ACK) && o->init) {
		if (!o->has_ack || seq_lt(o->ack_max, ack)) {
			o->ack_max = ack;
			o->has_ack = 1;
		}
		if (o->ooo != NULL)
			drain(r, f, !dir, 0);
	}
	if (flags & CAP_TCP_SYN) {
		if (!s->init) {
			s->init = 1;
			s->has_syn = 1;
			s->syn_seq = seq;
			s->next_seq = seq + 1;
		}
		seq += 1; /* the SYN occupies one sequence number; any data follows it */
	}
	if (!s->init) {
		s->init = 1; /* picked up mid-stream */
		s->next_seq = seq;
	}
	if (len > 0) {
		r->st.segments++;
		handle_data(r, f, dir, seq, data, len);
	}
	if ((flags & CAP_TCP_FIN) && !s->has_fin) {
		s->has_fin = 1;
		s->fin_seq = seq + (uint32_t)len;
	}
	for (int d = 0; d < 2; d++)
		if (f->s[d].has_fin && seq_le(f->s[d].fin_seq, f->s[d].next_seq))
			f->s[d].done = 1;
	if (flags & CAP_TCP_RST)
		flow_close(r, f, REASM_EV_RST);
	else if (f->s[0].done && f->s[1].done)
		flow_close(r, f, REASM_EV_FIN);
	return 0;
}

void reasm_finish(struct reasm *r)
{
	while (r->lru_head != NULL)
		flow_close(r, r->lru_head, REASM_EV_END);
}

void reasm_free(struct reasm *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nbuckets; i++) {
		struct reasm_flow *f = r->buckets[i];
		while (f != NULL) {
			struct reasm_flow *next = f->hnext;
			for (int d = 0; d < 2; d++) {
				struct seg *g = f->s[d].ooo;
				while (g != NULL) {
					struct seg *gn = g->next;
					free(g);
					g = gn;
				}
			}
			free(f);
			f = next;
		}
	}
	free(r->buckets);
	free(r);
}

const struct reasm_stats *reasm_stats(const struct reasm *r)
{
	return &r->st;
}

const struct reasm_key *reasm_flow_key(const struct reasm_flow *f)
{
	return &f->key;
}

void *reasm_flow_app(struct reasm_flow *f)
{
	return f->app;
}
