/* tests/unit/test_config.c: the guard/tunnel configuration grammar: a good file parses
 * to the values written; broken files give exactly the golden messages, all in one run. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "engine/route.h"
#include "base/diag.h"
#include "proxy/config.h"

static struct proxy_config cfg;

/* Parse text; returns the rc and the messages in *msgs (caller frees). */
static int parse(const char *text, enum proxy_kind kind, char **msgs)
{
	size_t len = 0;
	FILE *m = open_memstream(msgs, &len);
	assert_non_null(m);
	int rc = proxy_config_parse("t.conf", text, kind, &cfg, m);
	fclose(m);
	return rc;
}

static const char good_guard[] = "# a guard\n"
				 "user bmsgate\n"
				 "node plant-1\n"
				 "log syslog\n"
				 "listen tls 127.0.0.1:8802\n"
				 "listen plain 127.0.0.1:1502 allow 127.0.0.0/8 10.1.2.3 ::1\n"
				 "certificate /etc/bmsgate/guard.crt\n"
				 "key \"/etc/bmsgate/guard key.pem\"\n"
				 "ca /etc/bmsgate/ca.crt\n"
				 "crl /etc/bmsgate/crl.pem\n"
				 "policy /etc/bmsgate/hvac.policy\n"
				 "malformed exception\n"
				 "device ahu1 {\n"
				 "    address 127.0.0.1:5020\n"
				 "    units 1 5-7\n"
				 "    connections 2\n"
				 "    max-in-flight 4\n"
				 "    connect-timeout 2s\n"
				 "    response-timeout 500ms\n"
				 "    connect-delay 100ms\n"
				 "}\n"
				 "device rest {\n"
				 "    address [::1]:502\n"
				 "}\n"
				 "audit {\n"
				 "    file /var/log/bmsgate/audit.jsonl\n"
				 "    key /etc/bmsgate/audit.key\n"
				 "    sync 10ms\n"
				 "    results all\n"
				 "}\n"
				 "limits {\n"
				 "    connections 100\n"
				 "    connections-per-source 5\n"
				 "    idle-timeout 2m\n"
				 "    buffer-size 16k\n"
				 "    frame-size 200\n"
				 "}\n";

static void good_guard_parses(void **state)
{
	(void)state;
	char *msgs = NULL;
	int rc = parse(good_guard, PROXY_GUARD, &msgs);
	assert_string_equal(msgs, "");
	assert_int_equal(rc, 0);
	free(msgs);
	assert_string_equal(cfg.user, "bmsgate");
	assert_string_equal(cfg.node, "plant-1");
	assert_true(cfg.syslog);
	assert_int_equal(cfg.nlisteners, 2);
	assert_int_equal(cfg.listeners[0].kind, PROXY_LISTEN_TLS);
	assert_int_equal(ntohs(((struct sockaddr_in *)&cfg.listeners[0].addr.ss)->sin_port), 8802);
	assert_int_equal(cfg.listeners[1].kind, PROXY_LISTEN_PLAIN);
	assert_int_equal(cfg.listeners[1].nnets, 3);
	assert_string_equal(cfg.key, "/etc/bmsgate/guard key.pem");
	assert_int_equal(cfg.npolicies, 1);
	assert_int_equal(cfg.malformed, PROXY_MALFORMED_EXCEPTION);
	assert_int_equal(cfg.ndevices, 2);
	assert_string_equal(cfg.devices[0].name, "ahu1");
	assert_int_equal(cfg.devices[0].connections, 2);
	assert_int_equal(cfg.devices[0].max_in_flight, 4);
	assert_int_equal(cfg.devices[0].connect_timeout_ms, 2000);
	assert_int_equal(cfg.devices[0].response_timeout_ms, 500);
	assert_int_equal(cfg.devices[0].connect_delay_ms, 100);
	assert_int_equal(cfg.devices[1].addr.ss.ss_family, AF_INET6);
	assert_string_equal(cfg.audit.file, "/var/log/bmsgate/audit.jsonl");
	assert_string_equal(cfg.audit.sync, "10ms");
	assert_true(cfg.audit.results_all);
	assert_int_equal(cfg.limits.connections, 100);
	assert_int_equal(cfg.limits.connections_per_source, 5);
	assert_int_equal(cfg.limits.idle_timeout_ms, 120000);
	assert_int_equal(cfg.limits.buffer_size, 16384);
	assert_int_equal(cfg.limits.frame_size, 200);
	/* untouched limits keep their defaults */
	assert_int_equal(cfg.limits.requests_in_flight, 16);
}

/* crl-stale: refuse by default, keep when asked, anything else an error; and the lines the
 * start-up checks quote (`file:line:`) are those of the settings. */
static void crl_stale_and_setting_lines(void **state)
{
	(void)state;
	char *msgs = NULL;
	assert_int_equal(parse(good_guard, PROXY_GUARD, &msgs), 0);
	free(msgs);
	assert_int_equal(cfg.crl_stale, PROXY_CRL_STALE_REFUSE);
	assert_int_equal(cfg.lines.user, 2);
	assert_int_equal(cfg.lines.certificate, 7);
	assert_int_equal(cfg.lines.key, 8);
	assert_int_equal(cfg.lines.ca, 9);
	assert_int_equal(cfg.lines.crl, 10);
	assert_int_equal(cfg.lines.policies[0], 11);
	assert_int_equal(cfg.devices[0].addr_line, 14);
	assert_int_equal(cfg.devices[1].addr_line, 23);
	assert_int_equal(cfg.lines.audit_file, 26);
	assert_int_equal(cfg.lines.audit_key, 27);

	char text[sizeof(good_guard) + 64];
	snprintf(text, sizeof(text), "crl-stale keep\n%s", good_guard);
	assert_int_equal(parse(text, PROXY_GUARD, &msgs), 0);
	free(msgs);
	assert_int_equal(cfg.crl_stale, PROXY_CRL_STALE_KEEP);
	snprintf(text, sizeof(text), "crl-stale refuse\n%s", good_guard);
	assert_int_equal(parse(text, PROXY_GUARD, &msgs), 0);
	free(msgs);
	assert_int_equal(cfg.crl_stale, PROXY_CRL_STALE_REFUSE);
	snprintf(text, sizeof(text), "crl-stale ignore\ncrl-stale keep\ncrl-stale keep\n%s", good_guard);
	assert_int_equal(parse(text, PROXY_GUARD, &msgs), -EINVAL);
	assert_string_equal(msgs, "t.conf:1:11: error: crl-stale: 'ignore' is neither refuse nor keep\n"
				  "t.conf:2:1: error: crl-stale given twice (first at line 1)\n"
				  "t.conf:3:1: error: crl-stale given twice (first at line 1)\n");
	free(msgs);
	/* a guard setting: the tunnel has no CRL to keep or refuse sessions by */
	assert_int_equal(parse("crl-stale keep\nlisten 127.0.0.1:1502\nguard 127.0.0.1:802\ncertificate c\nkey k\nca a\n",
			       PROXY_TUNNEL, &msgs),
			 -EINVAL);
	assert_string_equal(msgs, "t.conf:1:1: error: 'crl-stale' is not a tunnel setting\n");
	free(msgs);
}

static void routing_by_unit(void **state)
{
	(void)state;
	char *msgs = NULL;
	assert_int_equal(parse(good_guard, PROXY_GUARD, &msgs), 0);
	free(msgs);
	/* through the inspect step's route table, as the guard routes */
	static struct engine_routes rt;
	proxy_config_routes(&cfg, &rt);
	assert_int_equal(rt.n, cfg.ndevices);
	assert_int_equal(engine_route_modbus(&rt, 1)->index, 0);
	assert_int_equal(engine_route_modbus(&rt, 6)->index, 0);
	assert_int_equal(engine_route_modbus(&rt, 7)->index, 0);
	assert_string_equal(engine_route_modbus(&rt, 1)->name, cfg.devices[0].name);
	/* device "rest" has no units line: it takes every other unit */
	assert_int_equal(engine_route_modbus(&rt, 2)->index, 1);
	assert_int_equal(engine_route_modbus(&rt, 8)->index, 1);
	/* negative: without the catch-all, a unit no device names has no route */
	rt.routes[1].any_unit = false;
	engine_routes_index(&rt);
	assert_null(engine_route_modbus(&rt, 2));
	assert_int_equal(engine_route_modbus(&rt, 1)->index, 0);
}

static void net_matching(void **state)
{
	(void)state;
	char *msgs = NULL;
	assert_int_equal(parse(good_guard, PROXY_GUARD, &msgs), 0);
	free(msgs);
	const struct proxy_listener *l = &cfg.listeners[1];
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET, "127.9.8.7", &a4.sin_addr);
	assert_true(proxy_net_match(l, (struct sockaddr *)&a4));
	inet_pton(AF_INET, "10.1.2.3", &a4.sin_addr);
	assert_true(proxy_net_match(l, (struct sockaddr *)&a4));
	inet_pton(AF_INET, "10.1.2.4", &a4.sin_addr);
	assert_false(proxy_net_match(l, (struct sockaddr *)&a4));
	inet_pton(AF_INET6, "::1", &a6.sin6_addr);
	assert_true(proxy_net_match(l, (struct sockaddr *)&a6));
	inet_pton(AF_INET6, "::2", &a6.sin6_addr);
	assert_false(proxy_net_match(l, (struct sockaddr *)&a6));
	/* an IPv4 peer on a dual-stack socket arrives v4-mapped */
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr);
	assert_true(proxy_net_match(l, (struct sockaddr *)&a6));
}

/* Every error of a broken file, in order, in one run. */
static void broken_guard_golden(void **state)
{
	(void)state;
	static const char text[] = "listn tls 127.0.0.1:802\n"
				   "listen tls 127.0.0.1:99999\n"
				   "listen plain 127.0.0.1:1502\n"
				   "listen tlss 127.0.0.1:802\n"
				   "certificate a.crt\n"
				   "certificate b.crt\n"
				   "malformed maybe\n"
				   "guard 127.0.0.1:802\n"
				   "device ahu1 {\n"
				   "    adress 127.0.0.1:502\n"
				   "    response-timeout 500\n"
				   "    max-in-flight 0\n"
				   "    units 9-3\n"
				   "}\n"
				   "limits {\n"
				   "    idle-timeout soon\n"
				   "    buffer-size 12q\n"
				   "}\n"
				   "}\n"
				   "audit {\n"
				   "    sync sometimes\n";
	static const char want[] =
		"t.conf:1:1: error: unknown keyword 'listn' in top level (did you mean 'listen'?)\n"
		"t.conf:2:12: error: listen: '127.0.0.1:99999' has no valid port (1..65535)\n"
		"t.conf:3:1: error: listen plain: expected 'listen plain ADDRESS:PORT allow NETWORK...' (a plain listener must say who may use it)\n"
		"t.conf:4:8: error: listen: unknown kind 'tlss' (did you mean 'tls'?)\n"
		"t.conf:6:1: error: certificate given twice (first at line 5)\n"
		"t.conf:7:11: error: malformed: 'maybe' is neither close nor exception\n"
		"t.conf:8:1: error: 'guard' is not a guard setting\n"
		"t.conf:10:5: error: unknown keyword 'adress' in a device block (did you mean 'address'?)\n"
		"t.conf:11:22: error: response-timeout: '500' needs a unit (ms, s, m or h)\n"
		"t.conf:12:19: error: max-in-flight: 0 is out of range (1..64)\n"
		"t.conf:13:11: error: units: range 9-3 is inverted\n"
		"t.conf:16:18: error: idle-timeout: 'soon' is not a duration (e.g. 500ms, 10s, 5m)\n"
		"t.conf:17:17: error: buffer-size: '12q' is not a size (e.g. 4096, 16k)\n"
		"t.conf:19:1: error: '}' without an open block\n"
		"t.conf:21:10: error: sync: 'sometimes' is not a duration (e.g. 500ms, 10s, 5m)\n"
		"t.conf:20:1: error: block opened here is never closed with '}'\n"
		"t.conf: error: no 'listen' line: nothing to accept connections on\n"
		"t.conf: error: no 'policy FILE' line: the guard denies nothing without one and refuses to start\n"
		"t.conf: error: no audit file: add 'audit {' with 'file PATH' '}'\n"
		"t.conf:9:8: error: device 'ahu1' has no 'address HOST:PORT'\n";
	char *msgs = NULL;
	assert_int_equal(parse(text, PROXY_GUARD, &msgs), -EINVAL);
	assert_string_equal(msgs, want);
	free(msgs);
}

static void tunnel_golden(void **state)
{
	(void)state;
	static const char good[] = "listen 127.0.0.1:1502\n"
				   "guard localhost:8802\n"
				   "certificate c.crt\nkey c.key\nca ca.crt\n"
				   "backoff 2s\n"
				   "limits {\n connections 10\n}\n";
	char *msgs = NULL;
	assert_int_equal(parse(good, PROXY_TUNNEL, &msgs), 0);
	assert_string_equal(msgs, "");
	free(msgs);
	/* no server-name: the guard's host as written is the name its certificate must carry */
	assert_string_equal(cfg.server_name, "localhost");
	assert_int_equal(cfg.backoff_max_ms, 2000);
	assert_int_equal(cfg.limits.connections, 10);

	static const char bad[] = "listen tls 127.0.0.1:1502\n"
				  "policy x.policy\n"
				  "device d {\n"
				  "}\n"
				  "server-nmae guard.example\n";
	static const char want[] = "t.conf:1:12: error: listen: expected 'listen ADDRESS:PORT'\n"
				   "t.conf:2:1: error: 'policy' is not a tunnel setting\n"
				   "t.conf:3:1: error: 'device' is not a tunnel setting\n"
				   "t.conf:4:1: error: '}' without an open block\n"
				   "t.conf:5:1: error: unknown keyword 'server-nmae' in top level (did you mean 'server-name'?)\n"
				   "t.conf: error: no 'listen' line: nothing to accept connections on\n"
				   "t.conf: error: no 'guard HOST:PORT' line: nowhere to carry connections\n"
				   "t.conf: error: no 'certificate FILE': the tunnel needs its own certificate\n"
				   "t.conf: error: no 'key FILE'\n"
				   "t.conf: error: no 'ca FILE' (the site CA that signed the guard's certificate)\n";
	assert_int_equal(parse(bad, PROXY_TUNNEL, &msgs), -EINVAL);
	assert_string_equal(msgs, want);
	free(msgs);
}

static void overlapping_units_and_nets(void **state)
{
	(void)state;
	static const char text[] = "listen plain 0.0.0.0:1502 allow 10.0.0.1/24 banana 10.0.0.0/33\n"
				   "policy p\n"
				   "audit {\n file a.jsonl\n key a.key\n}\n"
				   "device a {\n address 127.0.0.1:502\n units 1-4\n}\n"
				   "device b {\n address 127.0.0.1:503\n units 4\n}\n"
				   "device c {\n address 127.0.0.1:504\n}\n"
				   "device d {\n address 127.0.0.1:505\n}\n"
				   "device a {\n address 127.0.0.1:506\n units 9\n}\n";
	static const char want[] =
		"t.conf:1:33: error: allow: '10.0.0.1/24' has host bits set beyond /24\n"
		"t.conf:1:45: error: allow: 'banana' is not an address or network (e.g. 10.0.0.0/24)\n"
		"t.conf:1:52: error: allow: '10.0.0.0/33' has a bad prefix length (0..32)\n"
		"t.conf:21:8: error: device 'a' defined twice (first at line 7)\n"
		"t.conf: error: no 'listen' line: nothing to accept connections on\n"
		"t.conf:11:8: error: device 'b': unit 4 is also routed to device 'a' (line 7)\n"
		"t.conf: error: 2 devices have no 'units' line: only one device may take every unit\n";
	char *msgs = NULL;
	assert_int_equal(parse(text, PROXY_GUARD, &msgs), -EINVAL);
	assert_string_equal(msgs, want);
	free(msgs);
}

/* Print the records of d in the one-line form into a string (caller frees). */
static char *printed(const struct bms_diag *d, bool source)
{
	char *msgs = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&msgs, &len);
	assert_non_null(m);
	if (source)
		bms_diag_print_source(d, m);
	else
		bms_diag_print(d, m);
	fclose(m);
	return msgs;
}

static void missing_file_and_long_lines(void **state)
{
	(void)state;
	struct bms_diag d;
	bms_diag_init(&d);
	assert_int_equal(proxy_config_load("/nonexistent/guard.conf", PROXY_GUARD, &cfg, &d), -ENOENT);
	char *msgs = printed(&d, false);
	assert_string_equal(msgs, "/nonexistent/guard.conf: error: cannot open: No such file or directory\n");
	free(msgs);
	bms_diag_free(&d);

	char *big = malloc(5000);
	assert_non_null(big);
	memset(big, 'x', 4000);
	memcpy(big + 4000, "\n", 2);
	assert_int_equal(parse(big, PROXY_TUNNEL, &msgs), -EINVAL);
	assert_non_null(strstr(msgs, "t.conf:1:1: error: line longer than 2048 characters\n"));
	free(msgs);
	free(big);
}

/* The shipped examples parse (their files do not exist here: the grammar is what is checked). */
static void shipped_examples_parse(void **state)
{
	(void)state;
	struct bms_diag d;
	bms_diag_init(&d);
	int g = proxy_config_load("etc/guard.conf", PROXY_GUARD, &cfg, &d);
	assert_int_equal(cfg.ndevices, 2);
	assert_int_equal(cfg.devices[1].connect_delay_ms, 200);
	int t = proxy_config_load("etc/tunnel.conf", PROXY_TUNNEL, &cfg, &d);
	assert_string_equal(cfg.server_name, "plant4-guard");
	char *msgs = printed(&d, false);
	assert_string_equal(msgs, "");
	assert_int_equal(g, 0);
	assert_int_equal(t, 0);
	free(msgs);
	bms_diag_free(&d);
}

static const char audit_base[] = "listen tls 127.0.0.1:8802\n"
				 "certificate g.crt\nkey g.key\nca ca.crt\n"
				 "policy site.policy\n"
				 "device ahu {\n address 127.0.0.1:5020\n}\n";

/* The audit block's rotation, checkpoint and copy settings reach the audit library. */
static void audit_rotation_and_checkpoints(void **state)
{
	(void)state;
	char text[1024];
	snprintf(text, sizeof(text),
		 "%saudit {\n"
		 "    file /var/log/bmsgate/audit.jsonl\n"
		 "    key a.key\n"
		 "    sync 2h\n"
		 "    rotate-size 64M\n"
		 "    rotate-age 24h\n"
		 "    checkpoint-records 500\n"
		 "    checkpoint-interval 1m\n"
		 "    checkpoint-copy \"/srv/security team/checkpoints.jsonl\"\n"
		 "    fail open\n"
		 "}\n",
		 audit_base);
	char *msgs = NULL;
	int rc = parse(text, PROXY_GUARD, &msgs);
	assert_string_equal(msgs, "");
	assert_int_equal(rc, 0);
	free(msgs);
	struct audit_config ac;
	proxy_config_audit(&cfg, &ac);
	assert_string_equal(ac.path, "/var/log/bmsgate/audit.jsonl");
	assert_string_equal(ac.key_path, "a.key");
	assert_string_equal(ac.checkpoint_copy_path, "/srv/security team/checkpoints.jsonl");
	assert_int_equal(ac.sync_always, 0);
	assert_int_equal(ac.sync_interval_ms, 7200000);
	assert_int_equal(ac.rotate_bytes, 64ull * 1024 * 1024);
	assert_int_equal(ac.rotate_seconds, 86400);
	assert_int_equal(ac.checkpoint_every_records, 500);
	assert_int_equal(ac.checkpoint_every_seconds, 60);
	assert_int_equal(ac.fail_open, 1);

	/* left out: the library's defaults (0), no copy, sync always */
	snprintf(text, sizeof(text), "%saudit {\n file a.jsonl\n key a.key\n}\n", audit_base);
	rc = parse(text, PROXY_GUARD, &msgs);
	assert_string_equal(msgs, "");
	assert_int_equal(rc, 0);
	free(msgs);
	proxy_config_audit(&cfg, &ac);
	assert_null(ac.checkpoint_copy_path);
	assert_int_equal(ac.sync_always, 1);
	assert_int_equal(ac.rotate_bytes, 0);
	assert_int_equal(ac.rotate_seconds, 0);
	assert_int_equal(ac.checkpoint_every_records, 0);
	assert_int_equal(ac.checkpoint_every_seconds, 0);
	assert_int_equal(ac.fail_open, 0);
}

static void audit_bad_values_golden(void **state)
{
	(void)state;
	char text[1024];
	snprintf(text, sizeof(text),
		 "%saudit {\n"
		 "    file a.jsonl\n"
		 "    key a.key\n"
		 "    rotate-size 1k\n"
		 "    rotate-age 1500ms\n"
		 "    checkpoint-records 0\n"
		 "    checkpoint-interval often\n"
		 "    checkpoint-copy a.jsonl\n"
		 "    rotate-size 5M\n"
		 "    rotate-sise 5M\n"
		 "    checkpoint-interval 2d\n"
		 "}\n",
		 audit_base);
	static const char want[] =
		"t.conf:12:17: error: rotate-size: 1k is out of range (65536..4294967295 bytes)\n"
		"t.conf:13:16: error: rotate-age: '1500ms' must be a whole number of seconds (at least 1s)\n"
		"t.conf:14:24: error: checkpoint-records: 0 is out of range (1..1000000)\n"
		"t.conf:15:25: error: checkpoint-interval: 'often' is not a duration (e.g. 500ms, 10s, 5m)\n"
		"t.conf:17:5: error: rotate-size given twice (first at line 12)\n"
		"t.conf:18:5: error: unknown keyword 'rotate-sise' in the audit block (did you mean 'rotate-size'?)\n"
		"t.conf:19:5: error: checkpoint-interval given twice (first at line 15)\n"
		"t.conf: error: audit: checkpoint-copy 'a.jsonl' is the audit file itself: name another file\n";
	char *msgs = NULL;
	assert_int_equal(parse(text, PROXY_GUARD, &msgs), -EINVAL);
	assert_string_equal(msgs, want);
	free(msgs);
}

/* `answers check|pass` per device: check is the default; anything else is an error. */
static void device_answers_setting(void **state)
{
	(void)state;
	static const char text[] = "listen tls 127.0.0.1:8802\n"
				   "certificate g.crt\nkey g.key\nca ca.crt\npolicy p.policy\naudit {\n    file a.jsonl\n    key a.key\n}\n"
				   "device a {\n    address 127.0.0.1:5020\n    units 1\n}\n"
				   "device b {\n    address 127.0.0.1:5021\n    units 2\n    answers pass\n}\n"
				   "device c {\n    address 127.0.0.1:5022\n    units 3\n    answers check\n}\n";
	char *msgs = NULL;
	int rc = parse(text, PROXY_GUARD, &msgs);
	assert_string_equal(msgs, "");
	assert_int_equal(rc, 0);
	free(msgs);
	assert_int_equal(cfg.ndevices, 3);
	assert_false(cfg.devices[0].answers_pass);
	assert_true(cfg.devices[1].answers_pass);
	assert_false(cfg.devices[2].answers_pass);

	static const char bad[] = "listen tls 127.0.0.1:8802\n"
				  "certificate g.crt\nkey g.key\nca ca.crt\npolicy p.policy\naudit {\n    file a.jsonl\n    key a.key\n}\n"
				  "device a {\n    address 127.0.0.1:5020\n    answers relay\n"
				  "    answers pass\n    answer check\n    answers\n}\n"
				  "answers pass\n";
	static const char want[] = "t.conf:12:13: error: answers: 'relay' is neither check nor pass\n"
				   "t.conf:13:5: error: answers given twice (first at line 12)\n"
				   "t.conf:14:5: error: unknown keyword 'answer' in a device block (did you mean 'answers'?)\n"
				   "t.conf:15:5: error: answers given twice (first at line 12)\n"
				   "t.conf:17:1: error: unknown keyword 'answers' in top level\n";
	msgs = NULL;
	assert_int_equal(parse(bad, PROXY_GUARD, &msgs), -EINVAL);
	assert_string_equal(msgs, want);
	free(msgs);
}

/* The grammar alone, over a buffer, with no resolver: numeric addresses only, the node from
 * the env; and what it records is what the parse returns. */
static int parse_pure(const char *text, size_t len, enum proxy_kind kind, const struct proxy_config_env *env,
		      bool source, char **msgs)
{
	struct bms_diag d;
	bms_diag_init(&d);
	int rc = proxy_config_parse_text("p.conf", text, len, kind, env, &cfg, &d);
	*msgs = printed(&d, source);
	assert_true((rc == 0) == (d.errors == 0));
	bms_diag_free(&d);
	return rc;
}

static const char tunnel_base[] = "listen 127.0.0.1:1502\ncertificate c\nkey k\nca a\n";

static void pure_grammar_env(void **state)
{
	(void)state;
	struct proxy_config_env env = { .node = "from-env" };
	char text[256], *msgs;
	snprintf(text, sizeof(text), "%sguard [::1]:802\n", tunnel_base);
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, &env, false, &msgs), 0);
	assert_string_equal(msgs, "");
	free(msgs);
	assert_string_equal(cfg.node, "from-env");
	assert_int_equal(cfg.guard.ss.ss_family, AF_INET6);
	assert_string_equal(cfg.server_name, "::1");
	/* a name needs the resolver the grammar was not given */
	snprintf(text, sizeof(text), "%sguard localhost:802\n", tunnel_base);
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, NULL, false, &msgs), -EINVAL);
	assert_string_equal(msgs, "p.conf:5:7: error: guard: cannot resolve 'localhost': not a numeric address, and no "
				  "resolver was given\n"
				  "p.conf: error: no 'guard HOST:PORT' line: nowhere to carry connections\n");
	free(msgs);
	assert_string_equal(cfg.node, "bmsgate");
	/* the system's env resolves it (the reader's, as guard and tunnel use) */
	proxy_config_env_system(&env);
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, &env, false, &msgs), 0);
	assert_string_equal(msgs, "");
	free(msgs);
	assert_string_equal(cfg.guard_host, "localhost");
}

/* What the shared tokenizer changes at the edges of a word, each with its negative: commas
 * are glued back into the word they touch (no comma syntax), a `"` starts a string even in
 * the middle of a word, paths keep their 511-byte bound though tokens are 255 bytes, and a
 * line with a byte that starts no token (NUL included) is reported at it and skipped whole. */
static void word_edges(void **state)
{
	(void)state;
	char text[2048], *msgs;
	snprintf(text, sizeof(text), "%sguard 127.0.0.1:802\nserver-name a,b,\n", tunnel_base);
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, NULL, false, &msgs), 0);
	free(msgs);
	assert_string_equal(cfg.server_name, "a,b,");
	snprintf(text, sizeof(text), "%sguard 127.0.0.1:802\nserver-name \"a\",b\nlimits {\n connections 1,2\n}\n",
		 tunnel_base);
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, NULL, false, &msgs), -EINVAL);
	assert_string_equal(msgs, "p.conf:6:16: error: server-name: expected 'server-name NAME'\n"
				  "p.conf:8:14: error: connections: '1,2' is not a number\n");
	free(msgs);
	/* `a"b c"`: the word a, then the string "b c" */
	snprintf(text, sizeof(text), "%sguard 127.0.0.1:802\nserver-name a\"b c\"\n", tunnel_base);
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, NULL, false, &msgs), -EINVAL);
	assert_string_equal(msgs, "p.conf:6:14: error: server-name: expected 'server-name NAME'\n");
	free(msgs);
	snprintf(text, sizeof(text), "%sguard 127.0.0.1:802\nserver-name \"a \\\"b\\\" \\\\c\"\n", tunnel_base);
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, NULL, false, &msgs), 0);
	free(msgs);
	assert_string_equal(cfg.server_name, "a \"b\" \\c");

	char path[600];
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[511] = '\0';
	snprintf(text, sizeof(text), "%sguard 127.0.0.1:802\ncrl %s\n", tunnel_base, path);
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, NULL, false, &msgs), 0);
	assert_string_equal(msgs, "");
	free(msgs);
	assert_int_equal(strlen(cfg.crl), 511);
	path[511] = 'p';
	path[512] = '\0';
	snprintf(text, sizeof(text), "%sguard 127.0.0.1:802\ncrl %s\n", tunnel_base, path);
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, NULL, false, &msgs), -EINVAL);
	assert_string_equal(msgs, "p.conf:6:5: error: crl: '/ppppppppppppppppppppppppppppppppppppppp...' is too long (at "
				  "most 511 characters)\n");
	free(msgs);

	static const char nul[] = "listen 127.0.0.1:1502\ncertificate c\nkey k\nca a\nguard 127.0.0.1:802\n"
				  "server-name x\0y\nnode \"n\n";
	assert_int_equal(parse_pure(nul, sizeof(nul) - 1, PROXY_TUNNEL, NULL, true, &msgs), -EINVAL);
	assert_string_equal(msgs, "p.conf:6:14: error: unexpected character 0x00\n"
				  "server-name x?y\n"
				  "             ^\n"
				  "p.conf:7:6: error: string is not closed before the end of the line\n"
				  "node \"n\n"
				  "     ^^\n");
	free(msgs);
	/* skipped whole: neither setting was taken */
	assert_string_equal(cfg.server_name, "127.0.0.1");
	assert_string_equal(cfg.node, "bmsgate");
}

/* Bounds of a line, each reported at the token concerned: 40 words, 2048 bytes. */
static void line_bounds(void **state)
{
	(void)state;
	char text[4096], *msgs;
	size_t n = (size_t)snprintf(text, sizeof(text), "%sguard 127.0.0.1:802\nlisten", tunnel_base);
	for (int i = 0; i < 39; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, " w");
	snprintf(text + n, sizeof(text) - n, "\nnode n\n");
	/* 40 words: the grammar's message, not the bound's */
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, NULL, false, &msgs), -EINVAL);
	assert_string_equal(msgs, "p.conf:6:10: error: listen: expected 'listen ADDRESS:PORT'\n");
	free(msgs);
	snprintf(text + n, sizeof(text) - n, " w {\nnode n\n");
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, NULL, false, &msgs), -EINVAL);
	assert_string_equal(msgs, "p.conf:6:86: error: too many words on one line (at most 40)\n");
	free(msgs);
	assert_string_equal(cfg.node, "n"); /* the next line is read */

	n = (size_t)snprintf(text, sizeof(text), "%sguard 127.0.0.1:802\nnode ", tunnel_base);
	memset(text + n, 'x', 2043);
	snprintf(text + n + 2043, sizeof(text) - n - 2043, "\n");
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, NULL, false, &msgs), -EINVAL);
	assert_string_equal(msgs, "p.conf:6:6: error: node: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is too long "
				  "(at most 63 characters)\n");
	free(msgs);
	memset(text + n, 'x', 2044);
	snprintf(text + n + 2044, sizeof(text) - n - 2044, "\n");
	assert_int_equal(parse_pure(text, strlen(text), PROXY_TUNNEL, NULL, false, &msgs), -EINVAL);
	assert_string_equal(msgs, "p.conf:6:1: error: line longer than 2048 characters\n");
	free(msgs);
}

/* The caret form of a broken file, as `guard -n` prints it; and the cap on records. */
static void caret_form_and_cap(void **state)
{
	(void)state;
	static const char text[] = "listen tls 127.0.0.1:802\n"
				   "certificate c\nkey k\nca a\npolicy p\naudit {\n\tfile a\n\tkey k\n}\n"
				   "device ahu {\n"
				   "\taddress 127.0.0.1:502\n"
				   "\tresponse-timeout 3  # ms?\n"
				   "}\n";
	char *msgs;
	assert_int_equal(parse_pure(text, strlen(text), PROXY_GUARD, NULL, true, &msgs), -EINVAL);
	assert_string_equal(msgs, "p.conf:12:19: error: response-timeout: '3' needs a unit (ms, s, m or h)\n"
				  "\tresponse-timeout 3  # ms?\n"
				  "\t                 ^\n");
	free(msgs);

	size_t cap = 1100 * 8 + 1;
	char *many = malloc(cap);
	assert_non_null(many);
	size_t n = 0;
	for (int i = 0; i < 1100; i++)
		n += (size_t)snprintf(many + n, cap - n, "nodee x\n");
	struct bms_diag d;
	bms_diag_init(&d);
	assert_int_equal(proxy_config_parse_text("m.conf", many, n, PROXY_TUNNEL, NULL, &cfg, &d), -EINVAL);
	assert_int_equal(d.errors, 1100 + 5);
	assert_int_equal(d.n, BMS_DIAG_LIMIT);
	assert_int_equal(d.dropped, 1105 - BMS_DIAG_LIMIT);
	assert_string_equal(d.v[BMS_DIAG_LIMIT - 1].msg, "unknown keyword 'nodee' in top level (did you mean 'node'?)");
	assert_int_equal(d.v[BMS_DIAG_LIMIT - 1].line, BMS_DIAG_LIMIT);
	msgs = printed(&d, true);
	assert_non_null(strstr(msgs, "\n... and 105 more not shown (at most 1000 are kept)\n"));
	free(msgs);
	bms_diag_free(&d);
	free(many);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_guard_parses),
		cmocka_unit_test(crl_stale_and_setting_lines),
		cmocka_unit_test(routing_by_unit),
		cmocka_unit_test(net_matching),
		cmocka_unit_test(broken_guard_golden),
		cmocka_unit_test(tunnel_golden),
		cmocka_unit_test(overlapping_units_and_nets),
		cmocka_unit_test(missing_file_and_long_lines),
		cmocka_unit_test(shipped_examples_parse),
		cmocka_unit_test(audit_rotation_and_checkpoints),
		cmocka_unit_test(audit_bad_values_golden),
		cmocka_unit_test(device_answers_setting),
		cmocka_unit_test(pure_grammar_env),
		cmocka_unit_test(word_edges),
		cmocka_unit_test(line_bounds),
		cmocka_unit_test(caret_form_and_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
