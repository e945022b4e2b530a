/* tests/tools/gw_modbus_client.c: a libmodbus client for the gateway tests.
 *
 *   gw_modbus_client [--unit N] [--timeout MS] [--repeat N] HOST PORT COMMAND [ARGS]...
 *
 * Commands (one line of output each, so tests can compare words):
 *   read ADDR N            holding registers  -> "ok V1 V2 ..."
 *   read-input ADDR N      input registers    -> "ok V1 ..."
 *   read-coils ADDR N      coils              -> "ok B1 ..."
 *   write ADDR VALUE       one register (FC 6) -> "ok"
 *   write-coil ADDR 0|1    one coil (FC 5)     -> "ok"
 *   raw HEXPDU             any PDU (function code first); prints the answer PDU in hex
 * A Modbus exception prints "exception 0xNN"; any other failure "error: TEXT".
 * --repeat N runs the command N times on one connection and prints one line per
 * distinct outcome with its count ("ok x100"), for load tests.
 * Exit status: 0 when every run ended in "ok", 1 otherwise, 2 for usage errors.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <modbus.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Runs one command; writes its outcome into out. Returns 0 for ok. */
static int run(modbus_t *m, int argc, char **argv, char *out, size_t outlen)
{
	const char *cmd = argv[0];
	int rc = -1;
	out[0] = '\0';
	if ((strcmp(cmd, "read") == 0 || strcmp(cmd, "read-input") == 0) && argc == 3) {
		uint16_t regs[125];
		int n = atoi(argv[2]);
		if (n < 1 || n > 125)
			n = 1;
		rc = cmd[4] == '-' ? modbus_read_input_registers(m, atoi(argv[1]), n, regs)
				   : modbus_read_registers(m, atoi(argv[1]), n, regs);
		if (rc > 0) {
			size_t off = (size_t)snprintf(out, outlen, "ok");
			for (int i = 0; i < rc && off < outlen; i++)
				off += (size_t)snprintf(out + off, outlen - off, " %u", regs[i]);
			return 0;
		}
	} else if (strcmp(cmd, "read-coils") == 0 && argc == 3) {
		uint8_t bits[2000];
		int n = atoi(argv[2]);
		if (n < 1 || n > 2000)
			n = 1;
		rc = modbus_read_bits(m, atoi(argv[1]), n, bits);
		if (rc > 0) {
			size_t off = (size_t)snprintf(out, outlen, "ok");
			for (int i = 0; i < rc && off < outlen; i++)
				off += (size_t)snprintf(out + off, outlen - off, " %u", bits[i]);
			return 0;
		}
	} else if (strcmp(cmd, "write") == 0 && argc == 3) {
		rc = modbus_write_register(m, atoi(argv[1]), (uint16_t)atoi(argv[2]));
		if (rc == 1) {
			snprintf(out, outlen, "ok");
			return 0;
		}
	} else if (strcmp(cmd, "write-coil") == 0 && argc == 3) {
		rc = modbus_write_bit(m, atoi(argv[1]), atoi(argv[2]));
		if (rc == 1) {
			snprintf(out, outlen, "ok");
			return 0;
		}
	} else if (strcmp(cmd, "raw") == 0 && argc == 2) {
		uint8_t req[260], rsp[MODBUS_TCP_MAX_ADU_LENGTH];
		size_t hl = strlen(argv[1]);
		if (hl % 2 || hl / 2 + 1 > sizeof(req)) {
			snprintf(out, outlen, "error: bad hex");
			return -1;
		}
		req[0] = (uint8_t)modbus_get_slave(m);
		for (size_t i = 0; i < hl / 2; i++) {
			int a = hexval(argv[1][2 * i]), b = hexval(argv[1][2 * i + 1]);
			if (a < 0 || b < 0) {
				snprintf(out, outlen, "error: bad hex");
				return -1;
			}
			req[1 + i] = (uint8_t)(a << 4 | b);
		}
		if (modbus_send_raw_request(m, req, (int)(hl / 2 + 1)) < 0) {
			snprintf(out, outlen, "error: %s", modbus_strerror(errno));
			return -1;
		}
		rc = modbus_receive_confirmation(m, rsp);
		if (rc > 7) {
			/* MBAP (7 bytes) then the PDU */
			size_t off = 0;
			if (rsp[7] & 0x80) {
				snprintf(out, outlen, "exception 0x%02x", rc > 8 ? rsp[8] : 0);
				return -1;
			}
			off = (size_t)snprintf(out, outlen, "ok ");
			for (int i = 7; i < rc && off + 2 < outlen; i++)
				off += (size_t)snprintf(out + off, outlen - off, "%02x", rsp[i]);
			return 0;
		}
	} else {
		snprintf(out, outlen, "error: unknown command or wrong arguments: %s", cmd);
		return -2;
	}
	if (errno > MODBUS_ENOBASE && errno < MODBUS_ENOBASE + 0x20)
		snprintf(out, outlen, "exception 0x%02x", errno - MODBUS_ENOBASE);
	else
		snprintf(out, outlen, "error: %s", modbus_strerror(errno));
	return -1;
}

int main(int argc, char **argv)
{
	int unit = 1, timeout_ms = 3000, repeat = 1, i = 1;
	/* a guard that closes or resets the connection must be an error here, not a signal */
	signal(SIGPIPE, SIG_IGN);
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (i + 1 >= argc)
			goto usage;
		if (strcmp(argv[i], "--unit") == 0)
			unit = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--timeout") == 0)
			timeout_ms = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--repeat") == 0)
			repeat = atoi(argv[i + 1]);
		else
			goto usage;
	}
	if (argc - i < 3 || repeat < 1)
		goto usage;
	modbus_t *m = modbus_new_tcp(argv[i], atoi(argv[i + 1]));
	if (!m) {
		printf("error: %s\n", modbus_strerror(errno));
		return 1;
	}
	modbus_set_slave(m, unit);
	modbus_set_response_timeout(m, (uint32_t)(timeout_ms / 1000), (uint32_t)(timeout_ms % 1000) * 1000);
	if (modbus_connect(m) < 0) {
		printf("error: connect: %s\n", modbus_strerror(errno));
		modbus_free(m);
		return 1;
	}
	char last[1024] = "", cur[1024];
	int count = 0, failures = 0;
	for (int r = 0; r < repeat; r++) {
		int rc = run(m, argc - i - 2, argv + i + 2, cur, sizeof(cur));
		if (rc == -2) {
			fprintf(stderr, "%s\n", cur);
			modbus_close(m);
			modbus_free(m);
			return 2;
		}
		if (rc != 0)
			failures++;
		if (count && strcmp(cur, last) != 0) {
			printf(repeat > 1 ? "%s x%d\n" : "%s\n", last, count);
			count = 0;
		}
		snprintf(last, sizeof(last), "%s", cur);
		count++;
	}
	if (repeat > 1)
		printf("%s x%d\n", last, count);
	else
		printf("%s\n", last);
	modbus_close(m);
	modbus_free(m);
	return failures ? 1 : 0;
usage:
	fprintf(stderr, "usage: gw_modbus_client [--unit N] [--timeout MS] [--repeat N] HOST PORT COMMAND [ARGS]...\n");
	return 2;
}
