/* cmd.h - ffrun's subcommands that live outside main.c (src/cmd_<name>.c). Like main.c
 * they print and return exit statuses; they are part of the ffrun program, not of the
 * library (libffrun). Each takes main's argc / argv (argv[1] is the subcommand). */
#ifndef FF_CMD_H
#define FF_CMD_H

int ff_cmd_predict(int argc, char **argv); /* ffrun predict MODEL.ffm INPUT... */
int ff_cmd_export(int argc, char **argv);  /* ffrun export MODEL.ffm OUT.npz */

#endif
