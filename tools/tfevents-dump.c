/* tfevents-dump.c - check and summarise TensorBoard event files (like `tensorboard --inspect`).
 *
 * tfevents-dump [--records | --csv] PATH...
 * PATH is an event file or a log dir walked recursively (files whose basename
 * contains "tfevents"; run = directory relative to PATH). Symlinks are followed
 * like TensorBoard's data server does; a symlink back to a directory's own
 * ancestor (a loop) is skipped with a warning. Every record's two
 * CRCs are verified, every Event decoded and checked, steps must strictly
 * increase per tag and run, tensor tags need plugin metadata on their first
 * occurrence. A run's files are read in name order with TensorBoard's session
 * semantics (docs/tensorboard-format.md section 9): the run's first SessionLog
 * START purges nothing, every later START at step s drops the points of every
 * tag with step >= s, after which steps must increase again; counts are of the
 * points TensorBoard keeps. The hparams status shown is the run's first
 * session_end_info (TensorBoard reads only that one; a later one with another
 * status is a warning). --csv prints, instead of the summary, every scalar point TensorBoard
 * keeps as CSV (run,tag,step,wall_time,value; a header line, RFC 4180 quoting), so a
 * crash-resumed run gives each step once. Tags, run names and values are printed with control
 * bytes (escape sequences) and invalid UTF-8 as \xHH; tags are found by a hash table. Exit 0 if clean (a truncated final record is only a warning),
 * 1 on any corruption (message names file and byte offset), 2 on usage errors. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ff/summary_reader.h"
#include "ff/tfrecord.h"
#include "ff/text.h"

#define MAX_DEPTH 64 /* directory levels below a PATH argument */

typedef struct event_file {
    char *path;
    char *run;
} event_file;

typedef struct file_list {
    event_file *files;
    size_t n, cap;
} file_list;

typedef struct tag_stat {
    char *tag;
    char plugin[64];    /* fixed by the first occurrence, even if purged later */
    int64_t *steps;     /* steps of the points TensorBoard keeps, increasing */
    double *walls, *values; /* their wall times and values (scalars: for --csv) */
    int scalar;         /* a scalar tag (plugin "scalars") */
    size_t n_steps, cap_steps;
    char last[160];     /* rendering of the newest point */
} tag_stat;

typedef struct run_stat {
    tag_stat *tags;
    size_t n, cap;
    size_t *slots;           /* hash table of the tags: 1 + index into tags, 0 empty */
    size_t n_slots;          /* a power of two, at least twice n */
    long records;
    int files;
    int seen_start;          /* a SessionLog START was read (the first purges nothing) */
    int64_t first_start;     /* its step */
    int restarts;            /* later STARTs, each a purge */
    long purged;             /* points they dropped */
    int end_status;          /* the first session_end_info's status, -1 none */
} run_stat;

typedef struct dump_opts {
    int records; /* --records: print every record */
    int csv;     /* --csv: the kept scalar points as CSV instead of the summary */
    int errors;  /* corruption found (exit 1) */
    int warnings;
} dump_opts;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tfevents-dump [--records | --csv] PATH...\n"
            "  PATH       an event file, or a log dir walked recursively for files whose\n"
            "             name contains \"tfevents\" (run = directory relative to PATH;\n"
            "             symlinks followed, loops back to a parent skipped)\n"
            "  --records  also print every record: offset, wall_time, step, tags\n"
            "  --csv      instead of the summary, every scalar point TensorBoard keeps as\n"
            "             CSV: run,tag,step,wall_time,value (a header line first; fields\n"
            "             quoted as RFC 4180 says; a resumed run's purged points left out)\n"
            "  --help     this text\n"
            "Checks both CRCs of every record, decodes every Event and its summaries,\n"
            "and requires steps to strictly increase per tag, as TensorBoard reads them:\n"
            "a run's first SessionLog START purges nothing, each later START at step s\n"
            "drops the points at steps >= s. Prints per run every tag with the count,\n"
            "first/last step and last value of the points TensorBoard keeps, and the\n"
            "hparams status (the run's first session_end_info).\n"
            "Exit status: 0 clean (a truncated final record is only a warning),\n"
            "1 corruption (file and byte offset are named), 2 usage error.\n");
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "tfevents-dump: out of memory\n");
        exit(1);
    }
    return q;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "tfevents-dump: out of memory\n");
        exit(1);
    }
    return d;
}

/* s safe to print (escape sequences and other control bytes, invalid UTF-8 as \xHH),
 * into buf. */
static const char *shown(const char *s, char *buf, size_t cap)
{
    ff_text_escape(s, strlen(s), buf, cap);
    return buf;
}

/* ------------------------------------------------------------ discovery */

static void add_file(file_list *l, const char *path, const char *run)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->files = xrealloc(l->files, l->cap * sizeof *l->files);
    }
    l->files[l->n].path = xstrdup(path);
    l->files[l->n].run = xstrdup(run);
    l->n++;
}

static int is_event_file(const char *name)
{
    size_t n = strlen(name), k = strlen(".profile-empty");
    return strstr(name, "tfevents") && !(n >= k && strcmp(name + n - k, ".profile-empty") == 0);
}

/* (st_dev, st_ino) of a directory being walked. */
typedef struct dir_id {
    dev_t dev;
    ino_t ino;
} dir_id;

/* Adds the event files under dir (run name rel) to l. Symlinks are followed as
 * TensorBoard's data server does (walkdir with follow_links): a directory that
 * is one of its own ancestors (same st_dev and st_ino) closes a loop and is
 * skipped with a warning, so `ln -s . a` neither recurses nor repeats files.
 * anc[0..depth] are the directories from the root down to dir. */
static int walk(file_list *l, const char *dir, const char *rel, dir_id *anc, int depth,
                dump_opts *o)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "tfevents-dump: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4096], sub[4096];
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int m = snprintf(sub, sizeof sub, "%s%s%s", strcmp(rel, ".") ? rel : "",
                         strcmp(rel, ".") ? "/" : "", e->d_name);
        struct stat st;
        if (n < 0 || (size_t)n >= sizeof path || m < 0 || (size_t)m >= sizeof sub) {
            fprintf(stderr, "tfevents-dump: warning: %s/%s: path too long, skipped\n", dir,
                    e->d_name);
            o->warnings++;
            continue;
        }
        if (stat(path, &st) != 0)
            continue; /* dangling symlink */
        if (S_ISDIR(st.st_mode)) {
            int loop = 0;
            for (int i = 0; i <= depth; i++)
                loop |= anc[i].dev == st.st_dev && anc[i].ino == st.st_ino;
            if (loop) {
                fprintf(stderr, "tfevents-dump: warning: %s: symlink loop (the directory "
                        "contains itself), skipped\n", path);
                o->warnings++;
            } else if (depth + 1 >= MAX_DEPTH) {
                fprintf(stderr, "tfevents-dump: warning: %s: deeper than %d levels, skipped\n",
                        path, MAX_DEPTH);
                o->warnings++;
            } else {
                anc[depth + 1] = (dir_id){st.st_dev, st.st_ino};
                rc |= walk(l, path, sub, anc, depth + 1, o);
            }
        } else if (S_ISREG(st.st_mode) && is_event_file(e->d_name)) {
            add_file(l, path, rel);
        }
    }
    closedir(d);
    return rc;
}

static int cmp_files(const void *a, const void *b)
{
    const event_file *x = a, *y = b;
    int c = strcmp(x->run, y->run);
    return c ? c : strcmp(x->path, y->path);
}

/* ------------------------------------------------------------ per run */

/* FNV-1a of a tag (the hash table of a run's tags: 200,000 distinct tags in seconds,
 * where a linear search took minutes). */
static size_t tag_hash(const char *tag)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)tag; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)h;
}

/* The slot of tag in r's table: where it is, or the empty slot where it would go. */
static size_t *tag_slot(const run_stat *r, const char *tag)
{
    size_t i = tag_hash(tag) & (r->n_slots - 1);
    while (r->slots[i] && strcmp(r->tags[r->slots[i] - 1].tag, tag) != 0)
        i = (i + 1) & (r->n_slots - 1);
    return &r->slots[i];
}

static tag_stat *find_tag(run_stat *r, const char *tag)
{
    if (!r->n_slots)
        return NULL;
    const size_t *slot = tag_slot(r, tag);
    return *slot ? &r->tags[*slot - 1] : NULL;
}

/* The table twice as large (or first made), every tag entered again. */
static void grow_slots(run_stat *r)
{
    free(r->slots);
    r->n_slots = r->n_slots ? 2 * r->n_slots : 64;
    r->slots = calloc(r->n_slots, sizeof *r->slots);
    if (!r->slots) {
        fprintf(stderr, "tfevents-dump: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < r->n; i++)
        *tag_slot(r, r->tags[i].tag) = i + 1;
}

static tag_stat *add_tag(run_stat *r, const char *tag)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 32;
        r->tags = xrealloc(r->tags, r->cap * sizeof *r->tags);
    }
    tag_stat *t = &r->tags[r->n++];
    memset(t, 0, sizeof *t);
    t->tag = xstrdup(tag);
    if (2 * r->n > r->n_slots)
        grow_slots(r); /* enters the new tag too */
    else
        *tag_slot(r, tag) = r->n;
    return t;
}

static void run_free(run_stat *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->tags[i].tag);
        free(r->tags[i].steps);
        free(r->tags[i].walls);
        free(r->tags[i].values);
    }
    free(r->tags);
    free(r->slots);
    memset(r, 0, sizeof *r);
    r->end_status = -1;
}

static const char *status_name(int status)
{
    static const char *const names[] = {"STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                        "STATUS_RUNNING"};
    return status >= 0 && status <= 3 ? names[status] : "?";
}

/* A SessionLog START at step: the run's first marks the session start; each
 * later one is a restart that drops every kept point with step >= step. */
static void session_start(run_stat *r, int64_t step)
{
    if (!r->seen_start) {
        r->seen_start = 1;
        r->first_start = step;
        return;
    }
    r->restarts++;
    for (size_t i = 0; i < r->n; i++) {
        tag_stat *t = &r->tags[i];
        size_t keep = t->n_steps;
        while (keep > 0 && t->steps[keep - 1] >= step)
            keep--;
        if (keep < t->n_steps) {
            r->purged += (long)(t->n_steps - keep);
            t->n_steps = keep;
            snprintf(t->last, sizeof t->last, "(newest point purged by the START at step %lld)",
                     (long long)step);
        }
    }
}

static int cmp_tags(const void *a, const void *b)
{
    const tag_stat *x = a, *y = b;
    int c = strcmp(x->plugin, y->plugin);
    return c ? c : strcmp(x->tag, y->tag);
}

static void run_print(run_stat *r, const char *run)
{
    char tag[1024], last[640];
    printf("run %s: %d file%s, %ld records, %zu tags\n", shown(run, tag, sizeof tag), r->files,
           r->files == 1 ? "" : "s", r->records, r->n);
    if (r->n > 1) /* tags is NULL when the run has none: qsort needs an array */
        qsort(r->tags, r->n, sizeof *r->tags, cmp_tags);
    if (r->seen_start)
        printf("  sessions: first SessionLog START at step %lld, %d restart%s purging %ld "
               "point%s\n", (long long)r->first_start, r->restarts, r->restarts == 1 ? "" : "s",
               r->purged, r->purged == 1 ? "" : "s");
    if (r->end_status >= 0)
        printf("  hparams status: %s (the run's first session_end_info)\n",
               status_name(r->end_status));
    if (r->n)
        printf("  %-40s %-15s %7s %10s %10s  %s\n", "tag", "plugin", "count", "first_step",
               "last_step", "last value");
    for (size_t i = 0; i < r->n; i++) {
        tag_stat *t = &r->tags[i];
        shown(t->tag, tag, sizeof tag);
        shown(t->last, last, sizeof last);
        if (t->n_steps)
            printf("  %-40s %-15s %7zu %10lld %10lld  %s\n", tag, t->plugin[0] ? t->plugin : "?",
                   t->n_steps, (long long)t->steps[0], (long long)t->steps[t->n_steps - 1],
                   last);
        else
            printf("  %-40s %-15s %7d %10s %10s  %s\n", tag, t->plugin[0] ? t->plugin : "?",
                   0, "-", "-", last);
    }
}

/* The run's first session_end_info is the one TensorBoard shows; a later one
 * with another status is ignored by it (a warning). */
static void account_end_status(run_stat *r, const ff_summary_value_info *v, int64_t step,
                               const char *path, uint64_t off, dump_opts *o)
{
    if (r->end_status < 0) {
        r->end_status = v->end_status;
    } else if (v->end_status != r->end_status) {
        fprintf(stderr, "%s: offset %llu: warning: session_end_info %s at step %lld is ignored "
                "by TensorBoard, which shows the run's first (%s)\n", path,
                (unsigned long long)off, status_name(v->end_status), (long long)step,
                status_name(r->end_status));
        o->warnings++;
    }
}

/* Per-tag checks and statistics for one decoded value. */
static void account_value(run_stat *r, const ff_summary_value_info *v, int64_t step,
                          double wall, const char *path, uint64_t off, dump_opts *o)
{
    tag_stat *t = find_tag(r, v->tag);
    char tag[1024];
    shown(v->tag, tag, sizeof tag);
    if (!t) {
        t = add_tag(r, v->tag);
        snprintf(t->plugin, sizeof t->plugin, "%s", v->plugin);
        t->scalar = strcmp(v->plugin, "scalars") == 0;
        if (v->is_tensor && !v->has_metadata) {
            fprintf(stderr, "%s: offset %llu: tensor tag '%s' has no plugin metadata on its "
                    "first occurrence\n", path, (unsigned long long)off, tag);
            o->errors++;
        }
    } else if (t->n_steps && step <= t->steps[t->n_steps - 1]) {
        int64_t prev = t->steps[t->n_steps - 1];
        fprintf(stderr, "%s: offset %llu: tag '%s' step %lld does not increase (previous %lld)",
                path, (unsigned long long)off, tag, (long long)step, (long long)prev);
        if (r->seen_start && r->restarts == 0 && r->first_start > 0 && prev >= r->first_start)
            fprintf(stderr, "; the run's only SessionLog START (step %lld) is its first, which "
                    "purges nothing: a new run writes START at step 0 so that a resumed "
                    "run's START purges", (long long)r->first_start);
        fprintf(stderr, "\n");
        o->errors++;
    }
    if (t->n_steps == t->cap_steps) {
        t->cap_steps = t->cap_steps ? 2 * t->cap_steps : 16;
        t->steps = xrealloc(t->steps, t->cap_steps * sizeof *t->steps);
        if (t->scalar) {
            t->walls = xrealloc(t->walls, t->cap_steps * sizeof *t->walls);
            t->values = xrealloc(t->values, t->cap_steps * sizeof *t->values);
        }
    }
    if (t->scalar) {
        t->walls[t->n_steps] = wall;
        t->values[t->n_steps] = v->number;
    }
    t->steps[t->n_steps++] = step;
    snprintf(t->last, sizeof t->last, "%s", v->text);
    if (v->end_status >= 0)
        account_end_status(r, v, step, path, off, o);
}

static void print_record(const ff_tfrecord_record *rec, const ff_summary_event_info *ev)
{
    printf("  offset %-10llu wall_time %.6f step %-8lld %s", (unsigned long long)rec->offset,
           ev->wall_time, (long long)ev->step, ev->what);
    if (ev->file_version[0])
        printf(" %s", ev->file_version);
    if (ev->session_status >= 1 && ev->session_status <= 3)
        printf(" %s", (const char *[]){"START", "STOP", "CHECKPOINT"}[ev->session_status - 1]);
    char tag[1024];
    for (int i = 0; i < ev->n_values; i++)
        printf("%s%s", i ? ", " : " ", shown(ev->values[i].tag, tag, sizeof tag));
    printf("\n");
}

/* Checks one decoded record; index is its position in the file. */
static void check_event(run_stat *r, const ff_summary_event_info *ev, long index,
                        const char *path, uint64_t off, dump_opts *o)
{
    if (index == 0 && strcmp(ev->what, "file_version") != 0) {
        fprintf(stderr, "%s: offset %llu: first record is not a file_version event\n", path,
                (unsigned long long)off);
        o->errors++;
    }
    if (!isfinite(ev->wall_time)) {
        fprintf(stderr, "%s: offset %llu: wall_time is not finite\n", path,
                (unsigned long long)off);
        o->errors++;
    }
    if (ev->session_status == 1) /* SessionLog START */
        session_start(r, ev->step);
    for (int i = 0; i < ev->n_values; i++)
        account_value(r, &ev->values[i], ev->step, ev->wall_time, path, off, o);
}

static void dump_file(run_stat *r, const char *path, dump_opts *o)
{
    ff_tfrecord_reader rd;
    ff_err err = {0};
    if (ff_tfrecord_reader_open(&rd, path, &err)) {
        fprintf(stderr, "tfevents-dump: %s\n", err.msg);
        o->errors++;
        return;
    }
    r->files++;
    if (o->records)
        printf("%s:\n", path);
    ff_tfrecord_record rec;
    long index = 0;
    int rc;
    while ((rc = ff_tfrecord_next(&rd, &rec, &err)) != 0) {
        if (rc < 0 && rd.defect == FF_TFRECORD_TRUNCATED) {
            fprintf(stderr, "%s: warning: %s (ignored: the writer may still be running)\n", path,
                    err.msg);
            o->warnings++;
            continue;
        }
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", path, err.msg);
            o->errors++;
            index++;
            continue;
        }
        ff_summary_event_info ev;
        if (ff_summary_reader_event_decode(rec.data, rec.len, &ev, &err)) {
            fprintf(stderr, "%s: offset %llu: %s\n", path, (unsigned long long)rec.offset, err.msg);
            o->errors++;
        } else {
            if (o->records)
                print_record(&rec, &ev);
            check_event(r, &ev, index, path, rec.offset, o);
            ff_summary_reader_event_info_destroy(&ev);
        }
        r->records++;
        index++;
    }
    if (index == 0 && rd.len == 0) {
        fprintf(stderr, "%s: warning: empty file\n", path);
        o->warnings++;
    }
    ff_tfrecord_reader_destroy(&rd);
}

/* One CSV field: as it is, or in double quotes (quotes doubled) when it holds a comma,
 * a quote or a line break (RFC 4180). */
static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

/* The run's kept scalar points: run,tag,step,wall_time,value, tags in name order. */
static void run_csv(run_stat *r, const char *run)
{
    if (r->n > 1)
        qsort(r->tags, r->n, sizeof *r->tags, cmp_tags);
    for (size_t i = 0; i < r->n; i++) {
        const tag_stat *t = &r->tags[i];
        char tag[1024], name[1024];
        shown(t->tag, tag, sizeof tag);
        shown(run, name, sizeof name);
        for (size_t k = 0; t->scalar && k < t->n_steps; k++) {
            csv_field(name);
            putchar(',');
            csv_field(tag);
            printf(",%lld,%.6f,%.9g\n", (long long)t->steps[k], t->walls[k], t->values[k]);
        }
    }
}

/* Dumps the (sorted) files of l grouped by run. */
static void dump_runs(file_list *l, dump_opts *o)
{
    if (l->n > 1)
        qsort(l->files, l->n, sizeof *l->files, cmp_files);
    if (o->csv)
        printf("run,tag,step,wall_time,value\n");
    for (size_t i = 0; i < l->n;) {
        run_stat r = {.end_status = -1};
        size_t j = i;
        for (; j < l->n && strcmp(l->files[j].run, l->files[i].run) == 0; j++)
            dump_file(&r, l->files[j].path, o);
        if (o->csv)
            run_csv(&r, l->files[i].run);
        else
            run_print(&r, l->files[i].run);
        run_free(&r);
        i = j;
    }
}

static int collect(file_list *l, const char *arg, dump_opts *o)
{
    struct stat st;
    if (stat(arg, &st) != 0) {
        fprintf(stderr, "tfevents-dump: %s: %s\n", arg, strerror(errno));
        return 2;
    }
    if (S_ISDIR(st.st_mode)) {
        size_t before = l->n;
        dir_id anc[MAX_DEPTH] = {{st.st_dev, st.st_ino}};
        int rc = walk(l, arg, ".", anc, 0, o);
        if (l->n == before)
            fprintf(stderr, "tfevents-dump: %s: no event files found\n", arg);
        return rc || l->n == before ? 1 : 0;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", arg);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    add_file(l, arg, slash ? (dir[0] ? dir : "/") : ".");
    return 0;
}

int main(int argc, char **argv)
{
    dump_opts o = {0};
    file_list l = {0};
    int npaths = 0, bad_path = 0; /* worst exit status from collecting paths */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--records") == 0) {
            o.records = 1;
        } else if (strcmp(argv[i], "--csv") == 0) {
            o.csv = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "tfevents-dump: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1])
            continue;
        npaths++;
        int rc = collect(&l, argv[i], &o);
        bad_path = rc > bad_path ? rc : bad_path;
    }
    if (o.records && o.csv) {
        fprintf(stderr, "tfevents-dump: --records and --csv do not go together\n");
        return 2;
    }
    if (npaths == 0) {
        usage(stderr);
        return 2;
    }
    dump_runs(&l, &o);
    for (size_t i = 0; i < l.n; i++) {
        free(l.files[i].path);
        free(l.files[i].run);
    }
    free(l.files);
    if (o.errors)
        fprintf(stderr, "tfevents-dump: %d problem%s found\n", o.errors, o.errors == 1 ? "" : "s");
    if (bad_path)
        return bad_path;
    return o.errors ? 1 : 0;
}
