/*
 * repl.c - the interactive session: libedit for line editing, a history that
 * persists in ~/.kvstore_history (never in the data directory: it holds what
 * was typed, not what is stored), Ctrl-C to abandon the line being typed,
 * Ctrl-D to quit.
 *
 * Signals. libedit can handle signals itself (EL_SIGNAL), but it then puts
 * the terminal back in cooked mode and re-raises the signal to the whole
 * process group, which suits programs that die on Ctrl-C; this one must not.
 * So the session installs handlers that only set flags, and reads the
 * terminal itself (EL_GETCFN). While the prompt is up, the session's signals
 * are blocked except inside ppoll(), which waits for a key with them
 * unblocked: a signal then either arrives before the flags are checked or
 * interrupts the wait, never in between, where it would sit unseen until the
 * next key. repl_getc() acts on it inside libedit's loop: Ctrl-C becomes the
 * ^C key, bound to kv-cancel; a window resize resizes; Ctrl-Z hands the
 * terminal back and stops; SIGTERM and SIGHUP end the input, so that the
 * session closes the store (saving the snapshot) as quit does. While a
 * command runs, the signals are unblocked, Ctrl-Z has its usual effect, and
 * Ctrl-C only sets cli_interrupted, which long listings poll to stop early.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "repl.h"

#define HISTORY_FILE "/.kvstore_history"
#define HISTORY_SIZE 1000

static volatile sig_atomic_t got_winch, got_tstp, got_term;

static const int handled_signals[] = {SIGINT, SIGWINCH, SIGTSTP, SIGTERM, SIGHUP};
#define NSIGNALS (sizeof(handled_signals) / sizeof(handled_signals[0]))

struct repl {
    struct cli *cli;
    EditLine *el;
    History *hist;
    char *history_path;               /* NULL: no history file (HOME unset) */
    bool cancelled;                   /* the line el_gets returns was abandoned */
    struct sigaction saved[NSIGNALS]; /* the dispositions found at start */
    sigset_t wait_mask;               /* the mask to wait for a key with */
};

/* ---- signals */

static void on_signal(int sig)
{
    switch (sig) {
    case SIGINT:
        cli_interrupted = 1;
        break;
    case SIGWINCH:
        got_winch = 1;
        break;
    case SIGTSTP:
        got_tstp = 1;
        break;
    default:
        got_term = 1;
        break;
    }
}

void repl_signal_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaddset(set, handled_signals[i]);
}

static void save_handlers(struct repl *r)
{
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaction(handled_signals[i], NULL, &r->saved[i]);
}

static void restore_handlers(const struct repl *r)
{
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaction(handled_signals[i], &r->saved[i], NULL);
}

/* Installs the handlers for the prompt (editing) or for a running command.
 * SIGINT and SIGWINCH are always taken: at an interactive prompt they mean
 * the user's Ctrl-C and window, as in an interactive shell, even when a
 * parent (a background job of a script) ignored them. The others stay
 * ignored when the session started with them ignored: SIGHUP under nohup,
 * SIGTSTP in a shell without job control, which could not resume us. */
static void install_handlers(const struct repl *r, bool editing)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < NSIGNALS; i++) {
        int sig = handled_signals[i];
        bool always = sig == SIGINT || sig == SIGWINCH;
        if (r->saved[i].sa_handler == SIG_IGN && !always)
            continue;
        if (sig == SIGTSTP && !editing)
            sigaction(sig, &r->saved[i], NULL);
        else
            sigaction(sig, &sa, NULL);
    }
}

/* Ctrl-Z at the prompt: give the terminal back as it was, stop, and take it
 * again when continued. SIGTSTP is blocked here (see the file comment), so
 * the stop happens when it is unblocked. */
static void suspend(EditLine *el)
{
    struct sigaction dfl, ours;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigset_t tstp;
    sigemptyset(&tstp);
    sigaddset(&tstp, SIGTSTP);
    el_set(el, EL_PREP_TERM, 0);
    sigaction(SIGTSTP, &dfl, &ours);
    raise(SIGTSTP);
    pthread_sigmask(SIG_UNBLOCK, &tstp, NULL);
    pthread_sigmask(SIG_BLOCK, &tstp, NULL);
    sigaction(SIGTSTP, &ours, NULL);
    el_set(el, EL_PREP_TERM, 1);
    el_set(el, EL_REFRESH);
}

/* ---- libedit callbacks */

static struct repl *repl_of(EditLine *el)
{
    void *r = NULL;
    el_get(el, EL_CLIENTDATA, &r);
    return r;
}

static char *prompt(EditLine *el)
{
    static char text[] = "> ";
    (void)el;
    return text;
}

/* Acts on the signals caught since the last look. Returns 1 with *wc set to
 * the ^C key after a Ctrl-C, 0 after SIGTERM or SIGHUP, -1 otherwise. */
static int take_signals(EditLine *el, wchar_t *wc)
{
    if (got_term)
        return 0;
    if (cli_interrupted) {
        cli_interrupted = 0;
        *wc = 0x03; /* the ^C key, whatever the terminal's ISIG setting */
        return 1;
    }
    if (got_winch) {
        got_winch = 0;
        el_resize(el);
        el_set(el, EL_REFRESH);
    }
    if (got_tstp) {
        got_tstp = 0;
        suspend(el);
    }
    return -1;
}

/* Reads one character for libedit, decoding the locale's multibyte encoding
 * as libedit's own reader does, and turns signals into editing actions (see
 * the file comment). Returns 1 with *wc set, 0 at the end of input, -1 on a
 * read error. */
static int repl_getc(EditLine *el, wchar_t *wc)
{
    const struct repl *r = repl_of(el);
    char bytes[MB_LEN_MAX];
    size_t n = 0;
    for (;;) {
        int sig = take_signals(el, wc);
        if (sig >= 0)
            return sig;
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        if (ppoll(&pfd, 1, NULL, &r->wait_mask) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        char c;
        ssize_t got = read(STDIN_FILENO, &c, 1);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0)
            return (int)got;
        bytes[n++] = c;
        mbstate_t st;
        memset(&st, 0, sizeof(st));
        size_t k = mbrtowc(wc, bytes, n, &st);
        if (k == (size_t)-2 && n < sizeof(bytes))
            continue;
        if (k == (size_t)-1 || k == (size_t)-2)
            *wc = (wchar_t)(unsigned char)bytes[0]; /* not the locale's: pass it on */
        return 1;
    }
}

/* ^C: show it after what was typed, end the line, and mark it abandoned. The
 * pushed newline runs libedit's own ed-newline, which moves the cursor below
 * the line before the next prompt. */
static unsigned char on_cancel(EditLine *el, int ch)
{
    (void)ch;
    const LineInfo *li = el_line(el);
    el_cursor(el, (int)(li->lastchar - li->cursor));
    el_insertstr(el, "^C");
    repl_of(el)->cancelled = true;
    el_push(el, "\n");
    return CC_REFRESH;
}

static unsigned char on_tab(EditLine *el, int ch)
{
    (void)ch;
    return complete_at_cursor(el, repl_of(el)->cli);
}

/* ---- history */

static char *history_path(void)
{
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    size_t len = strlen(home) + sizeof(HISTORY_FILE);
    char *path = malloc(len);
    if (path)
        snprintf(path, len, "%s%s", home, HISTORY_FILE);
    return path;
}

static void history_setup(struct repl *r)
{
    HistEvent ev;
    r->hist = history_init();
    if (!r->hist)
        return;
    history(r->hist, &ev, H_SETSIZE, HISTORY_SIZE);
    history(r->hist, &ev, H_SETUNIQUE, 1);
    r->history_path = history_path();
    /* A missing file is the normal first run: nothing to report. */
    if (r->history_path)
        history(r->hist, &ev, H_LOAD, r->history_path);
    el_set(r->el, EL_HIST, history, r->hist);
}

static void history_add(struct repl *r, const char *line, size_t len)
{
    if (!r->hist)
        return;
    char *entry = strndup(line, len);
    if (!entry)
        return;
    HistEvent ev;
    history(r->hist, &ev, H_ENTER, entry);
    free(entry);
}

static void history_save(const struct repl *r)
{
    if (!r->hist || !r->history_path)
        return;
    /* The history holds values as they were typed: for its owner's eyes. */
    int fd = open(r->history_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "kvstore: cannot save history to %s: %s\n", r->history_path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    HistEvent ev;
    int rc = history(r->hist, &ev, H_SAVE_FP, f);
    if (fclose(f) != 0 || rc < 0)
        fprintf(stderr, "kvstore: cannot save history to %s\n", r->history_path);
}

/* ---- the session */

/* libedit decodes what is typed with the locale's encoding. A terminal of
 * today sends UTF-8 even when the environment names no locale, so the C
 * locale gives way to C.UTF-8 (as Python does). */
static void choose_locale(void)
{
    const char *loc = setlocale(LC_CTYPE, "");
    if (!loc || strcmp(loc, "C") == 0 || strcmp(loc, "POSIX") == 0)
        setlocale(LC_CTYPE, "C.UTF-8");
}

static int repl_init(struct repl *r)
{
    save_handlers(r);
    r->el = el_init("kvstore", stdin, stdout, stderr);
    if (!r->el)
        return -1;
    el_set(r->el, EL_CLIENTDATA, r);
    el_set(r->el, EL_PROMPT, prompt);
    el_set(r->el, EL_EDITOR, "emacs");
    el_set(r->el, EL_GETCFN, repl_getc);
    /* The wide call: the narrow one copies the names and never frees them. */
    el_wset(r->el, EL_ADDFN, L"kv-complete", L"complete a command name or key", on_tab);
    el_wset(r->el, EL_ADDFN, L"kv-cancel", L"abandon the line being typed", on_cancel);
    el_set(r->el, EL_BIND, "^I", "kv-complete", NULL);
    el_set(r->el, EL_BIND, "^C", "kv-cancel", NULL);
    history_setup(r);
    /* The user's ~/.editrc, as every libedit program reads it. */
    el_source(r->el, NULL);
    return 0;
}

static void repl_free(struct repl *r)
{
    history_save(r);
    if (r->el)
        el_end(r->el);
    if (r->hist)
        history_end(r->hist);
    free(r->history_path);
    restore_handlers(r);
}

static bool is_blank_line(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t')
            return false;
    return true;
}

enum cli_status repl_run(struct cli *cli)
{
    if (!cli_ready(cli, "kvstore", STORE_WRITE))
        return CLI_ERROR;
    choose_locale();
    struct repl r;
    memset(&r, 0, sizeof(r));
    r.cli = cli;
    enum cli_status st = CLI_OK;
    sigset_t handled;
    repl_signal_set(&handled);
    if (repl_init(&r) != 0) {
        fprintf(stderr, "kvstore: cannot start line editing\n");
        st = CLI_ERROR;
        goto out;
    }
    puts("mini-kvstore (type help for instructions)");
    while (!cli->quit) {
        fflush(stdout);
        int count = 0;
        install_handlers(&r, true);
        cli_interrupted = 0;
        pthread_sigmask(SIG_BLOCK, &handled, &r.wait_mask);
        /* libedit would enter raw mode only at the first key, after drawing
         * the prompt: keys typed ahead of that would be echoed twice by the
         * terminal, and a Ctrl-D would be taken as a cooked end-of-file. */
        el_set(r.el, EL_PREP_TERM, 1);
        const char *line = el_gets(r.el, &count);
        pthread_sigmask(SIG_SETMASK, &r.wait_mask, NULL);
        install_handlers(&r, false);
        if (got_term)
            break;
        if (!line) {
            putchar('\n'); /* Ctrl-D: leave the shell's prompt a line of its own */
            break;
        }
        if (r.cancelled) {
            r.cancelled = false;
            continue;
        }
        size_t len = (size_t)count;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (is_blank_line(line, len))
            continue;
        history_add(&r, line, len);
        cli_run_line(cli, line, len);
        if (got_term)
            break;
    }
out:
    fflush(stdout);
    repl_free(&r);
    return st;
}
