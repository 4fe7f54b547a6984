/*
 * docgen.c — reads the commands' `--help` texts into a model of the CLI
 * (commands, subcommands, flags, their values and descriptions) for the
 * completion and man page emitters; the conventions it relies on are listed
 * in docgen.h.  Also the hidden `silica --completions/--man/--gen-docs`.
 *
 * Invariants: each help text is captured by running the real command with
 * --help, stdout redirected (the same bytes a user sees); nothing here knows a
 * command's options by name; the model is bounded (DG_MAX_*), excess flags
 * are an error rather than silently dropped.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "docgen.h"

/* ---- capture ---- */

/* The text `silica CMD --help` prints (run == NULL: usage(stdout)), or NULL.
 * stdout is pointed at a temporary file while the command runs (in this
 * process: no fork, which qemu-user, used for cross builds, may hang on). */
static char *capture_help(int (*run)(int, char **), const char *name, void (*usage)(FILE *)) {
    FILE *tmp = tmpfile();
    if (!tmp) return NULL;
    fflush(stdout);
    int saved = dup(1);
    if (saved < 0 || dup2(fileno(tmp), 1) < 0) {
        if (saved >= 0) close(saved);
        fclose(tmp);
        return NULL;
    }
    int rc = 0;
    if (run) {
        char *argv[] = {(char *)name, "--help", NULL};
        rc = run(2, argv);
    } else {
        usage(stdout);
    }
    bool bad = fflush(stdout) != 0 || rc != 0;
    if (dup2(saved, 1) < 0) bad = true;
    close(saved);
    long len = -1;
    if (fseek(tmp, 0, SEEK_END) == 0) len = ftell(tmp);
    char *buf = len > 0 && !bad ? malloc((size_t)len + 1) : NULL;
    if (buf) {
        rewind(tmp);
        if (fread(buf, 1, (size_t)len, tmp) != (size_t)len) {
            free(buf);
            buf = NULL;
        } else {
            buf[len] = 0;
        }
    }
    fclose(tmp);
    return buf;
}

/* ---- lexical helpers ---- */

static bool is_flag_at(const char *s, const char *p) {
    if (p[0] != '-') return false;
    if (p > s && !strchr(" \t\n[(|,", p[-1])) return false;
    if (isalpha((unsigned char)p[1])) return true;
    return p[1] == '-' && isalpha((unsigned char)p[2]);
}

/* Length of the flag name at p ("--q-bits"), trailing '-' excluded. */
static size_t flag_len(const char *p) {
    size_t k = 0;
    while (p[k] == '-') k++;
    while (isalnum((unsigned char)p[k]) || p[k] == '-' || p[k] == '_') k++;
    while (k > 0 && p[k - 1] == '-') k--;
    return k;
}

/* Length of a value word at p: up to white space, ']' or ')'; a trailing ',' dropped. */
static size_t word_len(const char *p) {
    size_t k = 0;
    while (p[k] && !isspace((unsigned char)p[k]) && p[k] != ']' && p[k] != ')') k++;
    while (k > 0 && p[k - 1] == ',') k--;
    return k;
}

static bool is_metavar(const char *w, size_t n) {
    if (n == 0) return false;
    if (memchr(w, '|', n)) return true;
    return isupper((unsigned char)w[0]) || isdigit((unsigned char)w[0]);
}

static void copy_n(char *dst, size_t cap, const char *src, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

size_t dg_entry_indent(const char *line) {
    size_t k = 0;
    while (line[k] == ' ') k++;
    return (k >= 1 && k <= 6 && line[k] == '-') ? k : 0;
}

size_t dg_term_len(const char *t, size_t n) {
    for (size_t k = 0; k + 1 < n; k++)
        if (t[k] == ' ' && t[k + 1] == ' ') return k;
    /* one space only: the term is flags and their value words */
    size_t k = 0, last = 0;
    bool after_flag = false;
    while (k < n) {
        while (k < n && (t[k] == ' ' || t[k] == ',')) k++;
        if (k >= n) break;
        size_t w = 0;
        while (k + w < n && t[k + w] != ' ') w++;
        bool flag = t[k] == '-';
        if (!flag && !(after_flag && is_metavar(t + k, w))) break;
        after_flag = flag;
        k += w;
        last = k;
    }
    return last ? last : n;
}

/* ---- the model ---- */

static dg_opt *find_opt(dg_cmd *c, const char *name, size_t n) {
    for (int i = 0; i < c->nopts; i++)
        if (strlen(c->opts[i].name) == n && memcmp(c->opts[i].name, name, n) == 0) return &c->opts[i];
    return NULL;
}

static dg_opt *add_opt(dg_cmd *c, const char *name, size_t n) {
    dg_opt *o = find_opt(c, name, n);
    if (o || c->nopts >= DG_MAX_OPTS) return o;
    o = &c->opts[c->nopts++];
    memset(o, 0, sizeof *o);
    copy_n(o->name, sizeof o->name, name, n);
    return o;
}

/* Union of value set `add` into set `into` ("a|b" + "b|c" -> "a|b|c"). */
static void merge_set(char *into, size_t cap, const char *add, size_t n) {
    size_t k = 0;
    while (k < n) {
        size_t e = k;
        while (e < n && add[e] != '|') e++;
        size_t len = e - k;
        bool have = false;
        for (const char *p = into; *p;) {
            const char *q = strchr(p, '|');
            size_t pl = q ? (size_t)(q - p) : strlen(p);
            if (pl == len && memcmp(p, add + k, len) == 0) have = true;
            p += pl + (q ? 1 : 0);
        }
        size_t used = strlen(into);
        if (!have && len && used + len + 2 < cap) {
            if (used) into[used++] = '|';
            memcpy(into + used, add + k, len);
            into[used + len] = 0;
        }
        k = e + 1;
    }
}

static void set_arg(dg_opt *o, const char *w, size_t n) {
    bool set = memchr(w, '|', n) != NULL;
    if (set) {
        if (!strchr(o->arg, '|')) o->arg[0] = 0;
        merge_set(o->arg, sizeof o->arg, w, n);
    } else if (!o->arg[0]) {
        copy_n(o->arg, sizeof o->arg, w, n);
    }
}

/* Whether the word before p ("run/chat " in "run/chat --monitor") names a
 * command other than self: the flag that follows is that command's. */
static bool after_other_command(const char *s, const char *p, const char *self, const cli_command *cmds, size_t n) {
    if (p - s < 2 || p[-1] != ' ') return false;
    const char *e = p - 1, *b = e;
    while (b > s && !isspace((unsigned char)b[-1])) b--;
    while (b < e) {
        const char *w = b;
        while (b < e && *b != '/') b++;
        for (size_t i = 0; i < n; i++)
            if (strlen(cmds[i].name) == (size_t)(b - w) && strncmp(cmds[i].name, w, (size_t)(b - w)) == 0 &&
                strcmp(cmds[i].name, self) != 0)
                return true;
        if (b < e) b++;
    }
    return false;
}

/* The flags of help text s (backquoted examples, a "commands:" list, which
 * describes other commands, and flags right after another command's name
 * skipped). */
static int scan_flags(dg_cmd *c, const char *s, const cli_command *cmds, size_t ncmds) {
    bool quoted = false;
    for (const char *p = s; *p; p++) {
        if ((p == s || p[-1] == '\n') && strncmp(p, "commands:\n", 10) == 0) {
            const char *e = strstr(p, "\n\n");
            if (!e) break;
            p = e;
            continue;
        }
        if (*p == '`') quoted = !quoted;
        if (quoted || !is_flag_at(s, p)) continue;
        size_t n = flag_len(p);
        if (after_other_command(s, p, c->name, cmds, ncmds)) {
            p += n - 1;
            continue;
        }
        dg_opt *o = add_opt(c, p, n);
        if (!o) return -1;
        const char *q = p + n;
        if ((*q == ' ' || *q == '=') && is_metavar(q + 1, word_len(q + 1))) {
            size_t w = word_len(q + 1);
            set_arg(o, q + 1, w);
            q += 1 + w;
        }
        if (strncmp(q, "]...", 4) == 0 || strncmp(q, "...", 3) == 0) o->repeat = true;
        if (p[1] != '-' && strncmp(q, ", --", 4) == 0) copy_n(o->alias, sizeof o->alias, q + 2, flag_len(q + 2));
        p = q - 1;
    }
    return 0;
}

/* Descriptions from option entries ("  --flag ARG  text"). */
static void scan_descriptions(dg_cmd *c, const char *s) {
    for (const char *line = s; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        size_t ind = dg_entry_indent(line);
        if (ind) {
            const char *t = line + ind;
            size_t tl = dg_term_len(t, len - ind);
            const char *d = t + tl;
            while (d < line + len && *d == ' ') d++;
            for (const char *p = t; p < t + tl; p++) {
                if (!is_flag_at(t, p)) continue;
                size_t fl = flag_len(p);
                const char *v = p + fl;
                if (*v == ' ' && v + 1 < t + tl && v[1] != '-' && !is_metavar(v + 1, word_len(v + 1)))
                    continue;   /* "--to mlx  text": describes one value, not the flag */
                dg_opt *o = find_opt(c, p, fl);
                if (o && !o->desc[0]) copy_n(o->desc, sizeof o->desc, d, (size_t)(line + len - d));
                if (o && strstr(o->desc, "(repeatable")) o->repeat = true;
            }
        }
        line += len + (end ? 1 : 0);
    }
}

static bool all_lower(const char *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)w[i])) return false;
    return n > 0;
}

/* Subcommands and positional arguments from the usage lines. */
static void scan_usage(dg_cmd *c, const char *s) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "silica %s%s", c->name, c->name[0] ? " " : "");
    size_t pl = strlen(prefix);
    for (const char *line = s; *line && *line != '\n';) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *p = line, *stop = line + len;
        if (strncmp(p, "usage:", 6) == 0) p += 6;
        while (p < stop && *p == ' ') p++;
        bool first = false;
        if ((size_t)(stop - p) >= pl && strncmp(p, prefix, pl) == 0) {
            p += pl;
            first = true;
        }
        bool after_flag = false;
        while (p < stop) {
            while (p < stop && *p == ' ') p++;
            const char *w = p;
            while (p < stop && *p != ' ') p++;
            while (w < p && (*w == '[' || *w == '(')) w++;
            size_t n = (size_t)(p - w);
            if (n == 0 || (n == 1 && *w == '|')) continue;
            bool closed = p[-1] == ']' || p[-1] == ')';
            if (*w == '-') {
                after_flag = !closed;
            } else {
                if (first && all_lower(w, n) && c->nsubs < DG_MAX_SUBS) copy_n(c->subs[c->nsubs++], sizeof c->subs[0], w, n);
                else if (isupper((unsigned char)*w) && !after_flag) c->positional = true;
                after_flag = false;
            }
            first = false;
        }
        line += len + (end ? 1 : 0);
    }
}

static dg_argkind arg_kind(const char *arg) {
    if (!arg[0]) return DG_NOARG;
    if (strchr(arg, '|')) return DG_CHOICE;
    static const char *paths[] = {"FILE", "F", "DIR", "PATH", "OUT", "POINTER"};
    size_t base = strcspn(arg, ".");
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (strlen(paths[i]) == base && strncmp(arg, paths[i], base) == 0) return DG_PATH;
    if (arg[base] == '.' && isupper((unsigned char)arg[0])) return DG_PATH;   /* OUT.svg, FILE.json */
    return DG_VALUE;
}

static int parse_cmd(dg_cmd *c, const cli_command *cmds, size_t n) {
    if (scan_flags(c, c->help, cmds, n) != 0) {
        fprintf(stderr, "silica: error: %s --help: more than %d flags\n", c->name, DG_MAX_OPTS);
        return 2;
    }
    if (!find_opt(c, "--help", 6)) {
        dg_opt *o = add_opt(c, "--help", 6);
        if (o) snprintf(o->desc, sizeof o->desc, "this text");
    }
    scan_descriptions(c, c->help);
    scan_usage(c, c->help);
    for (int i = 0; i < c->nopts; i++) {   /* a short flag takes its long form's value */
        dg_opt *o = &c->opts[i];
        dg_opt *l = o->alias[0] ? find_opt(c, o->alias, strlen(o->alias)) : NULL;
        if (l && !o->arg[0]) snprintf(o->arg, sizeof o->arg, "%s", l->arg);
        if (l && !o->desc[0]) snprintf(o->desc, sizeof o->desc, "%s", l->desc);
        if (l && !l->desc[0]) snprintf(l->desc, sizeof l->desc, "%s", o->desc);
    }
    for (int i = 0; i < c->nopts; i++) c->opts[i].kind = arg_kind(c->opts[i].arg);
    return 0;
}

const char *dg_choices(const dg_cli *cli, const dg_opt *opt) {
    if (opt->kind == DG_CHOICE) return opt->arg;
    if (opt->kind == DG_NOARG) return "";
    for (size_t i = 0; i < cli->n; i++)
        for (int j = 0; j < cli->cmds[i].nopts; j++) {
            const dg_opt *o = &cli->cmds[i].opts[j];
            if (o->kind == DG_CHOICE && strcmp(o->name, opt->name) == 0) return o->arg;
        }
    return "";
}

/* A flag a command only names in prose ("options as for `silica convert`:
 * --q-bits, ...") is the same flag as the described one of another command. */
static void inherit_undescribed(dg_cli *cli) {
    for (size_t i = 0; i < cli->n; i++)
        for (int j = 0; j < cli->cmds[i].nopts; j++) {
            dg_opt *o = &cli->cmds[i].opts[j];
            if (o->desc[0] || o->arg[0]) continue;
            for (size_t k = 0; k < cli->n && !o->desc[0]; k++) {
                dg_cmd *other = &cli->cmds[k];
                dg_opt *d = find_opt(other, o->name, strlen(o->name));
                if (d && d->desc[0]) {
                    memcpy(o->arg, d->arg, sizeof o->arg);
                    memcpy(o->desc, d->desc, sizeof o->desc);
                    o->kind = d->kind;
                    o->repeat = d->repeat;
                }
            }
        }
}

int dg_load(dg_cli *cli, const cli_command *cmds, size_t n, void (*usage)(FILE *)) {
    memset(cli, 0, sizeof *cli);
    cli->cmds = calloc(n ? n : 1, sizeof *cli->cmds);
    if (!cli->cmds) return 2;
    cli->n = n;
    cli->top.name = "";
    cli->top.summary = "";
    cli->top.help = capture_help(NULL, "silica", usage);
    if (!cli->top.help) {
        fprintf(stderr, "silica: error: cannot capture `silica --help`\n");
        return 2;
    }
    if (parse_cmd(&cli->top, cmds, n) != 0) return 2;
    for (size_t i = 0; i < n; i++) {
        dg_cmd *c = &cli->cmds[i];
        c->name = cmds[i].name;
        c->summary = cmds[i].summary;
        c->help = capture_help(cmds[i].run, cmds[i].name, NULL);
        if (!c->help) {
            fprintf(stderr, "silica: error: `silica %s --help` failed or printed nothing\n", c->name);
            return 2;
        }
        if (parse_cmd(c, cmds, n) != 0) return 2;
    }
    inherit_undescribed(cli);
    return 0;
}

void dg_free(dg_cli *cli) {
    free(cli->top.help);
    for (size_t i = 0; cli->cmds && i < cli->n; i++) free(cli->cmds[i].help);
    free(cli->cmds);
    memset(cli, 0, sizeof *cli);
}

/* ---- the hidden subcommands ---- */

static int mkdirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Write DIR/SUB/NAME via a temporary name and rename (whole file or nothing). */
static int write_file(const char *dir, const char *sub, const char *name, const dg_cli *cli, const char *shell,
                      const dg_cmd *man) {
    char d[4096], path[4200], tmp[4300];
    snprintf(d, sizeof d, "%s/%s", dir, sub);
    snprintf(path, sizeof path, "%s/%s", d, name);
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    if (mkdirs(d) != 0) {
        fprintf(stderr, "silica: error: %s: cannot create the directory (%s)\n", d, strerror(errno));
        return 2;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "silica: error: %s: cannot write (%s)\n", tmp, strerror(errno));
        return 2;
    }
    if (shell) dg_write_completion(f, cli, shell);
    else dg_write_man(f, cli, man);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        fprintf(stderr, "silica: error: %s: cannot write (%s)\n", path, strerror(errno));
        remove(tmp);
        return 2;
    }
    return 0;
}

static int gen_docs(const dg_cli *cli, const char *dir) {
    int rc = write_file(dir, "bash-completion/completions", "silica", cli, "bash", NULL);
    if (!rc) rc = write_file(dir, "zsh/site-functions", "_silica", cli, "zsh", NULL);
    if (!rc) rc = write_file(dir, "fish/vendor_completions.d", "silica.fish", cli, "fish", NULL);
    if (!rc) rc = write_file(dir, "man/man1", "silica.1", cli, NULL, NULL);
    for (size_t i = 0; !rc && i < cli->n; i++) {
        char name[96];
        snprintf(name, sizeof name, "silica-%s.1", cli->cmds[i].name);
        rc = write_file(dir, "man/man1", name, cli, NULL, &cli->cmds[i]);
    }
    return rc;
}

int cli_docgen_main(int argc, char **argv, const cli_command *cmds, size_t n, void (*usage)(FILE *)) {
    const char *what = argv[0], *arg = argc > 1 ? argv[1] : NULL;
    bool completions = strcmp(what, "--completions") == 0, gen = strcmp(what, "--gen-docs") == 0;
    if (argc > 2 || ((completions || gen) && !arg)) {
        fprintf(stderr, "silica: error: %s: expected silica --completions bash|zsh|fish, --man [COMMAND] or --gen-docs DIR\n", what);
        return 2;
    }
    if (completions && strcmp(arg, "bash") != 0 && strcmp(arg, "zsh") != 0 && strcmp(arg, "fish") != 0) {
        fprintf(stderr, "silica: error: --completions: unknown shell '%s' (expected bash, zsh or fish)\n", arg);
        return 2;
    }
    const cli_command *man_cmd = NULL;
    if (!completions && !gen && arg) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(cmds[i].name, arg) == 0) man_cmd = &cmds[i];
        if (!man_cmd) {
            fprintf(stderr, "silica: error: --man: unknown command '%s' (see `silica help`)\n", arg);
            return 2;
        }
    }
    dg_cli cli;
    int rc = dg_load(&cli, cmds, n, usage);
    if (rc == 0) {
        if (gen) rc = gen_docs(&cli, arg);
        else if (completions) rc = dg_write_completion(stdout, &cli, arg);
        else dg_write_man(stdout, &cli, man_cmd ? &cli.cmds[man_cmd - cmds] : NULL);
    }
    dg_free(&cli);
    if (rc == 0 && fflush(stdout) != 0) rc = 2;
    return rc;
}
