/*
 * main.c - the kvstore program: reads its options, picks one of three ways to
 * run, and turns the outcome into the exit status.
 *
 *   kvstore [--data-dir DIR]                 a session on a terminal, or a
 *                                            script when stdin is not one
 *   kvstore [--data-dir DIR] COMMAND ARG...  one command (one-shot)
 *   kvstore --connect HOST:PORT [...]        the same, on a running
 *                                            volume-server's store (RESP)
 *
 * Exit status: 0 success, 1 not found (or damage found by verify), 2 usage,
 * 3 any other error; a script exits with the highest status of its commands.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "repl.h"

static void print_usage(FILE *f)
{
    fprintf(f, "usage: kvstore [--data-dir DIR] [COMMAND [ARG...]]\n"
               "       kvstore --connect HOST:PORT [COMMAND [ARG...]]\n"
               "\n"
               "Without a command, kvstore reads commands from standard input: a session\n"
               "with line editing and history (~/.kvstore_history) when it is a terminal,\n"
               "a script of one command per line otherwise. With a command, it runs that\n"
               "one and exits; `set KEY -` then reads the value from standard input, and\n"
               "`get KEY` writes the value's bytes unchanged (no newline) unless standard\n"
               "output is a terminal.\n"
               "\n"
               "Options:\n"
               "  -d, --data-dir DIR  the data directory (default: db)\n"
               "  -c, --connect HOST:PORT\n"
               "                      use the store of a running volume-server, through its\n"
               "                      Redis protocol port (RESP_PORT, 6380 by default);\n"
               "                      AUTH_TOKEN in the environment authenticates\n"
               "  -h, --help          show this help and exit\n"
               "  -V, --version       show the version and exit\n"
               "\n");
    cli_print_commands(f);
    fprintf(f, "\n"
               "verify, dump and backup read a directory without opening the store, so\n"
               "they work while another process (a running server) has it open. backup\n"
               "and restore take their directories as arguments, not --data-dir; the\n"
               "destination must be new or empty.\n"
               "\n"
               "set and delete create the data directory and its store when missing;\n"
               "commands that only read never do: on a directory that holds no store\n"
               "they say so and exit 3.\n"
               "\n"
               "Exit status: 0 success; 1 key not found (get, delete, exists) or damage\n"
               "found (verify); 2 usage error; 3 any other error, such as a data directory\n"
               "in use by another process. A script exits with the highest status of its\n"
               "commands.\n");
}

/* ---- the ways to run */

/* Runs standard input as a script, one command per line; continues past a
 * failed command and returns the highest status met. */
static enum cli_status run_script(struct cli *cli)
{
    enum cli_status worst = CLI_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!cli->quit && (n = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        cli->line++;
        enum cli_status st = cli_run_line(cli, line, len);
        if (st > worst)
            worst = st;
        /* A process on the other end of a pipe may wait for each reply. */
        fflush(stdout);
        if (cli->open_failed)
            break;
    }
    if (ferror(stdin)) {
        cli->line = 0;
        cli_error(cli, "cannot read standard input");
        worst = CLI_ERROR;
    }
    free(line);
    return worst;
}

/* Closes the store (which saves the snapshot) and checks that every reply
 * reached stdout; either failing makes the run fail. */
static enum cli_status finish(struct cli *cli, enum cli_status st)
{
    if (cli_store_close(cli) != 0)
        st = CLI_ERROR;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "kvstore: cannot write to standard output\n");
        st = CLI_ERROR;
    }
    return st;
}

/* Reads the options; returns -1 to go on, or the exit status to exit with. */
static int parse_options(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"connect", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    /* "+": options end at the command, so a value such as "-x" stays an
     * argument of set. */
    while ((c = getopt_long(argc, argv, "+d:c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            if (optarg[0] == '\0') {
                fprintf(stderr, "kvstore: --data-dir needs a directory\n");
                return CLI_USAGE;
            }
            cli->dir = optarg;
            break;
        case 'c':
            if (optarg[0] == '\0') {
                fprintf(stderr, "kvstore: --connect needs HOST:PORT\n");
                return CLI_USAGE;
            }
            cli->connect = optarg;
            break;
        case 'h':
            print_usage(stdout);
            return CLI_OK;
        case 'V':
            printf("kvstore (mini-kvstore) %s\n", kv_version());
            return CLI_OK;
        default:
            if (optopt == 'd')
                fprintf(stderr, "kvstore: --data-dir needs a directory\n");
            else if (optopt == 'c')
                fprintf(stderr, "kvstore: --connect needs HOST:PORT\n");
            else if (optopt != 0)
                fprintf(stderr, "kvstore: unknown option '-%c'\n", optopt);
            else
                fprintf(stderr, "kvstore: unknown option '%s'\n", argv[optind - 1]);
            fprintf(stderr, "Try 'kvstore --help'.\n");
            return CLI_USAGE;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct cli cli = {.dir = "db"};
    pthread_mutex_init(&cli.log.mu, NULL);
    /* The engine's threads must leave the REPL's signals to the main thread,
     * which is the one reading the terminal. */
    repl_signal_set(&cli.engine_blocked);
    int rc = parse_options(argc, argv, &cli);
    if (rc >= 0)
        goto out;
    cli.out_tty = isatty(STDOUT_FILENO);
    enum cli_status st;
    if (optind < argc) {
        cli.mode = CLI_ONESHOT;
        st = cli_run_argv(&cli, argc - optind, argv + optind);
    } else if (isatty(STDIN_FILENO)) {
        cli.mode = CLI_REPL;
        st = repl_run(&cli);
    } else {
        cli.mode = CLI_SCRIPT;
        st = run_script(&cli);
    }
    rc = (int)finish(&cli, st);
out:
    pthread_mutex_destroy(&cli.log.mu);
    return rc;
}
