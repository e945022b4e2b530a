/* cmd/cmds.h: the subcommands of the one bmsgate binary. Each returns the process exit status. */
#ifndef BMS_CMDS_H
#define BMS_CMDS_H

int cmd_decode(int argc, char **argv);  /* cmd/cmd_decode.c */
int cmd_policy(int argc, char **argv);  /* cmd/cmd_policy.c */
int cmd_audit(int argc, char **argv);   /* cmd/cmd_audit.c */
int cmd_guard(int argc, char **argv);   /* cmd/cmd_guard.c */
int cmd_tunnel(int argc, char **argv);  /* cmd/cmd_tunnel.c */
int cmd_replay(int argc, char **argv);  /* cmd/cmd_replay.c */
int cmd_pki(int argc, char **argv);     /* cmd/cmd_pki.c */
int cmd_sim(int argc, char **argv);     /* cmd/cmd_sim.c */

#endif
