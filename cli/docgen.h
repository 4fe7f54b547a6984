/*
 * docgen.h — shell completions (bash, zsh, fish) and man pages generated from
 * the commands' own `--help` texts, so they cannot drift from the CLI.
 *
 * One source of truth: the command table of main.c and the help text each
 * command prints.  docgen.c runs every command's `--help` (in a child process)
 * and reads from it, by the conventions the help texts follow:
 *   - a flag is a word starting with "-" or "--" (text in `backticks` is an
 *     example of another command and is skipped, as are a "commands:" list
 *     and a flag right after another command's name: "run/chat --monitor");
 *   - "--flag WORD": the flag takes a value when WORD starts with an
 *     upper-case letter or a digit (N, FILE, OUT.svg, 1,2,3) or lists the
 *     fixed set of values "a|b|c"; the sets of one flag are merged, across
 *     commands too (a flag means the same in every command); a flag a
 *     command names only in prose, with no option entry of its own, takes
 *     its value and description from another command's entry;
 *   - a value named FILE, F, DIR, PATH, OUT, POINTER or X.ext is a path;
 *   - a flag followed by "]..." or described "(repeatable" may repeat;
 *   - "  -o, --output OUT  text": an option entry, term then two spaces then
 *     its description; deeper-indented lines continue it;
 *   - usage lines "silica CMD word ..." with a lower-case word name
 *     subcommands (lfs); upper-case words are positional arguments, which
 *     complete as file paths (models are directories or files).
 * Emitters: docgen_sh.c (completion scripts), docgen_man.c (roff pages).
 */
#ifndef SILICA_CLI_DOCGEN_H
#define SILICA_CLI_DOCGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli.h"

#define DG_MAX_OPTS 96
#define DG_MAX_SUBS 8

typedef enum { DG_NOARG, DG_VALUE, DG_PATH, DG_CHOICE } dg_argkind;

typedef struct dg_opt {
    char name[48];     /* "--to", "-q" */
    char alias[48];    /* the long form of a short flag ("-o" -> "--output"), else "" */
    char arg[160];     /* metavar ("FILE") or value set ("mlx|hf|torch") */
    char desc[200];    /* first line of its description, "" if never described */
    dg_argkind kind;
    bool repeat;
} dg_opt;

typedef struct dg_cmd {
    const char *name;
    const char *summary;
    char *help;                 /* the captured --help text (owned) */
    dg_opt opts[DG_MAX_OPTS];
    int nopts;
    char subs[DG_MAX_SUBS][24]; /* subcommands (lfs pointer|parse|fetch|push) */
    int nsubs;
    bool positional;            /* takes positional arguments (paths, models) */
} dg_cmd;

typedef struct dg_cli {
    dg_cmd top;                 /* `silica` itself: the top-level usage text */
    dg_cmd *cmds;
    size_t n;
} dg_cli;

/* Build the model: top is parsed from usage()'s text, each command from its
 * --help.  0 on success, 2 (with a message on stderr) on failure. */
int dg_load(dg_cli *cli, const cli_command *cmds, size_t n, void (*usage)(FILE *));
void dg_free(dg_cli *cli);

/* An option entry line ("  -o, --output OUT  text"): its indentation (1..6
 * spaces before '-'), else 0.  dg_term_len: the length of the entry's term
 * ("-o, --output OUT") in t[0..n), the text after the indentation. */
size_t dg_entry_indent(const char *line);
size_t dg_term_len(const char *t, size_t n);

/* The value set of opt (in cmd, else the same flag elsewhere), "" if none. */
const char *dg_choices(const dg_cli *cli, const dg_opt *opt);

/* Completion script for shell "bash", "zsh" or "fish"; 0, or 2 if unknown. */
int dg_write_completion(FILE *f, const dg_cli *cli, const char *shell);
/* Man page silica(1) (cmd NULL) or silica-CMD(1). */
void dg_write_man(FILE *f, const dg_cli *cli, const dg_cmd *cmd);

/* The hidden entry points of main.c:
 *   silica --completions bash|zsh|fish   the script on stdout
 *   silica --man [COMMAND]               the roff page on stdout
 *   silica --gen-docs DIR                DIR/bash-completion/completions/silica,
 *       DIR/zsh/site-functions/_silica, DIR/fish/vendor_completions.d/silica.fish,
 *       DIR/man/man1/silica.1 and silica-CMD.1 (the layout under share/). */
int cli_docgen_main(int argc, char **argv, const cli_command *cmds, size_t n, void (*usage)(FILE *));

#endif
