/* cmd/audit_cmds.h: the `bmsgate audit` subcommands that live in their own files. */
#ifndef BMS_CMD_AUDIT_CMDS_H
#define BMS_CMD_AUDIT_CMDS_H

int cmd_audit_prove(int argc, char **argv);        /* cmd/audit_proof.c */
int cmd_audit_verify_proof(int argc, char **argv); /* cmd/audit_proof.c */
int cmd_audit_query(int argc, char **argv);        /* cmd/audit_query.c */
int cmd_audit_summary(int argc, char **argv);      /* cmd/audit_query.c */
int cmd_audit_tail(int argc, char **argv);         /* cmd/audit_query.c */

#endif
