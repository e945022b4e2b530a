/* parsers/bacnet_names.c: names and operation classes of BACnet codes.
 *
 * Service names are the ASN.1 production names of ASHRAE 135 clause 21 (BACnetConfirmedServiceChoice,
 * BACnetUnconfirmedServiceChoice), including choices later editions removed (13, 24, 25), so an old
 * device's traffic is still named. Anomaly names are stable: JSON output and the audit trail use them.
 */
#include "parsers/bacnet.h"

static const char *const confirmed_names[BACNET_SVC_CONFIRMED_COUNT] = {
	[BACNET_SVC_ACKNOWLEDGE_ALARM] = "acknowledgeAlarm",
	[BACNET_SVC_CONFIRMED_COV_NOTIFICATION] = "confirmedCOVNotification",
	[BACNET_SVC_CONFIRMED_EVENT_NOTIFICATION] = "confirmedEventNotification",
	[BACNET_SVC_GET_ALARM_SUMMARY] = "getAlarmSummary",
	[BACNET_SVC_GET_ENROLLMENT_SUMMARY] = "getEnrollmentSummary",
	[BACNET_SVC_SUBSCRIBE_COV] = "subscribeCOV",
	[BACNET_SVC_ATOMIC_READ_FILE] = "atomicReadFile",
	[BACNET_SVC_ATOMIC_WRITE_FILE] = "atomicWriteFile",
	[BACNET_SVC_ADD_LIST_ELEMENT] = "addListElement",
	[BACNET_SVC_REMOVE_LIST_ELEMENT] = "removeListElement",
	[BACNET_SVC_CREATE_OBJECT] = "createObject",
	[BACNET_SVC_DELETE_OBJECT] = "deleteObject",
	[BACNET_SVC_READ_PROPERTY] = "readProperty",
	[BACNET_SVC_READ_PROPERTY_CONDITIONAL] = "readPropertyConditional",
	[BACNET_SVC_READ_PROPERTY_MULTIPLE] = "readPropertyMultiple",
	[BACNET_SVC_WRITE_PROPERTY] = "writeProperty",
	[BACNET_SVC_WRITE_PROPERTY_MULTIPLE] = "writePropertyMultiple",
	[BACNET_SVC_DEVICE_COMMUNICATION_CONTROL] = "deviceCommunicationControl",
	[BACNET_SVC_CONFIRMED_PRIVATE_TRANSFER] = "confirmedPrivateTransfer",
	[BACNET_SVC_CONFIRMED_TEXT_MESSAGE] = "confirmedTextMessage",
	[BACNET_SVC_REINITIALIZE_DEVICE] = "reinitializeDevice",
	[BACNET_SVC_VT_OPEN] = "vtOpen",
	[BACNET_SVC_VT_CLOSE] = "vtClose",
	[BACNET_SVC_VT_DATA] = "vtData",
	[BACNET_SVC_AUTHENTICATE] = "authenticate",
	[BACNET_SVC_REQUEST_KEY] = "requestKey",
	[BACNET_SVC_READ_RANGE] = "readRange",
	[BACNET_SVC_LIFE_SAFETY_OPERATION] = "lifeSafetyOperation",
	[BACNET_SVC_SUBSCRIBE_COV_PROPERTY] = "subscribeCOVProperty",
	[BACNET_SVC_GET_EVENT_INFORMATION] = "getEventInformation",
	[BACNET_SVC_SUBSCRIBE_COV_PROPERTY_MULTIPLE] = "subscribeCOVPropertyMultiple",
	[BACNET_SVC_CONFIRMED_COV_NOTIFICATION_MULTIPLE] = "confirmedCOVNotificationMultiple",
	[BACNET_SVC_CONFIRMED_AUDIT_NOTIFICATION] = "confirmedAuditNotification",
	[BACNET_SVC_AUDIT_LOG_QUERY] = "auditLogQuery",
};

/* Operation classes. Notifications (COV, event, audit) carry a device's data to a subscriber
 * and change nothing a policy names: they are `read`, like the subscription that asked for
 * them. Alarm acknowledgement, life-safety operations, text messages and VT sessions make a
 * device act: `command`. */
static const uint8_t confirmed_ops[BACNET_SVC_CONFIRMED_COUNT] = {
	[BACNET_SVC_ACKNOWLEDGE_ALARM] = BMS_OP_COMMAND,
	[BACNET_SVC_CONFIRMED_COV_NOTIFICATION] = BMS_OP_READ,
	[BACNET_SVC_CONFIRMED_EVENT_NOTIFICATION] = BMS_OP_READ,
	[BACNET_SVC_GET_ALARM_SUMMARY] = BMS_OP_READ,
	[BACNET_SVC_GET_ENROLLMENT_SUMMARY] = BMS_OP_READ,
	[BACNET_SVC_SUBSCRIBE_COV] = BMS_OP_READ,
	[BACNET_SVC_ATOMIC_READ_FILE] = BMS_OP_FILE,
	[BACNET_SVC_ATOMIC_WRITE_FILE] = BMS_OP_FILE,
	[BACNET_SVC_ADD_LIST_ELEMENT] = BMS_OP_WRITE,
	[BACNET_SVC_REMOVE_LIST_ELEMENT] = BMS_OP_WRITE,
	[BACNET_SVC_CREATE_OBJECT] = BMS_OP_MANAGEMENT,
	[BACNET_SVC_DELETE_OBJECT] = BMS_OP_MANAGEMENT,
	[BACNET_SVC_READ_PROPERTY] = BMS_OP_READ,
	[BACNET_SVC_READ_PROPERTY_CONDITIONAL] = BMS_OP_READ,
	[BACNET_SVC_READ_PROPERTY_MULTIPLE] = BMS_OP_READ,
	[BACNET_SVC_WRITE_PROPERTY] = BMS_OP_WRITE,
	[BACNET_SVC_WRITE_PROPERTY_MULTIPLE] = BMS_OP_WRITE,
	[BACNET_SVC_DEVICE_COMMUNICATION_CONTROL] = BMS_OP_MANAGEMENT,
	[BACNET_SVC_CONFIRMED_PRIVATE_TRANSFER] = BMS_OP_PRIVATE,
	[BACNET_SVC_CONFIRMED_TEXT_MESSAGE] = BMS_OP_COMMAND,
	[BACNET_SVC_REINITIALIZE_DEVICE] = BMS_OP_MANAGEMENT,
	[BACNET_SVC_VT_OPEN] = BMS_OP_COMMAND,
	[BACNET_SVC_VT_CLOSE] = BMS_OP_COMMAND,
	[BACNET_SVC_VT_DATA] = BMS_OP_COMMAND,
	[BACNET_SVC_AUTHENTICATE] = BMS_OP_MANAGEMENT,
	[BACNET_SVC_REQUEST_KEY] = BMS_OP_MANAGEMENT,
	[BACNET_SVC_READ_RANGE] = BMS_OP_READ,
	[BACNET_SVC_LIFE_SAFETY_OPERATION] = BMS_OP_COMMAND,
	[BACNET_SVC_SUBSCRIBE_COV_PROPERTY] = BMS_OP_READ,
	[BACNET_SVC_GET_EVENT_INFORMATION] = BMS_OP_READ,
	[BACNET_SVC_SUBSCRIBE_COV_PROPERTY_MULTIPLE] = BMS_OP_READ,
	[BACNET_SVC_CONFIRMED_COV_NOTIFICATION_MULTIPLE] = BMS_OP_READ,
	[BACNET_SVC_CONFIRMED_AUDIT_NOTIFICATION] = BMS_OP_READ,
	[BACNET_SVC_AUDIT_LOG_QUERY] = BMS_OP_READ,
};

static const char *const unconfirmed_names[BACNET_USVC_COUNT] = {
	[BACNET_USVC_I_AM] = "i-Am",
	[BACNET_USVC_I_HAVE] = "i-Have",
	[BACNET_USVC_COV_NOTIFICATION] = "unconfirmedCOVNotification",
	[BACNET_USVC_EVENT_NOTIFICATION] = "unconfirmedEventNotification",
	[BACNET_USVC_PRIVATE_TRANSFER] = "unconfirmedPrivateTransfer",
	[BACNET_USVC_TEXT_MESSAGE] = "unconfirmedTextMessage",
	[BACNET_USVC_TIME_SYNCHRONIZATION] = "timeSynchronization",
	[BACNET_USVC_WHO_HAS] = "who-Has",
	[BACNET_USVC_WHO_IS] = "who-Is",
	[BACNET_USVC_UTC_TIME_SYNCHRONIZATION] = "utcTimeSynchronization",
	[BACNET_USVC_WRITE_GROUP] = "writeGroup",
	[BACNET_USVC_COV_NOTIFICATION_MULTIPLE] = "unconfirmedCOVNotificationMultiple",
	[BACNET_USVC_AUDIT_NOTIFICATION] = "unconfirmedAuditNotification",
	[BACNET_USVC_WHO_AM_I] = "who-Am-I",
	[BACNET_USVC_YOU_ARE] = "you-Are",
};

static const uint8_t unconfirmed_ops[BACNET_USVC_COUNT] = {
	[BACNET_USVC_I_AM] = BMS_OP_DISCOVERY,
	[BACNET_USVC_I_HAVE] = BMS_OP_DISCOVERY,
	[BACNET_USVC_COV_NOTIFICATION] = BMS_OP_READ,
	[BACNET_USVC_EVENT_NOTIFICATION] = BMS_OP_READ,
	[BACNET_USVC_PRIVATE_TRANSFER] = BMS_OP_PRIVATE,
	[BACNET_USVC_TEXT_MESSAGE] = BMS_OP_COMMAND,
	[BACNET_USVC_TIME_SYNCHRONIZATION] = BMS_OP_MANAGEMENT,
	[BACNET_USVC_WHO_HAS] = BMS_OP_DISCOVERY,
	[BACNET_USVC_WHO_IS] = BMS_OP_DISCOVERY,
	[BACNET_USVC_UTC_TIME_SYNCHRONIZATION] = BMS_OP_MANAGEMENT,
	[BACNET_USVC_WRITE_GROUP] = BMS_OP_WRITE,
	[BACNET_USVC_COV_NOTIFICATION_MULTIPLE] = BMS_OP_READ,
	[BACNET_USVC_AUDIT_NOTIFICATION] = BMS_OP_READ,
	[BACNET_USVC_WHO_AM_I] = BMS_OP_DISCOVERY,
	[BACNET_USVC_YOU_ARE] = BMS_OP_DISCOVERY,
};

const char *bacnet_confirmed_service_name(uint8_t service)
{
	if (service < BACNET_SVC_CONFIRMED_COUNT && confirmed_names[service] != NULL)
		return confirmed_names[service];
	return "unknown";
}

const char *bacnet_unconfirmed_service_name(uint8_t service)
{
	if (service < BACNET_USVC_COUNT && unconfirmed_names[service] != NULL)
		return unconfirmed_names[service];
	return "unknown";
}

enum bms_op bacnet_confirmed_service_op(uint8_t service)
{
	if (service < BACNET_SVC_CONFIRMED_COUNT)
		return (enum bms_op)confirmed_ops[service];
	return BMS_OP_UNKNOWN;
}

enum bms_op bacnet_unconfirmed_service_op(uint8_t service)
{
	if (service < BACNET_USVC_COUNT)
		return (enum bms_op)unconfirmed_ops[service];
	return BMS_OP_UNKNOWN;
}

static const char *const bvlc_names[] = {
	[BACNET_BVLC_RESULT] = "bvlc-result",
	[BACNET_BVLC_WRITE_BDT] = "write-broadcast-distribution-table",
	[BACNET_BVLC_READ_BDT] = "read-broadcast-distribution-table",
	[BACNET_BVLC_READ_BDT_ACK] = "read-broadcast-distribution-table-ack",
	[BACNET_BVLC_FORWARDED_NPDU] = "forwarded-npdu",
	[BACNET_BVLC_REGISTER_FD] = "register-foreign-device",
	[BACNET_BVLC_READ_FDT] = "read-foreign-device-table",
	[BACNET_BVLC_READ_FDT_ACK] = "read-foreign-device-table-ack",
	[BACNET_BVLC_DELETE_FDT_ENTRY] = "delete-foreign-device-table-entry",
	[BACNET_BVLC_DISTRIBUTE_BROADCAST] = "distribute-broadcast-to-network",
	[BACNET_BVLC_ORIGINAL_UNICAST] = "original-unicast-npdu",
	[BACNET_BVLC_ORIGINAL_BROADCAST] = "original-broadcast-npdu",
	[BACNET_BVLC_SECURE_BVLL] = "secure-bvll",
};

const char *bacnet_bvlc_function_name(uint8_t function)
{
	if (function < sizeof(bvlc_names) / sizeof(bvlc_names[0]))
		return bvlc_names[function];
	return "unknown";
}

/* Network layer message types (clause 6.2.4). */
static const char *const net_msg_names[] = {
	"who-is-router-to-network",
	"i-am-router-to-network",
	"i-could-be-router-to-network",
	"reject-message-to-network",
	"router-busy-to-network",
	"router-available-to-network",
	"initialize-routing-table",
	"initialize-routing-table-ack",
	"establish-connection-to-network",
	"disconnect-connection-to-network",
	"challenge-request",
	"security-payload",
	"security-response",
	"request-key-update",
	"update-key-set",
	"update-distribution-key",
	"request-master-key",
	"set-master-key",
	"what-is-network-number",
	"network-number-is",
};

const char *bacnet_net_msg_name(uint8_t type)
{
	if (type < sizeof(net_msg_names) / sizeof(net_msg_names[0]))
		return net_msg_names[type];
	if (type >= 0x80)
		return "proprietary";
	return "unknown";
}

const char *bacnet_pdu_type_name(uint8_t type)
{
	static const char *const names[8] = {
		"confirmed-request", "unconfirmed-request", "simple-ack", "complex-ack",
		"segment-ack", "error", "reject", "abort",
	};
	return type < 8 ? names[type] : "unknown";
}

static const char *const anomaly_names[BACNET_AN_COUNT] = {
	[BACNET_AN_BVLC_TRUNCATED] = "bvlc_truncated",
	[BACNET_AN_BVLC_BAD_TYPE] = "bvlc_bad_type",
	[BACNET_AN_BVLC_LENGTH_MISMATCH] = "bvlc_length_mismatch",
	[BACNET_AN_BVLC_UNKNOWN_FUNCTION] = "bvlc_unknown_function",
	[BACNET_AN_BVLC_BAD_LENGTH] = "bvlc_bad_length",
	[BACNET_AN_BVLC_BDT_ENTRY_LENGTH] = "bvlc_bdt_entry_length",
	[BACNET_AN_BVLC_FDT_ENTRY_LENGTH] = "bvlc_fdt_entry_length",
	[BACNET_AN_BVLC_BAD_RESULT_CODE] = "bvlc_bad_result_code",
	[BACNET_AN_BVLC_TOO_LONG] = "bvlc_too_long",
	[BACNET_AN_BVLC_SECURE] = "bvlc_secure_opaque",
	[BACNET_AN_NPDU_TRUNCATED] = "npdu_truncated",
	[BACNET_AN_NPDU_BAD_VERSION] = "npdu_bad_version",
	[BACNET_AN_NPDU_RESERVED_BITS] = "npdu_reserved_bits",
	[BACNET_AN_NPDU_BAD_DNET] = "npdu_bad_dnet",
	[BACNET_AN_NPDU_BAD_DLEN] = "npdu_bad_dlen",
	[BACNET_AN_NPDU_BAD_SNET] = "npdu_bad_snet",
	[BACNET_AN_NPDU_BAD_SLEN] = "npdu_bad_slen",
	[BACNET_AN_NPDU_ZERO_HOP_COUNT] = "npdu_zero_hop_count",
	[BACNET_AN_NPDU_UNKNOWN_MESSAGE] = "npdu_unknown_message",
	[BACNET_AN_NPDU_MESSAGE_TRUNCATED] = "npdu_message_truncated",
	[BACNET_AN_APDU_MISSING] = "apdu_missing",
	[BACNET_AN_APDU_TRUNCATED] = "apdu_truncated",
	[BACNET_AN_APDU_BAD_TYPE] = "apdu_bad_type",
	[BACNET_AN_APDU_RESERVED_BITS] = "apdu_reserved_bits",
	[BACNET_AN_APDU_BAD_MAX_APDU] = "apdu_bad_max_apdu",
	[BACNET_AN_APDU_BAD_WINDOW_SIZE] = "apdu_bad_window_size",
	[BACNET_AN_APDU_MOR_WITHOUT_SEG] = "apdu_mor_without_seg",
	[BACNET_AN_APDU_SEGMENTED] = "apdu_segmented",
	[BACNET_AN_APDU_TRAILING_DATA] = "apdu_trailing_data",
	[BACNET_AN_TAG_TRUNCATED] = "tag_truncated",
	[BACNET_AN_TAG_LENGTH_OVERFLOW] = "tag_length_overflow",
	[BACNET_AN_TAG_RESERVED] = "tag_reserved",
	[BACNET_AN_TAG_BAD_LENGTH] = "tag_bad_length",
	[BACNET_AN_TAG_NESTING_TOO_DEEP] = "tag_nesting_too_deep",
	[BACNET_AN_TAG_UNBALANCED] = "tag_unbalanced",
	[BACNET_AN_SERVICE_TRUNCATED] = "service_truncated",
	[BACNET_AN_SERVICE_UNEXPECTED_TAG] = "service_unexpected_tag",
	[BACNET_AN_SERVICE_TRAILING_DATA] = "service_trailing_data",
	[BACNET_AN_SERVICE_VALUE_RANGE] = "service_value_out_of_range",
	[BACNET_AN_BAD_PRIORITY] = "bad_priority",
	[BACNET_AN_TOO_MANY_TARGETS] = "too_many_targets",
	[BACNET_AN_UNKNOWN_SERVICE] = "unknown_service",
	[BACNET_AN_WHO_IS_HALF_RANGE] = "range_half_given",
	[BACNET_AN_PASSWORD_TOO_LONG] = "password_too_long",
	[BACNET_AN_UNKNOWN_REASON] = "unknown_reason",
	[BACNET_AN_SERVICE_EMPTY_LIST] = "service_empty_list",
};

_Static_assert(BACNET_AN_COUNT <= 64, "anomalies must fit in 64 bits");

const char *bacnet_anomaly_name(unsigned bit)
{
	if (bit < BACNET_AN_COUNT)
		return anomaly_names[bit];
	return NULL;
}
