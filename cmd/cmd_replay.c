/* cmd/cmd_replay.c: `bmsgate replay`: a capture through the gateway's own inspect step.
 *
 * Every Modbus/TCP and BACnet/IP request in a pcap/pcapng capture goes through
 * engine_inspect(), the function the guard calls on live traffic, with the request the
 * capture engine decoded (one decode per PDU), the capture's time as the clock (so rate
 * limits and time windows behave as they would have) and the request's destination as the
 * device. The identity is the source address, plus a certificate role or subject given on
 * the command line (what the controller's certificate would carry); its policy roles are
 * resolved once per TCP connection (as the guard does per session) and once per run of
 * datagrams from one source. It prints what the guard would have done: forward, answer
 * (a Modbus exception, a BACnet Error/Reject/Abort), drop, or close.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "load/policy_files.h"
#include "capture/engine.h"
#include "cmd/cmds.h"
#include "engine/inspect.h"
#include "parsers/bacnet.h"
#include "parsers/modbus.h"
#include "proxy/config.h"

/* What the requests of one protocol came to. */
struct tally {
	uint64_t n, forward, answered, dropped, closed;
	uint64_t by_verdict[3];   /* decisions, by verdict */
	uint64_t denied_answered; /* denials answered by the gateway */
};

struct replay {
	/* a Modbus route for every unit and a BACnet one, both at the request's destination */
	struct engine_routes routes;
	struct bms_policy *policy;
	struct bms_policy_state *state;
	const char *role, *subject;
	bool json;
	struct tally modbus, bacnet;
	/* datagrams have no connection: the roles of the last source, kept while it stays the same */
	struct bms_policy_roles udp_roles;
	struct sockaddr_storage udp_src;
	struct engine_verdict v;
};

_Static_assert(sizeof(struct bms_policy_roles) <= CAP_FLOW_SCRATCH, "roles fit a flow's scratch");

static void addr_text(const struct cap_pdu *p, const uint8_t *a, uint16_t port, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	if (p->ipver == 4)
		inet_ntop(AF_INET, a, ip, sizeof(ip));
	else
		inet_ntop(AF_INET6, a, ip, sizeof(ip));
	snprintf(buf, len, p->ipver == 4 ? "%s:%u" : "[%s]:%u", ip, port);
}

static socklen_t sockaddr_of(const struct cap_pdu *p, const uint8_t *a, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (p->ipver == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, a, 4);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	memcpy(&sin6->sin6_addr, a, 16);
	return sizeof(*sin6);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* "readProperty", "i-Am", "write-BDT"...: what a BACnet request asked for. */
static const char *bacnet_what(const struct bms_request *q)
{
	const struct bacnet_fields *f = &q->raw.bacnet;
	if (f->has_apdu && f->has_service)
		return f->pdu_type == BACNET_PDU_CONFIRMED ? bacnet_confirmed_service_name(f->service)
							   : bacnet_unconfirmed_service_name(f->service);
	if (f->has_net_msg)
		return bacnet_net_msg_name(f->net_msg_type);
	return bacnet_bvlc_function_name(f->bvlc_function);
}

static void sink(void *user, const struct cap_pdu *p)
{
	struct replay *r = user;
	if (!p->req || p->req->dir != BMS_DIR_REQUEST)
		return;
	bool bacnet = p->req->proto == BMS_PROTO_BACNET;
	if (!bacnet && p->req->proto != BMS_PROTO_MODBUS)
		return;
	struct bms_identity who;
	memset(&who, 0, sizeof(who));
	who.addr_len = sockaddr_of(p, p->src, p->sport, &who.addr);
	who.authenticated = r->role || r->subject;
	snprintf(who.role, sizeof(who.role), "%s", r->role ? r->role : "");
	snprintf(who.subject, sizeof(who.subject), "%s", r->subject ? r->subject : "");

	/* the device is where the request was going */
	struct engine_route *route = &r->routes.routes[bacnet ? 1 : 0];
	route->addr_len = sockaddr_of(p, p->dst, p->dport, &route->addr);

	/* The identity's roles, resolved once per connection as the guard does: a TCP flow keeps
	 * them in its scratch (zeroed when the flow starts: serial 0, not resolved); datagrams
	 * keep the last source's. */
	struct bms_policy_roles roles;
	if (p->flow_scratch) {
		memcpy(&roles, p->flow_scratch, sizeof(roles));
	} else {
		if (memcmp(&r->udp_src, &who.addr, sizeof(who.addr)) != 0) {
			memcpy(&r->udp_src, &who.addr, sizeof(who.addr));
			r->udp_roles.serial = 0;
		}
		roles = r->udp_roles;
	}
	struct engine_ctx ctx = {
		.routes = &r->routes,
		.policy = r->policy,
		.state = r->state,
		.who = &who,
		.roles = &roles,
		.now_us = p->ts_sec * 1000000 + p->ts_usec,
	};
	struct engine_input in = {
		.proto = p->req->proto,
		.datagram = bacnet,
		.bytes = p->bytes,
		.len = p->len,
		.req = p->req,
		.req_result = p->result,
		.dst = (const struct sockaddr *)&route->addr,
	};
	struct engine_verdict *v = &r->v;
	engine_inspect(&ctx, &in, v);
	if (p->flow_scratch)
		memcpy(p->flow_scratch, &roles, sizeof(roles));
	else
		r->udp_roles = roles;

	const char *action = engine_action_name((enum engine_action)v->action);
	const char *decision = v->event.kind == AUDIT_MALFORMED ? "malformed"
			       : bms_verdict_name((enum bms_verdict)v->decision.verdict);
	char src[64], dst[64], rule[300] = "", answer[64];
	addr_text(p, p->src, p->sport, src, sizeof(src));
	addr_text(p, p->dst, p->dport, dst, sizeof(dst));
	if (v->decision.rule_file)
		snprintf(rule, sizeof(rule), "%s:%u", v->decision.rule_file, v->decision.rule_line);
	engine_answer_words(v, answer, sizeof(answer));
	const char *reason = v->event.kind == AUDIT_MALFORMED ? v->detail : v->decision.reason;
	struct tally *t = bacnet ? &r->bacnet : &r->modbus;
	t->n++;
	t->forward += v->action == ENGINE_FORWARD;
	t->answered += v->action == ENGINE_ANSWER;
	t->dropped += v->action == ENGINE_DROP;
	t->closed += v->action == ENGINE_CLOSE;
	if (v->event.kind == AUDIT_DECISION && v->decision.verdict < 3) {
		t->by_verdict[v->decision.verdict]++;
		t->denied_answered += v->decision.verdict == BMS_VERDICT_DENY && v->action == ENGINE_ANSWER;
	}
	const struct bms_request *q = v->req;
	if (r->json) {
		printf("{\"frame\":%llu,\"time_us\":%lld,\"src\":", (unsigned long long)p->frame, (long long)ctx.now_us);
		json_str(src);
		printf(",\"dst\":");
		json_str(dst);
		if (bacnet) {
			printf(",\"proto\":\"bacnet\",\"service\":");
			json_str(bacnet_what(q));
			if (q->raw.bacnet.has_invoke_id)
				printf(",\"invoke_id\":%u", q->raw.bacnet.invoke_id);
		} else {
			printf(",\"unit\":%u,\"fc\":%u", q->raw.modbus.unit, q->raw.modbus.fc);
		}
		printf(",\"op\":\"%s\",\"decision\":\"%s\",\"action\":\"%s\"", bms_op_name((enum bms_op)q->op),
		       decision, action);
		if (answer[0]) {
			printf(bacnet ? ",\"answer\":" : ",\"exception\":");
			json_str(answer);
		}
		if (rule[0]) {
			printf(",\"rule\":");
			json_str(rule);
		}
		printf(",\"reason\":");
		json_str(reason);
		printf("}\n");
	} else if (bacnet) {
		printf("%6llu %s -> %s bacnet %s %-10s %-12s %s%s%s %s%s%s\n", (unsigned long long)p->frame, src, dst,
		       bacnet_what(q), bms_op_name((enum bms_op)q->op), decision, action, answer[0] ? " " : "", answer,
		       rule[0] ? rule : "-", reason[0] ? ": " : "", reason);
	} else {
		printf("%6llu %s -> %s unit %u fc %u %-10s %-12s %s%s%s %s%s%s\n", (unsigned long long)p->frame, src, dst,
		       q->raw.modbus.unit, q->raw.modbus.fc, bms_op_name((enum bms_op)q->op), decision, action,
		       answer[0] ? " " : "", answer, rule[0] ? rule : "-", reason[0] ? ": " : "", reason);
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bmsgate replay --policy FILE [--policy FILE]... [--role ROLE] [--subject DN]\n"
		   "                      [--modbus-port N]... [--bacnet-port N]... [--malformed close|exception]\n"
		   "                      [--json] CAPTURE\n"
		   "Runs every Modbus/TCP and BACnet/IP request of a pcap/pcapng capture through the guard's\n"
		   "inspect step (frame, decide; each PDU decoded once, by the capture engine) with the capture's\n"
		   "clock, the request's destination as the device and its source address (plus --role/--subject,\n"
		   "as a certificate would carry) as the identity, and prints what the guard would have done:\n"
		   "forward, answer (Modbus exception; BACnet Error, Reject or Abort), drop, or close.\n"
		   "  --modbus-port N Modbus/TCP server port (repeatable; default %u, as for decode)\n"
		   "  --bacnet-port N BACnet/IP UDP port (repeatable; default %u)\n"
		   "  --malformed close|exception  what a malformed request gets (default close; exception:\n"
		   "                  Modbus exception 03, BACnet Reject where it can be answered)\n"
		   "Exit status: 0 done, 1 usage, 2 unreadable capture or policy.\n",
		CAP_MODBUS_PORT, CAP_BACNET_PORT);
}

int cmd_replay(int argc, char **argv)
{
	static struct replay r;
	const char *files[PROXY_MAX_POLICIES];
	size_t nfiles = 0;
	struct cap_config capcfg;
	struct cap_engine *e = NULL;
	pcap_t *pc = NULL;
	int status = 1, c;
	char errbuf[PCAP_ERRBUF_SIZE];
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'p' }, { "role", required_argument, NULL, 'r' },
		{ "subject", required_argument, NULL, 's' }, { "modbus-port", required_argument, NULL, 'm' },
		{ "bacnet-port", required_argument, NULL, 'b' },
		{ "malformed", required_argument, NULL, 'M' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },	    { NULL, 0, NULL, 0 },
	};
	memset(&r, 0, sizeof(r));
	cap_config_default(&capcfg);
	/* route 0: every Modbus unit; route 1: BACnet; both at the request's destination (sink) */
	engine_routes_init(&r.routes);
	struct engine_route *mb = engine_routes_add(&r.routes, BMS_PROTO_MODBUS);
	struct engine_route *bn = engine_routes_add(&r.routes, BMS_PROTO_BACNET);
	mb->any_unit = true;
	snprintf(mb->name, sizeof(mb->name), "destination");
	snprintf(bn->name, sizeof(bn->name), "destination");
	engine_routes_index(&r.routes);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (nfiles == PROXY_MAX_POLICIES) {
				fprintf(stderr, "bmsgate replay: at most %d policy files\n", PROXY_MAX_POLICIES);
				return 1;
			}
			files[nfiles++] = optarg;
			break;
		case 'r':
			/* the guard's limits, not a silent cut into another identity (as policy explain) */
			if (strlen(optarg) > BMS_ROLE_LEN) {
				fprintf(stderr, "bmsgate replay: --role '%s' is %zu bytes, longer than %d: a guard reads such a role as no role\n",
					optarg, strlen(optarg), BMS_ROLE_LEN);
				return 1;
			}
			r.role = optarg;
			break;
		case 's':
			if (strlen(optarg) > BMS_SUBJECT_LEN) {
				fprintf(stderr, "bmsgate replay: --subject '%s' is %zu bytes, longer than %d: a guard refuses such a certificate\n",
					optarg, strlen(optarg), BMS_SUBJECT_LEN);
				return 1;
			}
			r.subject = optarg;
			break;
		case 'm':
		case 'b': {
			const char *opt = c == 'm' ? "--modbus-port" : "--bacnet-port";
			char *end;
			errno = 0;
			unsigned long port = strtoul(optarg, &end, 10);
			if (errno || !*optarg || *end || port == 0 || port > 65535) {
				fprintf(stderr, "bmsgate replay: %s '%s' is not a port (1..65535)\n", opt, optarg);
				return 1;
			}
			if (cap_config_add_port(&capcfg, c == 'm' ? BMS_PROTO_MODBUS : BMS_PROTO_BACNET, (uint16_t)port)) {
				fprintf(stderr, "bmsgate replay: at most %d ports for %s\n", CAP_MAX_PORTS, opt);
				return 1;
			}
			break;
		}
		case 'M':
			if (strcmp(optarg, "close") == 0)
				r.routes.malformed = ENGINE_MALFORMED_CLOSE;
			else if (strcmp(optarg, "exception") == 0)
				r.routes.malformed = ENGINE_MALFORMED_ANSWER;
			else {
				fprintf(stderr, "bmsgate replay: --malformed '%s' is neither close nor exception\n", optarg);
				return 1;
			}
			break;
		case 'j':
			r.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (nfiles == 0 || optind != argc - 1) {
		usage(stderr);
		return 1;
	}
	/* The same defaults as `decode`: a port given replaces its protocol's default. */
	if (cap_config_default_ports(&capcfg))
		return 1;
	status = 2;
	struct bms_diag diags;
	bms_diag_init(&diags);
	int rc = bms_policy_load(files, nfiles, &r.policy, &diags);
	bms_diag_print(&diags, stderr);
	bms_diag_free(&diags);
	if (rc < 0)
		goto fail;
	r.state = bms_policy_state_new(0);
	if (!r.state)
		goto fail;
	pc = pcap_open_offline(argv[optind], errbuf);
	if (!pc) {
		fprintf(stderr, "bmsgate replay: cannot read capture %s: %s\n", argv[optind], errbuf);
		goto fail;
	}
	int dlt = pcap_datalink(pc);
	if (cap_engine_new(&capcfg, sink, &r, &e)) {
		fprintf(stderr, "bmsgate replay: out of memory\n");
		goto fail;
	}
	struct pcap_pkthdr *h;
	const u_char *data;
	int prc;
	while ((prc = pcap_next_ex(pc, &h, &data)) == 1)
		if (cap_engine_packet(e, dlt, h->ts.tv_sec, (int32_t)h->ts.tv_usec, data, h->caplen)) {
			fprintf(stderr, "bmsgate replay: out of memory\n");
			goto fail;
		}
	cap_engine_finish(e);
	if (prc == PCAP_ERROR) {
		fprintf(stderr, "bmsgate replay: %s: %s\n", argv[optind], pcap_geterr(pc));
		goto fail;
	}
	const struct tally *m = &r.modbus, *b = &r.bacnet;
	fprintf(stderr,
		"bmsgate replay: %llu requests: %llu forwarded (%llu allowed, %llu monitor-deny), "
		"%llu answered by the gateway (%llu denied), %llu would close the connection\n",
		(unsigned long long)m->n, (unsigned long long)m->forward, (unsigned long long)m->by_verdict[BMS_VERDICT_ALLOW],
		(unsigned long long)m->by_verdict[BMS_VERDICT_MONITOR_DENY], (unsigned long long)m->answered,
		(unsigned long long)m->denied_answered, (unsigned long long)m->closed);
	if (b->n)
		fprintf(stderr,
			"bmsgate replay: %llu BACnet/IP requests: %llu forwarded (%llu allowed, %llu monitor-deny), "
			"%llu answered by the gateway (%llu denied), %llu dropped unanswered, %llu would close the connection\n",
			(unsigned long long)b->n, (unsigned long long)b->forward,
			(unsigned long long)b->by_verdict[BMS_VERDICT_ALLOW],
			(unsigned long long)b->by_verdict[BMS_VERDICT_MONITOR_DENY], (unsigned long long)b->answered,
			(unsigned long long)b->denied_answered, (unsigned long long)b->dropped, (unsigned long long)b->closed);
	if (m->n == 0) {
		/* The first thing a user with a capture from a non-standard port needs to know. */
		char ports[CAP_MAX_PORTS * 7] = "";
		size_t len = 0;
		for (size_t i = 0; i < capcfg.n_modbus_ports; i++)
			len += (size_t)snprintf(ports + len, sizeof(ports) - len, "%s%u", i ? ", " : "",
						capcfg.modbus_ports[i]);
		fprintf(stderr, "bmsgate replay: no Modbus/TCP request on TCP port %s; is the device on another "
			"port (--modbus-port N)?\n", ports);
	}
	status = 0;
fail:
	cap_engine_free(e);
	if (pc)
		pcap_close(pc);
	bms_policy_state_free(r.state);
	bms_policy_free(r.policy);
	return status;
}
