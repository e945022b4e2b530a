/* policies/decision.c: names for verdicts. */
#include "policies/decision.h"

const char *bms_verdict_name(enum bms_verdict v)
{
	switch (v) {
	case BMS_VERDICT_DENY: return "deny";
	case BMS_VERDICT_ALLOW: return "allow";
	case BMS_VERDICT_MONITOR_DENY: return "monitor-deny";
	}
	return "invalid";
}
