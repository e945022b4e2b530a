/* proxy/cmd_replay.c: `bmsgate replay`: a capture through the gateway's own inspect step.
 *
 * Every Modbus/TCP request in a pcap/pcapng capture goes through proxy_inspect(), the
 * function the guard calls on live traffic, with the capture's time as the clock (so rate
 * limits and time windows behave as they would have) and the request's destination as the
 * device. The identity is the source address, plus a certificate role or subject given on
 * the command line (what the controller's certificate would carry). It prints what the
 * guard would have done: forward, answer with an exception, or close.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "capture/engine.h"
#include "cmd/cmds.h"
#include "proxy/inspect.h"

struct replay {
	struct proxy_config cfg;        /* one catch-all device: the request's destination */
	struct bms_policy *policy;
	struct bms_policy_state *state;
	const char *role, *subject;
	bool json;
	uint64_t n, forward, answered, closed, by_verdict[3];
	uint64_t bacnet; /* BACnet/IP requests seen: the guard inspects Modbus/TCP only */
	struct proxy_verdict v;
};

static void addr_text(const struct cap_pdu *p, const uint8_t *a, uint16_t port, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	if (p->ipver == 4)
		inet_ntop(AF_INET, a, ip, sizeof(ip));
	else
		inet_ntop(AF_INET6, a, ip, sizeof(ip));
	snprintf(buf, len, p->ipver == 4 ? "%s:%u" : "[%s]:%u", ip, port);
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

static void sink(void *user, const struct cap_pdu *p)
{
	struct replay *r = user;
	if (p->req && p->req->proto == BMS_PROTO_BACNET && p->req->dir == BMS_DIR_REQUEST)
		r->bacnet++;
	if (!p->req || p->req->proto != BMS_PROTO_MODBUS || p->req->dir != BMS_DIR_REQUEST)
		return;
	struct bms_identity who;
	memset(&who, 0, sizeof(who));
	if (p->ipver == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&who.addr;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(p->sport);
		memcpy(&sin->sin_addr, p->src, 4);
		who.addr_len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&who.addr;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(p->sport);
		memcpy(&sin6->sin6_addr, p->src, 16);
		who.addr_len = sizeof(*sin6);
	}
	who.authenticated = r->role || r->subject;
	snprintf(who.role, sizeof(who.role), "%s", r->role ? r->role : "");
	snprintf(who.subject, sizeof(who.subject), "%s", r->subject ? r->subject : "");

	/* the device is where the request was going */
	struct proxy_device *d = &r->cfg.devices[0];
	memset(&d->addr.ss, 0, sizeof(d->addr.ss));
	if (p->ipver == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&d->addr.ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(p->dport);
		memcpy(&sin->sin_addr, p->dst, 4);
		d->addr.len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&d->addr.ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(p->dport);
		memcpy(&sin6->sin6_addr, p->dst, 16);
		d->addr.len = sizeof(*sin6);
	}
	struct proxy_inspect_ctx ctx = {
		.cfg = &r->cfg,
		.policy = r->policy,
		.state = r->state,
		.who = &who,
		.now_us = p->ts_sec * 1000000 + p->ts_usec,
	};
	struct proxy_verdict *v = &r->v;
	proxy_inspect(&ctx, p->bytes, p->len, v);
	const char *action = v->action == PROXY_FORWARD ? "forward" : v->action == PROXY_ANSWER ? "answer"
				: v->action == PROXY_CLOSE ? "close" : "incomplete";
	const char *decision = v->event.kind == AUDIT_MALFORMED ? "malformed"
			       : bms_verdict_name((enum bms_verdict)v->decision.verdict);
	char src[64], dst[64], rule[300] = "", exc[8] = "";
	addr_text(p, p->src, p->sport, src, sizeof(src));
	addr_text(p, p->dst, p->dport, dst, sizeof(dst));
	if (v->decision.rule_file)
		snprintf(rule, sizeof(rule), "%s:%u", v->decision.rule_file, v->decision.rule_line);
	if (v->action == PROXY_ANSWER && v->answer_len == 9)
		snprintf(exc, sizeof(exc), "0x%02x", v->answer[8]);
	const char *reason = v->event.kind == AUDIT_MALFORMED ? v->detail : v->decision.reason;
	r->n++;
	r->forward += v->action == PROXY_FORWARD;
	r->answered += v->action == PROXY_ANSWER;
	r->closed += v->action == PROXY_CLOSE;
	if (v->event.kind == AUDIT_DECISION && v->decision.verdict < 3)
		r->by_verdict[v->decision.verdict]++;
	if (r->json) {
		printf("{\"frame\":%llu,\"time_us\":%lld,\"src\":", (unsigned long long)p->frame, (long long)ctx.now_us);
		json_str(src);
		printf(",\"dst\":");
		json_str(dst);
		printf(",\"unit\":%u,\"fc\":%u,\"op\":\"%s\",\"decision\":\"%s\",\"action\":\"%s\"",
		       p->req->raw.modbus.unit, p->req->raw.modbus.fc, bms_op_name((enum bms_op)p->req->op), decision,
		       action);
		if (exc[0])
			printf(",\"exception\":\"%s\"", exc);
		if (rule[0]) {
			printf(",\"rule\":");
			json_str(rule);
		}
		printf(",\"reason\":");
		json_str(reason);
		printf("}\n");
	} else {
		printf("%6llu %s -> %s unit %u fc %u %-10s %-12s %s%s%s %s%s%s\n", (unsigned long long)p->frame, src, dst,
		       p->req->raw.modbus.unit, p->req->raw.modbus.fc, bms_op_name((enum bms_op)p->req->op), decision,
		       action, exc[0] ? " " : "", exc, rule[0] ? rule : "-", reason[0] ? ": " : "", reason);
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bmsgate replay --policy FILE [--policy FILE]... [--role ROLE] [--subject DN]\n"
		   "                      [--modbus-port N]... [--bacnet-port N]... [--malformed close|exception]\n"
		   "                      [--json] CAPTURE\n"
		   "Runs every Modbus/TCP request of a pcap/pcapng capture through the guard's inspect step\n"
		   "(frame, decode, decide) with the capture's clock, the request's destination as the device and\n"
		   "its source address (plus --role/--subject, as a certificate would carry) as the identity, and\n"
		   "prints what the guard would have done.\n"
		   "  --modbus-port N Modbus/TCP server port (repeatable; default %u, as for decode)\n"
		   "  --bacnet-port N BACnet/IP UDP port (repeatable; default %u): BACnet requests are counted,\n"
		   "                  not replayed (the guard inspects Modbus/TCP)\n"
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
	r.cfg.kind = PROXY_GUARD;
	r.cfg.limits.frame_size = MODBUS_MAX_ADU;
	r.cfg.ndevices = 1;
	r.cfg.devices[0].any_unit = true;
	snprintf(r.cfg.devices[0].name, sizeof(r.cfg.devices[0].name), "destination");
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
				r.cfg.malformed = PROXY_MALFORMED_CLOSE;
			else if (strcmp(optarg, "exception") == 0)
				r.cfg.malformed = PROXY_MALFORMED_EXCEPTION;
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
	fprintf(stderr,
		"bmsgate replay: %llu requests: %llu forwarded (%llu allowed, %llu monitor-deny), "
		"%llu answered by the gateway (%llu denied), %llu would close the connection\n",
		(unsigned long long)r.n, (unsigned long long)r.forward, (unsigned long long)r.by_verdict[BMS_VERDICT_ALLOW],
		(unsigned long long)r.by_verdict[BMS_VERDICT_MONITOR_DENY], (unsigned long long)r.answered,
		(unsigned long long)r.by_verdict[BMS_VERDICT_DENY], (unsigned long long)r.closed);
	if (r.bacnet)
		fprintf(stderr, "bmsgate replay: %llu BACnet/IP requests not replayed: the guard inspects Modbus/TCP only\n",
			(unsigned long long)r.bacnet);
	if (r.n == 0) {
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
