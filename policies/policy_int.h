/* policies/policy_int.h: the compiled policy, shared by the compiler, the
 * evaluator and the commands. Not for other modules: they use policy.h. */
#ifndef BMS_POLICY_INT_H
#define BMS_POLICY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policies/policy.h"
#include "base/suggest.h"

/* Names of devices, points, roles, schedules, in bytes with the NUL. A rule may name a
 * certificate role directly (a role no block declares), so a name holds any role. */
#define POL_NAME_MAX BMS_ROLE_MAX
#define POL_FULL_MAX (2 * POL_NAME_MAX + 2)
#define POL_MAX_ROLES 256
#define POL_ROLE_WORDS (POL_MAX_ROLES / 64)
#define POL_MAX_WINDOWS 16   /* windows in one schedule */
#define POL_MAX_FILES 64     /* files in one policy, includes counted */
#define POL_MAX_TZ_TRANS 2048

/* ---- time zone: transitions read from the TZif file at compile time ---- */
struct pol_tz_rule { /* one POSIX TZ "Mm.w.d/time" change */
	uint8_t month, week, wday;
	int32_t secs; /* local time of the change, seconds after midnight */
};
struct pol_tz {
	char name[POL_NAME_MAX];
	uint32_t ntrans;
	int64_t trans[POL_MAX_TZ_TRANS];   /* UTC seconds at which offs[i] begins */
	int32_t offs[POL_MAX_TZ_TRANS];
	int32_t before;                     /* offset before the first transition */
	/* after the last transition: the POSIX footer ("CET-1CEST,M3.5.0,M10.5.0/3") */
	bool has_rule, rule_dst;
	int32_t std_off, dst_off;           /* seconds east of UTC */
	struct pol_tz_rule start, end;
};
/* Offset east of UTC in seconds at a UTC time. */
int32_t pol_tz_offset(const struct pol_tz *tz, int64_t utc);
/* 0, or -EINVAL with a message in err: a zone name must be words joined by '/'. */
int pol_tz_check_name(const char *name, char *err, size_t errlen);
/* 0, or -EINVAL with a message in err naming `where`: TZif bytes of zone `name`. */
int pol_tz_parse(struct pol_tz *tz, const char *name, const uint8_t *data, size_t len, const char *where,
		 char *err, size_t errlen);
void pol_tz_utc(struct pol_tz *tz);

/* ---- vocabulary (vocab.c) ---- */
struct pol_word {
	const char *name;
	uint32_t value;
};
extern const struct pol_word pol_object_types[];
extern const struct pol_word pol_properties[];
extern const struct pol_word pol_confirmed_services[];
extern const struct pol_word pol_unconfirmed_services[];
/* Lookup: -1 when absent. */
int64_t pol_word_find(const struct pol_word *w, const char *name);
const char *pol_word_name(const struct pol_word *w, uint32_t value);

/* ---- the compiled policy ---- */
enum pol_dtype {
	POL_T_BIT = 0,  /* coil, discrete input */
	POL_T_UINT16,
	POL_T_INT16,
	POL_T_UINT32,
	POL_T_INT32,
	POL_T_FLOAT32,
	POL_T_BACNET,   /* whatever the BACnet value carries */
};

struct pol_src { /* where something was written */
	uint16_t file;
	uint32_t line, col;
	uint32_t off, width; /* byte offset and width of the token in its file: the caret in diagnostics */
};

struct pol_point { /* fields read by every decision first: a decision touches one cache line per point */
	uint32_t device;
	uint8_t space;             /* enum bms_space */
	uint8_t dtype;             /* enum pol_dtype */
	uint32_t start, count;     /* Modbus: first address (0-based, as on the wire), registers/coils */
	uint16_t object_type;      /* BACnet */
	uint32_t instance, property;
	double scale, offset;      /* engineering = raw * scale + offset */
	char unit[16];             /* "degC"; "" when none */
	bool has_range;
	double lo, hi;             /* equipment limits in engineering units: every write is held to them */
	uint64_t key;              /* state key: hash of the full name */
	struct pol_src src;
	bool used;
	char name[POL_NAME_MAX];
	char full[POL_FULL_MAX];   /* "ahu1.supply_air_setpoint" */
};

struct bms_policy_device {
	uint8_t proto;             /* enum bms_proto */
	int8_t mode;               /* -1 as the site, 0 enforce, 1 monitor */
	uint32_t point_first, npoints;
	uint32_t *rules;           /* owned: indices of rules that can apply here, in file order */
	uint32_t nrules;
	char name[POL_NAME_MAX];
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint64_t units[4];         /* Modbus unit ids 0..255 as a bit set */
	bool has_instance;
	uint32_t instance;         /* BACnet device instance */
	uint64_t key;
	struct pol_src src;
	bool used;
};

struct pol_window {
	uint8_t days;              /* bit 0 = Sunday .. bit 6 = Saturday */
	uint16_t from, to;         /* minutes after local midnight; from >= to runs past midnight */
};

struct pol_schedule {
	char name[POL_NAME_MAX];
	uint32_t nwin;
	struct pol_window win[POL_MAX_WINDOWS];
	struct pol_src src;
	bool used;
};

enum pol_member_kind { POL_M_CERT_ROLE, POL_M_SUBJECT, POL_M_FINGERPRINT, POL_M_ADDRESS };
struct pol_member {
	uint8_t kind;
	char text[BMS_SUBJECT_MAX];   /* role or subject */
	uint8_t fp[32];
	uint8_t family;               /* AF_INET / AF_INET6 */
	uint8_t net[16];
	uint8_t prefix;
};

struct pol_role {
	char name[POL_NAME_MAX];
	uint32_t member_first, nmembers;
	bool declared;                /* false: named by a rule only; matches the certificate role of that name */
	struct pol_src src;
	bool used;
};

enum pol_target_kind {
	POL_TGT_ALL = 0,   /* every device */
	POL_TGT_DEVICE,    /* everything on one device */
	POL_TGT_POINT,
	POL_TGT_RANGE,     /* raw Modbus range: space, lo..hi */
	POL_TGT_OBJECT,    /* BACnet object (type, instance or any, property or any) */
};
#define POL_ANY UINT32_MAX

struct pol_rule {
	bool allow;
	bool anyone;
	uint64_t roles[POL_ROLE_WORDS];
	/* what: op classes, or raw function codes / services */
	uint16_t ops;                 /* bit per enum bms_op; 0 when fcs/services are used */
	bool by_fc, by_service;
	uint64_t fcs[4];              /* Modbus function codes 0..255 */
	uint64_t svc_confirmed, svc_unconfirmed;
	/* where */
	uint8_t tkind;                /* enum pol_target_kind */
	uint32_t device, point;
	uint8_t space;
	uint32_t lo, hi;              /* RANGE: inclusive */
	uint16_t object_type;
	bool any_object_type;
	uint32_t instance, property;  /* POL_ANY = any */
	/* when */
	int32_t schedule;             /* -1: always */
	bool outside;                 /* `outside SCHEDULE` */
	/* limits (allow only) */
	bool has_value;
	double vlo, vhi;
	bool has_priority;
	uint8_t plo, phi;
	uint32_t rate_n;
	int64_t rate_period_us;
	int64_t interval_us;
	uint64_t key;                 /* state key: hash of the rule's words */
	struct pol_src src;
	uint8_t text_len;
	char text[160];               /* the rule's words, shortened, for diff and messages; last: cold */
};

/* Counters of rate limits and intervals (the state, outside any compiled policy). */
struct slot {
	uint64_t key;        /* 0 = empty */
	int64_t val;         /* rate limit: theoretical arrival time (GCRA); interval: time of the last write */
	int64_t free_after;  /* from then on the slot holds nothing a decision needs */
};

struct bms_policy_state {
	size_t mask;
	struct slot *slots;  /* owned */
};

struct bms_policy {
	uint64_t serial;              /* unique per compile in this process: stale role resolutions are caught */
	char hash[65];
	char site[128];
	int8_t site_mode;             /* 0 enforce, 1 monitor */
	struct pol_tz tz;
	uint64_t accept_anomalies[3]; /* per enum bms_proto */
	char (*files)[BMS_DIAG_FILE_MAX]; /* owned */
	uint32_t nfiles;
	struct bms_policy_device *devices;   /* owned */
	uint32_t ndevices;
	struct pol_point *points;     /* owned, grouped per device */
	uint32_t npoints;
	struct pol_role *roles;       /* owned */
	uint32_t nroles;
	struct pol_member *members;   /* owned */
	uint32_t nmembers;
	struct pol_schedule *schedules; /* owned */
	uint32_t nschedules;
	struct pol_rule *rules;       /* owned */
	uint32_t nrules;
	/* Identity index, built once per compile: certificate roles, subjects and fingerprints
	 * by hash (open addressing, hash 0 = empty slot), so that a decision does not compare
	 * an identity against every member. Addresses stay a list: they are few and need prefixes. */
	struct pol_idx { uint64_t hash; uint32_t role, member; } *idx; /* owned */
	uint32_t idx_mask;
	uint32_t n_cert, n_subject, n_fp;
	uint32_t *addr_members; /* owned: (role << 32 | member) pairs flattened as role, member */
	uint32_t n_addr;
	/* Devices by upstream address and port (open addressing, key 0 = empty): the gateway asks per request. */
	struct pol_devidx { uint64_t key; uint32_t dev; } *devidx; /* owned */
	uint32_t devidx_mask;
	uint32_t *global_rules;       /* unused after compile; kept for diff: rules with POL_TGT_ALL */
	uint32_t nglobal;
};

/* Evaluation core shared by bms_policy_decide, `explain` and `diff`: the identity
 * is given as the set of roles it holds (plus a label for reasons). */
void pol_decide_roles(const struct bms_policy *p, struct bms_policy_state *st, const uint64_t roles[POL_ROLE_WORDS],
		      const char *who_label, const struct bms_policy_device *dev, const struct bms_request *req,
		      int64_t now_unix_us, struct bms_decision *out);
void pol_identity_roles(const struct bms_policy *p, const struct bms_identity *who, uint64_t roles[POL_ROLE_WORDS]);
int32_t pol_role_find(const struct bms_policy *p, const char *name);
/* "24.5", "30.0": shortest decimal that reads back as the value. */
void pol_fmt_num(char *buf, size_t n, double v);
void pol_state_reset(struct bms_policy_state *st);
uint64_t pol_hash(const void *data, size_t len, uint64_t seed);
/* The identity index key of a member or identity field: never 0. */
uint64_t pol_idx_key(uint8_t kind, const void *data, size_t len);
int pol_build_identity_index(struct bms_policy *p);
int pol_build_device_index(struct bms_policy *p);
/* Key of an address and port (IPv4-mapped IPv6 folded to IPv4); 0 when the family is unknown. */
uint64_t pol_addr_key(const struct sockaddr *a, bool with_port);

#endif
