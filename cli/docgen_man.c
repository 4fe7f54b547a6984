/*
 * docgen_man.c — man pages (roff, man(7) macros) from the commands' --help
 * texts: silica(1) with the command list and the top-level options, and one
 * silica-COMMAND(1) page per command, as git does (so `man silica convert`
 * works with man-db).  A help text maps to a page by its layout:
 *   usage lines              -> SYNOPSIS
 *   paragraphs               -> DESCRIPTION (.PP), refilled by the formatter
 *   "options:" (a lower-case line ending in ':') -> .SH OPTIONS
 *   "  --flag ARG  text" entries and their deeper-indented continuations
 *                            -> .TP (flags bold, values italic)
 *   `code`                   -> bold
 *
 * Invariants: all text passes through roff_text (backslash, minus signs and
 * control characters at line starts escaped), so any help text yields a page
 * `groff -ww` and `mandoc -Tlint` accept; the date is $SOURCE_DATE_EPOCH when
 * set (reproducible builds), else today.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "docgen.h"

/* Text s[0..n) on the current output line, escaped; `code` in bold. */
static void roff_text(FILE *f, const char *s, size_t n, bool line_start) {
    bool code = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (line_start && (ch == '.' || ch == '\'')) fputs("\\&", f);
        line_start = false;
        if (ch == '\\') fputs("\\e", f);
        else if (ch == '-') fputs("\\-", f);
        else if (ch == '`') {
            fputs(code ? "\\fR" : "\\fB", f);
            code = !code;
        } else if ((unsigned char)ch >= 0x80) {
            /* groff reads ASCII: a UTF-8 sequence becomes the \[uXXXX] glyph escape */
            unsigned char c0 = (unsigned char)ch;
            int len = c0 >= 0xF0 ? 4 : c0 >= 0xE0 ? 3 : c0 >= 0xC0 ? 2 : 1;
            unsigned cp = len == 4 ? c0 & 7u : len == 3 ? c0 & 15u : len == 2 ? c0 & 31u : '?';
            for (int k = 1; k < len; k++) {
                if (i + 1 >= n || ((unsigned char)s[i + 1] & 0xC0) != 0x80) { cp = '?'; break; }
                cp = cp << 6 | ((unsigned char)s[++i] & 63u);
            }
            if (cp == '?') fputc('?', f);
            else fprintf(f, "\\[u%04X]", cp);
        } else fputc(ch, f);
    }
    if (code) fputs("\\fR", f);
}

static void roff_line(FILE *f, const char *s, size_t n) {
    while (n && *s == ' ') s++, n--;
    while (n && s[n - 1] == ' ') n--;
    if (!n) return;
    roff_text(f, s, n, true);
    fputc('\n', f);
}

/* A word of a synopsis or option term: flags and command words bold, value
 * names italic, brackets, bars and commas plain. */
static void roff_word(FILE *f, const char *w, size_t n, bool bold) {
    size_t a = 0, b = n;
    while (a < b && strchr("[(", w[a])) a++;
    while (b > a && strchr("]),.|", w[b - 1])) b--;
    roff_text(f, w, a, false);
    if (b > a) {
        bool flag = w[a] == '-';
        bool value = !flag && !bold && (isupper((unsigned char)w[a]) || isdigit((unsigned char)w[a]) || strchr(w + a, '|'));
        const char *font = flag || bold ? "\\fB" : value ? "\\fI" : "";
        fputs(font, f);
        roff_text(f, w + a, b - a, false);
        if (*font) fputs("\\fR", f);
    }
    roff_text(f, w + b, n - b, false);
}

/* Words of s[0..n); the first `bold` words in bold (e.g. "silica convert"). */
static void roff_words(FILE *f, const char *s, size_t n, int bold) {
    bool first = true;
    for (size_t i = 0; i < n;) {
        while (i < n && s[i] == ' ') i++;
        size_t j = i;
        while (j < n && s[j] != ' ') j++;
        if (j > i) {
            if (!first) fputc(' ', f);
            roff_word(f, s + i, j - i, bold-- > 0);
            first = false;
        }
        i = j;
    }
    fputc('\n', f);
}

static void th(FILE *f, const char *name) {
    char date[32] = "";
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    time_t t = sde && *sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(date, sizeof date, "%Y-%m-%d", &tm);
    fputs(".TH ", f);
    for (const char *p = name; *p; p++) {
        if (*p == '-') fputs("\\-", f);
        else fputc(toupper((unsigned char)*p), f);
    }
    fprintf(f, " 1 %s \"silica %s\" \"silica manual\"\n", date, sl_version());
    fputs(".nh\n.ad l\n", f);   /* no hyphenation (flags, variables), ragged right */
}

typedef struct {
    const char *s;
    size_t n;
} span;

static span next_line(const char **p) {
    span l = {*p, 0};
    const char *e = strchr(*p, '\n');
    l.n = e ? (size_t)(e - *p) : strlen(*p);
    *p += l.n + (e ? 1 : 0);
    return l;
}

static bool blank(span l) {
    for (size_t i = 0; i < l.n; i++)
        if (l.s[i] != ' ') return false;
    return true;
}

/* SYNOPSIS from the usage block at *p (advanced past it). */
static void synopsis(FILE *f, const char **p) {
    fputs(".SH SYNOPSIS\n", f);
    bool first = true;
    while (**p) {
        span l = next_line(p);
        if (blank(l)) break;
        const char *s = l.s;
        size_t n = l.n;
        if (n >= 6 && strncmp(s, "usage:", 6) == 0) s += 6, n -= 6;
        while (n && *s == ' ') s++, n--;
        bool entry = n >= 7 && strncmp(s, "silica ", 7) == 0;
        if (entry && !first) fputs(".br\n", f);
        first = false;
        int bold = 0;
        if (entry) {   /* "silica CMD [sub]" in bold */
            bold = 1;
            const char *w = s + 7;
            while (*w == ' ') w++;
            if (isalpha((unsigned char)*w)) bold = 2;
        }
        roff_words(f, s, n, bold);
    }
}

static bool is_header(span l) {
    if (l.n < 2 || l.n > 32 || l.s[l.n - 1] != ':' || !islower((unsigned char)l.s[0])) return false;
    for (size_t i = 0; i + 1 < l.n; i++)
        if (!islower((unsigned char)l.s[i]) && l.s[i] != ' ') return false;
    return true;
}

static void command_list(FILE *f, const dg_cli *cli) {
    fputs(".SH COMMANDS\n", f);
    for (size_t i = 0; i < cli->n; i++) {
        fprintf(f, ".TP\n.BR \\%%silica\\-%s (1)\n", cli->cmds[i].name);
        roff_line(f, cli->cmds[i].summary, strlen(cli->cmds[i].summary));
    }
    fputs(".TP\n.B silica help\nthe command list, or \\fBsilica help\\fR \\fICOMMAND\\fR: a command's help\n", f);
}

/* The help text after its usage block: paragraphs, sections and option entries.
 * cli: the top-level text, whose "commands:" list becomes the COMMANDS section
 * with links to the command pages (NULL: a command's text). */
static void body(FILE *f, const char *p, const dg_cli *cli) {
    const char *skip = cli ? "commands:" : NULL;
    bool need_pp = false, in_entry = false, skipping = false;
    size_t entry_ind = 0;
    while (*p) {
        span l = next_line(&p);
        if (blank(l)) {
            need_pp = true;
            in_entry = false;
            continue;
        }
        if (is_header(l)) {
            skipping = skip && strlen(skip) == l.n && strncmp(skip, l.s, l.n) == 0;
            in_entry = need_pp = false;
            if (skipping) {
                command_list(f, cli);
                continue;
            }
            fputs(".SH ", f);
            for (size_t i = 0; i + 1 < l.n; i++) fputc(toupper((unsigned char)l.s[i]), f);
            fputc('\n', f);
            need_pp = false;
            in_entry = false;
            continue;
        }
        if (skipping) continue;
        size_t ind = dg_entry_indent(l.s);
        if (ind && ind < l.n) {
            const char *t = l.s + ind;
            size_t tl = dg_term_len(t, l.n - ind);
            fputs(".TP\n", f);
            roff_words(f, t, tl, 0);
            roff_line(f, t + tl, l.n - ind - tl);
            in_entry = true;
            entry_ind = ind;
            need_pp = false;
            continue;
        }
        size_t lead = 0;
        while (lead < l.n && l.s[lead] == ' ') lead++;
        if (in_entry && lead > entry_ind) {
            roff_line(f, l.s, l.n);
            continue;
        }
        if (in_entry || need_pp) fputs(".PP\n", f);
        in_entry = need_pp = false;
        roff_line(f, l.s, l.n);
    }
}

static void see_also(FILE *f, const dg_cli *cli, const dg_cmd *self) {
    fputs(".SH SEE ALSO\n", f);
    if (self) {   /* a command's page points back to silica(1) */
        fputs(".BR silica (1)\n", f);
        return;
    }
    for (size_t i = 0; i < cli->n; i++) fprintf(f, ".BR \\%%silica\\-%s (1)%s\n", cli->cmds[i].name, i + 1 < cli->n ? "," : "");
}

static void top_page(FILE *f, const dg_cli *cli) {
    const char *p = cli->top.help;
    th(f, "silica");
    /* NAME from the first paragraph after the usage: "silica runs, ..." */
    const char *q = p;
    while (*q) {
        span l = next_line(&q);
        if (blank(l)) break;
    }
    span d = next_line(&q);
    const char *s = d.s;
    size_t n = d.n;
    if (n > 7 && strncmp(s, "silica ", 7) == 0) s += 7, n -= 7;
    if (n && s[n - 1] == '.') n--;
    fputs(".SH NAME\nsilica \\- ", f);
    roff_text(f, s, n, false);
    fputc('\n', f);
    synopsis(f, &p);
    fputs(".SH DESCRIPTION\n", f);
    body(f, p, cli);
    see_also(f, cli, NULL);
}

static void command_page(FILE *f, const dg_cli *cli, const dg_cmd *c) {
    char name[96];
    snprintf(name, sizeof name, "silica-%s", c->name);
    th(f, name);
    fprintf(f, ".SH NAME\nsilica\\-%s \\- ", c->name);
    roff_text(f, c->summary, strlen(c->summary), false);
    fputc('\n', f);
    const char *p = c->help;
    synopsis(f, &p);
    fputs(".SH DESCRIPTION\n", f);
    body(f, p, NULL);
    see_also(f, cli, c);
}

void dg_write_man(FILE *f, const dg_cli *cli, const dg_cmd *cmd) {
    fputs(".\\\" Generated by `silica --man` from the commands' --help texts; do not edit.\n", f);
    if (cmd) command_page(f, cli, cmd);
    else top_page(f, cli);
}
