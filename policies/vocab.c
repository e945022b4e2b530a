/* policies/vocab.c: the BACnet words a policy may use (ASHRAE 135 clause 21:
 * BACnetObjectType, BACnetPropertyIdentifier, BACnetConfirmedServiceChoice,
 * BACnetUnconfirmedServiceChoice), spelt as BACnet tools print them, plus the
 * small helpers the compiler and the evaluator share. Numbers not listed here
 * may be written as plain numbers in a policy. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policies/policy_int.h"

const struct pol_word pol_object_types[] = {
	{ "analog-input", 0 }, { "analog-output", 1 }, { "analog-value", 2 }, { "binary-input", 3 },
	{ "binary-output", 4 }, { "binary-value", 5 }, { "calendar", 6 }, { "command", 7 }, { "device", 8 },
	{ "event-enrollment", 9 }, { "file", 10 }, { "group", 11 }, { "loop", 12 }, { "multi-state-input", 13 },
	{ "multi-state-output", 14 }, { "notification-class", 15 }, { "program", 16 }, { "schedule", 17 },
	{ "averaging", 18 }, { "multi-state-value", 19 }, { "trend-log", 20 }, { "life-safety-point", 21 },
	{ "life-safety-zone", 22 }, { "accumulator", 23 }, { "pulse-converter", 24 }, { "event-log", 25 },
	{ "global-group", 26 }, { "trend-log-multiple", 27 }, { "load-control", 28 }, { "structured-view", 29 },
	{ "access-door", 30 }, { "timer", 31 }, { "access-credential", 32 }, { "access-point", 33 },
	{ "access-rights", 34 }, { "access-user", 35 }, { "access-zone", 36 }, { "credential-data-input", 37 },
	{ "bitstring-value", 39 }, { "characterstring-value", 40 }, { "date-pattern-value", 41 },
	{ "date-value", 42 }, { "datetime-pattern-value", 43 }, { "datetime-value", 44 }, { "integer-value", 45 },
	{ "large-analog-value", 46 }, { "octetstring-value", 47 }, { "positive-integer-value", 48 },
	{ "time-pattern-value", 49 }, { "time-value", 50 }, { "notification-forwarder", 51 },
	{ "alert-enrollment", 52 }, { "channel", 53 }, { "lighting-output", 54 }, { "binary-lighting-output", 55 },
	{ "network-port", 56 }, { "elevator-group", 57 }, { "escalator", 58 }, { "lift", 59 },
	{ NULL, 0 },
};

const struct pol_word pol_properties[] = {
	{ "active-text", 4 }, { "all", 8 }, { "cov-increment", 22 }, { "deadband", 25 }, { "description", 28 },
	{ "effective-period", 32 }, { "event-state", 36 }, { "exception-schedule", 38 }, { "high-limit", 45 },
	{ "inactive-text", 46 }, { "low-limit", 59 }, { "max-pres-value", 65 }, { "min-pres-value", 69 },
	{ "number-of-states", 74 }, { "object-identifier", 75 }, { "object-list", 76 }, { "object-name", 77 },
	{ "object-type", 79 }, { "optional", 80 }, { "out-of-service", 81 }, { "polarity", 84 },
	{ "present-value", 85 }, { "priority-array", 87 }, { "reliability", 103 }, { "relinquish-default", 104 },
	{ "required", 105 }, { "setpoint", 108 }, { "state-text", 110 }, { "status-flags", 111 },
	{ "system-status", 112 }, { "time-delay", 113 }, { "units", 117 }, { "weekly-schedule", 123 },
	{ "log-buffer", 131 }, { "enable", 133 }, { "record-count", 141 }, { "schedule-default", 174 },
	{ "property-list", 371 },
	{ NULL, 0 },
};

const struct pol_word pol_confirmed_services[] = {
	{ "acknowledgeAlarm", 0 }, { "confirmedCOVNotification", 1 }, { "confirmedEventNotification", 2 },
	{ "getAlarmSummary", 3 }, { "getEnrollmentSummary", 4 }, { "subscribeCOV", 5 }, { "atomicReadFile", 6 },
	{ "atomicWriteFile", 7 }, { "addListElement", 8 }, { "removeListElement", 9 }, { "createObject", 10 },
	{ "deleteObject", 11 }, { "readProperty", 12 }, { "readPropertyConditional", 13 },
	{ "readPropertyMultiple", 14 }, { "writeProperty", 15 }, { "writePropertyMultiple", 16 },
	{ "deviceCommunicationControl", 17 }, { "confirmedPrivateTransfer", 18 }, { "confirmedTextMessage", 19 },
	{ "reinitializeDevice", 20 }, { "vtOpen", 21 }, { "vtClose", 22 }, { "vtData", 23 }, { "authenticate", 24 },
	{ "requestKey", 25 }, { "readRange", 26 }, { "lifeSafetyOperation", 27 }, { "subscribeCOVProperty", 28 },
	{ "getEventInformation", 29 }, { "subscribeCOVPropertyMultiple", 30 },
	{ "confirmedCOVNotificationMultiple", 31 }, { "confirmedAuditNotification", 32 }, { "auditLogQuery", 33 },
	{ NULL, 0 },
};

const struct pol_word pol_unconfirmed_services[] = {
	{ "i-Am", 0 }, { "i-Have", 1 }, { "unconfirmedCOVNotification", 2 }, { "unconfirmedEventNotification", 3 },
	{ "unconfirmedPrivateTransfer", 4 }, { "unconfirmedTextMessage", 5 }, { "timeSynchronization", 6 },
	{ "who-Has", 7 }, { "who-Is", 8 }, { "utcTimeSynchronization", 9 }, { "writeGroup", 10 },
	{ "unconfirmedCOVNotificationMultiple", 11 }, { "unconfirmedAuditNotification", 12 }, { "who-Am-I", 13 },
	{ "you-Are", 14 },
	{ NULL, 0 },
};

/* BACnet names are matched without regard to case ("writeproperty" is writeProperty). */
int64_t pol_word_find(const struct pol_word *w, const char *name)
{
	for (; w->name != NULL; w++)
		if (strcasecmp(w->name, name) == 0)
			return w->value;
	return -1;
}

const char *pol_word_name(const struct pol_word *w, uint32_t value)
{
	for (; w->name != NULL; w++)
		if (w->value == value)
			return w->name;
	return NULL;
}

void pol_fmt_num(char *buf, size_t n, double v)
{
	if (!isfinite(v)) {
		snprintf(buf, n, "%s", isnan(v) ? "NaN" : v < 0 ? "-inf" : "inf");
		return;
	}
	/* The common case, a value in tenths, without printf: reasons are worded on the hot path. */
	double tenths = v * 10;
	if (fabs(v) < 1e9 && fabs(tenths - nearbyint(tenths)) < 1e-6 * (fabs(tenths) > 1 ? fabs(tenths) : 1) && n >= 16) {
		long long t = llrint(tenths);
		char tmp[24];
		size_t k = 0;
		bool neg = t < 0;
		unsigned long long u = neg ? (unsigned long long)(-t) : (unsigned long long)t;
		tmp[k++] = (char)('0' + u % 10);
		tmp[k++] = '.';
		u /= 10;
		do {
			tmp[k++] = (char)('0' + u % 10);
			u /= 10;
		} while (u != 0);
		if (neg)
			tmp[k++] = '-';
		for (size_t i = 0; i < k; i++)
			buf[i] = tmp[k - 1 - i];
		buf[k] = '\0';
		return;
	}
	/* At least one decimal ("30.0" reads as a measurement), at most six. */
	for (int prec = 1; prec <= 6; prec++) {
		snprintf(buf, n, "%.*f", prec, v);
		double back = strtod(buf, NULL);
		if (fabs(back - v) <= 1e-9 * (fabs(v) > 1 ? fabs(v) : 1))
			return;
	}
	snprintf(buf, n, "%.6g", v);
}

/* FNV-1a, 64 bit: stable across runs and reloads, which is all the state keys need. */
uint64_t pol_hash(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t h = seed ? seed : 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}
