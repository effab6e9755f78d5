/* run_record.c - config.yaml and run.json of a run directory (include/ff/run_record.h). */
#include "ff/run_record.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ff/fs.h"
#include "ff/text.h"
#include "ff_build_info.h"

/* OpenBLAS's own queries (declared by its cblas.h) */
char *openblas_get_config(void);
char *openblas_get_corename(void);

/* the "model name" line of /proc/cpuinfo, or "unknown" */
static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (!v)
            break;
        for (v++; *v == ' ' || *v == '\t'; v++)
            ;
        snprintf(out, cap, "%.*s", (int)strcspn(v, "\n"), v);
        break;
    }
    if (f)
        fclose(f);
}

void ff_run_record_fill(ff_run_record *r, const char *command, int ranks)
{
    memset(r, 0, sizeof *r);
    snprintf(r->version, sizeof r->version, "%s", FF_VERSION);
    snprintf(r->commit, sizeof r->commit, "%s", FF_BUILD_COMMIT);
    r->dirty = FF_BUILD_DIRTY;
    snprintf(r->compiler, sizeof r->compiler, "%s", FF_BUILD_COMPILER);
    snprintf(r->cflags, sizeof r->cflags, "%s", FF_BUILD_CFLAGS);
    snprintf(r->blas, sizeof r->blas, "%s", openblas_get_config());
    snprintf(r->blas_kernel, sizeof r->blas_kernel, "%s", openblas_get_corename());
    r->threads = openblas_get_num_threads();
    r->ranks = ranks;
    cpu_model(r->cpu, sizeof r->cpu);
    if (gethostname(r->host, sizeof r->host) != 0)
        snprintf(r->host, sizeof r->host, "unknown");
    r->host[sizeof r->host - 1] = '\0';
    snprintf(r->command, sizeof r->command, "%s", command ? command : "");
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(r->start_time, sizeof r->start_time, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

size_t ff_run_record_json(const ff_run_record *r, char *out, size_t cap)
{
    const struct {
        const char *key, *val;
    } strs[] = {{"version", r->version},     {"git_commit", r->commit},
                {"compiler", r->compiler},   {"cflags", r->cflags},
                {"blas", r->blas},           {"blas_kernel", r->blas_kernel},
                {"cpu", r->cpu},             {"host", r->host},
                {"command_line", r->command}, {"start_time", r->start_time}};
    size_t n = 0;
    FF_ASSERT(cap > 1);
    out[0] = '\0';
    n += (size_t)snprintf(out, cap, "{");
    for (size_t i = 0; i < sizeof strs / sizeof *strs && n < cap; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%s\"%s\": ", i ? ", " : "", strs[i].key);
        if (n < cap)
            n += ff_text_json_quote(strs[i].val, out + n, cap - n);
    }
    if (n < cap)
        n += (size_t)snprintf(out + n, cap - n, ", \"git_dirty\": %s, \"threads\": %d, "
                              "\"ranks\": %d", r->dirty < 0 ? "null" : r->dirty ? "true" : "false",
                              r->threads, r->ranks);
    if (n < cap && r->val_images > 0)
        n += (size_t)snprintf(out + n, cap - n, ", \"validation\": {\"images\": %d, \"split\": "
                              "\"%016llx\"}", r->val_images, r->val_split);
    else if (n < cap)
        n += (size_t)snprintf(out + n, cap - n, ", \"validation\": null");
    if (n < cap)
        n += (size_t)snprintf(out + n, cap - n, "}\n");
    return n < cap ? n : strlen(out); /* cut: what was written */
}

int ff_run_record_write(const char *run_dir, const ff_config *cfg, const ff_run_record *r,
                        ff_err *err)
{
    char path[FF_PATH_MAX + 64];
    const size_t cap = 1 << 16;
    char *text = malloc(cap);
    if (!text)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    ff_config_to_yaml(cfg, text, cap);
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
    int rc = ff_fs_write_file_atomic(path, text, strlen(text), err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/run.json", run_dir);
        const size_t n = ff_run_record_json(r, text, cap);
        rc = ff_fs_write_file_atomic(path, text, n, err);
    }
    free(text);
    return rc;
}
