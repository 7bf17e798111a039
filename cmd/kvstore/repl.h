/*
 * repl.h - the interactive session of the kvstore CLI (see repl.c) and its
 * tab completion (see complete.c).
 */
#ifndef KVSTORE_CLI_REPL_H
#define KVSTORE_CLI_REPL_H

#include <histedit.h>
#include <signal.h>

#include "cli.h"

/* Opens the store, shows the banner and runs commands typed at the prompt
 * until quit, exit, Ctrl-D, SIGTERM or SIGHUP. The caller closes the store.
 * Returns CLI_ERROR when the store or the line editor cannot be set up,
 * CLI_OK otherwise: a failed command does not fail a session. */
enum cli_status repl_run(struct cli *cli);

/* Fills *set with the signals the session handles, so that the threads the
 * engine starts can block them and leave them to the thread at the prompt. */
void repl_signal_set(sigset_t *set);

/* Completes the word before the cursor of el: a command name when it is the
 * first word, a key of cli's store when it is the argument of a command that
 * takes one. Returns the libedit CC_ code to redraw with. */
unsigned char complete_at_cursor(EditLine *el, struct cli *cli);

#endif /* KVSTORE_CLI_REPL_H */
