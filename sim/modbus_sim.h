/* sim/modbus_sim.h: a Modbus/TCP device simulator on libmodbus, with a small air-handler model.
 *
 * Register map of the "ahu" model (docs/demo.md). The points that policies/examples/hvac-plant.policy
 * names for ahu1 sit where that policy says (marked *):
 *   coil 12 *      fan_enable: fan command (1 = run)                   read/write
 *   coil 13        heating enable                                      read/write
 *   coil 14        cooling enable                                      read/write
 *   coil 15        alarm reset (write 1; the model clears it)          read/write
 *   discrete 2     fan status (follows coil 12 after ~1 s)             read
 *   discrete 3 *   filter_alarm (filter pressure > 250 Pa)             read
 *   discrete 4     freeze-stat alarm (supply air < 4.0 degC)           read
 *   holding 100 *  supply_air_setpoint, int16 x10 degC (180 = 18.0)    read/write
 *   holding 101 *  supply_fan_speed setpoint, percent (0..100)         read/write
 *   holding 102    outside air damper minimum, percent                 read/write
 *   holding 103    mode: 0 off, 1 auto, 2 heat, 3 cool                 read/write
 *   input 0        supply air temperature, int16 x10 degC              read
 *   input 1        return air temperature, int16 x10 degC              read
 *   input 2        outside air temperature, int16 x10 degC             read
 *   input 3        fan speed feedback, percent                         read
 *   input 4        filter differential pressure, Pa                    read
 *   input 30-31 *  supply_air_temp, IEEE float32 degC, high word first read
 * Every table holds BMS_SIM_TABLE_SIZE entries starting at 0; other addresses read as 0 and
 * addresses beyond the table get exception 02 (Illegal Data Address), as a real device would.
 */
#ifndef BMS_MODBUS_SIM_H
#define BMS_MODBUS_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include <modbus/modbus.h>

#include "parsers/cursor.h" /* BMS_WUR */

#define BMS_SIM_TABLE_SIZE 1000

#define BMS_SIM_COIL_FAN_CMD 12
#define BMS_SIM_COIL_HEAT_EN 13
#define BMS_SIM_COIL_COOL_EN 14
#define BMS_SIM_COIL_ALARM_RESET 15
#define BMS_SIM_DI_FAN_STATUS 2
#define BMS_SIM_DI_FILTER_ALARM 3
#define BMS_SIM_DI_FREEZE_ALARM 4
#define BMS_SIM_HR_SAT_SETPOINT 100
#define BMS_SIM_HR_FAN_SPEED_SP 101
#define BMS_SIM_HR_DAMPER_MIN 102
#define BMS_SIM_HR_MODE 103
#define BMS_SIM_IR_SAT 0
#define BMS_SIM_IR_RAT 1
#define BMS_SIM_IR_OAT 2
#define BMS_SIM_IR_FAN_SPEED 3
#define BMS_SIM_IR_FILTER_DP 4
#define BMS_SIM_IR_SAT_FLOAT 30 /* and 31 */

enum bms_sim_model { BMS_SIM_MODEL_AHU = 0, BMS_SIM_MODEL_BLANK = 1 };

/* Model state beside the libmodbus mapping, which holds what a client sees. */
struct bms_sim_ahu {
	double sat;      /* supply air temperature, degC */
	double fan_pct;  /* fan speed feedback */
	double fan_on_s; /* seconds the fan command has been on (status follows after 1 s) */
	double filter_pa;
};

/* Initial values of the model in the mapping. */
void bms_sim_ahu_init(struct bms_sim_ahu *m, modbus_mapping_t *map);
/* Advances the model by dt seconds (clamped to 0..10). */
void bms_sim_ahu_tick(struct bms_sim_ahu *m, modbus_mapping_t *map, double dt);

struct bms_sim_opts {
	const char *addr;       /* borrowed; IPv4 literal */
	int port;               /* 0: ephemeral, reported on the ready line and in ready_file */
	enum bms_sim_model model;
	int slow_ms;            /* delay before each reply (blocks the whole device, like a slow PLC) */
	int max_clients;        /* connections served at once; more are accepted and closed */
	const char *ready_file; /* borrowed; NULL = none */
	int fast;              /* epoll loop with MBAP framing (benchmarks) */
	int verbose;
};

/* Runs until SIGTERM/SIGINT; 0 on a clean stop. */
BMS_WUR int bms_sim_modbus_run(const struct bms_sim_opts *o);

#endif
