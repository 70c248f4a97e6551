/* server/cmd_generate.h — `diffusiond generate`: one txt2img run from the command line
 * (docs/cli.md).  Built only with DIFFUSIOND_SERVER=ON (it needs the image encoders).
 * Thread-safety: called once from main's thread. */
#ifndef DIFFUSIOND_SERVER_CMD_GENERATE_H
#define DIFFUSIOND_SERVER_CMD_GENERATE_H

/* argv[0] is "generate".  Returns the process exit code: 0 success, 1 runtime error
 * (model load, generation, writing), 2 usage error (unknown or bad option, invalid
 * parameter). */
int cmd_generate_main(int argc, char **argv);

#endif
