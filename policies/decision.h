/* policies/decision.h: what the policy engine answers (types only). */
#ifndef BMS_DECISION_H
#define BMS_DECISION_H

#include <stdint.h>

enum bms_verdict {
	BMS_VERDICT_DENY = 0,         /* zero value denies: an unset decision fails closed */
	BMS_VERDICT_ALLOW,
	BMS_VERDICT_MONITOR_DENY,     /* monitor mode: would be denied, passes, recorded as such */
};

#define BMS_REASON_MAX 192

struct bms_decision {
	uint8_t verdict;              /* enum bms_verdict */
	const char *rule_file;        /* borrowed from the compiled policy; NULL = default deny */
	uint32_t rule_line;
	char reason[BMS_REASON_MAX];  /* human words: "write 45.0 degC to ahu1.supply_air_setpoint above its limit 30.0" */
};

const char *bms_verdict_name(enum bms_verdict v);

#endif
