/* cmd_predict.c - `ffrun predict MODEL.ffm INPUT...`: classify image files with a trained
 * model (include/ff/model.h), one line (or JSON object) per image. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "ff/embed.h"
#include "ff/image.h"
#include "ff/model.h"
#include "ff/text.h"

static const char predict_help[] =
    "usage: ffrun predict MODEL.ffm INPUT... [--json] [--top K] [--readout goodness|softmax]\n"
    "                     [--data DIR]\n"
    "\n"
    "Classifies images with a trained model. INPUT is a PNG (8-bit grey, grey+alpha, RGB,\n"
    "RGBA; decoded with zlib alone), a binary PGM (P5) or PPM (P6), an IDX image file\n"
    "(MNIST's, gzipped or not), a CIFAR-10 batch file (every image of it), or - to read\n"
    "one path per line from standard input. Images must have the model's size (no\n"
    "resizing) and channels: a greyscale model takes grey images (alpha dropped; an RGB\n"
    "image with equal channels counts as grey), a colour model RGB ones.\n"
    "\n"
    "For every image one line: the input (FILE#I for the I-th image, from 0, of an IDX or\n"
    "CIFAR-10 file), a tab, the predicted class, a tab, then the K best classes with their\n"
    "scores (best first, CLASS:SCORE); classes are named where the data set names them\n"
    "(CIFAR-10), else digits. Scores: the goodness readout (default for supervised models:\n"
    "the summed goodness of the evaluated layers with each label, as ffrun eval reads the\n"
    "model) or the softmax head's probabilities (--readout softmax; models trained with\n"
    "eval.softmax, and unsupervised_clf models, whose only readout it is).\n"
    "\n"
    "options:\n"
    "  --json           one JSON object per line: input, class, name (null where the\n"
    "                   data set has no names), readout, scores (all 10, by class),\n"
    "                   top (the K best: class, name, score)\n"
    "  --top K          the K best classes (1..10, default 10)\n"
    "  --readout R      goodness or softmax (default: the model's own, see above)\n"
    "  --data DIR       the model's training data (default: data.dir of its config): the\n"
    "                   image shape, class names and, for models trained with\n"
    "                   data.normalize channel or batch-norm statistics, the statistics\n"
    "                   the model file does not hold are computed from it as the run did\n"
    "\n"
    "Images are classified in batches of 100. The first bad input (unreadable, wrong\n"
    "size or channels, not an image) stops predict with a message naming the file;\n"
    "the lines printed before it stand.\n"
    "exit status: 0 success, 1 runtime failure (a model file or training data that cannot\n"
    "be read or is corrupt), 2 usage error (a bad option; no training data in data.dir;\n"
    "an input that is missing, unreadable, corrupt, not an image, or of the wrong size or\n"
    "channels).\n";

#define PREDICT_BATCH 100

typedef struct predict_opts {
    const char *model, *data;
    int json, top;
    int readout; /* -1: the model's default */
} predict_opts;

/* A batch of images waiting to be classified, with their names. */
typedef struct pending {
    int n;
    size_t dim;
    float *images;                /* [PREDICT_BATCH, dim] */
    char *names[PREDICT_BATCH];   /* malloc'ed */
    float scores[PREDICT_BATCH * FF_NUM_CLASSES];
} pending;

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "ffrun: predict: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'ffrun predict --help'.\n");
    return 2;
}

static void json_string(const char *s)
{
    char *q = ff_text_json_quoted(s);
    fputs(q ? q : "null", stdout);
    free(q);
}

/* The class's name, or its digit. */
static const char *class_label(const ff_model *m, int k, char digit[4])
{
    if (m->class_names[k][0])
        return m->class_names[k];
    snprintf(digit, 4, "%d", k);
    return digit;
}

/* order[0..10) = the classes by score, best first (ties: the smaller class) */
static void rank(const float *s, int order[FF_NUM_CLASSES])
{
    for (int k = 0; k < FF_NUM_CLASSES; k++)
        order[k] = k;
    for (int i = 1; i < FF_NUM_CLASSES; i++)
        for (int j = i; j > 0 && s[order[j]] > s[order[j - 1]]; j--) {
            const int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
}

/* The class's name as a JSON string, or null where the data set has none. */
static void json_name(const ff_model *m, int k)
{
    if (m->class_names[k][0])
        json_string(m->class_names[k]);
    else
        printf("null");
}

static void print_json(const ff_model *m, const predict_opts *o, ff_model_readout r,
                       const char *name, const float *s, const int *order)
{
    printf("{\"input\": ");
    json_string(name);
    printf(", \"class\": %d, \"name\": ", order[0]);
    json_name(m, order[0]);
    printf(", \"readout\": \"%s\", \"scores\": [", ff_model_readout_name(r));
    for (int k = 0; k < FF_NUM_CLASSES; k++)
        printf("%s%.9g", k ? ", " : "", s[k]);
    printf("], \"top\": [");
    for (int i = 0; i < o->top; i++) {
        printf("%s{\"class\": %d, \"name\": ", i ? ", " : "", order[i]);
        json_name(m, order[i]);
        printf(", \"score\": %.9g}", s[order[i]]);
    }
    printf("]}\n");
}

static void print_line(const ff_model *m, const predict_opts *o, const char *name,
                       const float *s, const int *order)
{
    char d[4];
    printf("%s\t%s\t", name, class_label(m, order[0], d));
    for (int i = 0; i < o->top; i++)
        printf("%s%s:%.6g", i ? " " : "", class_label(m, order[i], d), s[order[i]]);
    printf("\n");
}

/* Classifies and prints what is pending, then empties it. */
static void flush_pending(ff_model *m, const predict_opts *o, ff_model_readout r, pending *p)
{
    ff_model_scores(m, r, p->images, p->n, p->scores);
    for (int i = 0; i < p->n; i++) {
        const float *s = p->scores + (size_t)i * FF_NUM_CLASSES;
        int order[FF_NUM_CLASSES];
        rank(s, order);
        if (o->json)
            print_json(m, o, r, p->names[i], s, order);
        else
            print_line(m, o, p->names[i], s, order);
        free(p->names[i]);
        p->names[i] = NULL;
    }
    p->n = 0;
    fflush(stdout);
}

/* Every image of one input file into the pending batch (flushed when full). */
static int add_file(ff_model *m, const predict_opts *o, ff_model_readout r, pending *p,
                    const char *path, ff_err *err)
{
    ff_image_file f;
    int rc = ff_image_file_read(path, m->image, &f, err);
    if (rc == FF_ERR_IO || rc == FF_ERR_FORMAT)
        rc = err->code = FF_ERR_USAGE; /* a bad input is the user's: exit 2 */
    for (int i = 0; !rc && i < f.n; i++) {
        const size_t len = strlen(path) + 16;
        char *name = malloc(len);
        if (!name) {
            rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory");
            break;
        }
        if (f.n == 1 && strcmp(f.kind, "idx") && strcmp(f.kind, "cifar10"))
            snprintf(name, len, "%s", path);
        else
            snprintf(name, len, "%s#%d", path, i);
        memcpy(p->images + (size_t)p->n * p->dim, f.images + (size_t)i * p->dim,
               sizeof(float) * p->dim);
        p->names[p->n++] = name;
        if (p->n == PREDICT_BATCH)
            flush_pending(m, o, r, p);
    }
    ff_image_file_free(&f);
    return rc;
}

/* The paths listed on standard input, one per line (empty lines skipped). */
static int add_stdin_list(ff_model *m, const predict_opts *o, ff_model_readout r, pending *p,
                          ff_err *err)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = FF_OK;
    while (!rc && (len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len > 0)
            rc = add_file(m, o, r, p, line, err);
    }
    free(line);
    return rc;
}

static int parse_predict_args(int argc, char **argv, predict_opts *o, const char **inputs,
                              int *n_inputs)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(predict_help, stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if ((!strcmp(a, "--top") || !strcmp(a, "--readout") || !strcmp(a, "--data")) &&
                   i + 1 >= argc) {
            return usage("%s needs a value", a);
        } else if (!strcmp(a, "--top")) {
            char *end;
            const long k = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || k < 1 || k > FF_NUM_CLASSES)
                return usage("--top needs an integer from 1 to 10, got '%s'", argv[i]);
            o->top = (int)k;
        } else if (!strcmp(a, "--readout")) {
            const char *v = argv[++i];
            if (strcmp(v, "goodness") && strcmp(v, "softmax"))
                return usage("--readout is goodness or softmax, got '%s'", v);
            o->readout = !strcmp(v, "softmax") ? FF_MODEL_READOUT_SOFTMAX
                                               : FF_MODEL_READOUT_GOODNESS;
        } else if (!strcmp(a, "--data")) {
            o->data = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return usage("unknown option '%s'", a);
        } else if (!o->model) {
            o->model = a;
        } else {
            inputs[(*n_inputs)++] = a;
        }
    }
    if (!o->model)
        return usage("%s", "no model file given");
    if (!*n_inputs)
        return usage("%s", "no input given (image files, or - for a list on standard input)");
    int dashes = 0;
    for (int i = 0; i < *n_inputs; i++)
        dashes += !strcmp(inputs[i], "-");
    if (dashes > 1)
        return usage("%s", "- (the list on standard input) may be given once");
    return -1;
}

int ff_cmd_predict(int argc, char **argv)
{
    predict_opts o = {.top = FF_NUM_CLASSES, .readout = -1};
    const char **inputs = calloc((size_t)argc + 1, sizeof *inputs);
    int n_inputs = 0;
    if (!inputs)
        return 1;
    int status = parse_predict_args(argc, argv, &o, inputs, &n_inputs);
    if (status >= 0) {
        free(inputs);
        return status;
    }
    ff_err err = {0};
    ff_model m;
    pending p = {0};
    int rc = ff_model_open(&m, o.model, o.data, &err);
    const ff_model_readout r = o.readout >= 0 ? (ff_model_readout)o.readout
                                              : (rc ? FF_MODEL_READOUT_GOODNESS
                                                    : ff_model_default_readout(&m));
    if (!rc && (rc = ff_model_check_readout(&m, r, &err)))
        ff_err_prefix(&err, "%s", o.model);
    if (!rc) {
        p.dim = (size_t)ff_shape_dim(m.image);
        if (!(p.images = malloc(sizeof(float) * PREDICT_BATCH * p.dim)))
            rc = ff_err_set(&err, FF_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; !rc && i < n_inputs; i++)
        rc = !strcmp(inputs[i], "-") ? add_stdin_list(&m, &o, r, &p, &err)
                                     : add_file(&m, &o, r, &p, inputs[i], &err);
    if (p.n) /* the good images before a bad input too */
        flush_pending(&m, &o, r, &p);
    for (int i = 0; i < p.n; i++)
        free(p.names[i]);
    free(p.images);
    free(inputs);
    ff_model_free(&m);
    fflush(stdout);
    if (rc)
        fprintf(stderr, "ffrun: predict: %s%s\n", err.msg,
                strstr(err.msg, "its training data (data.dir") ? "; --data DIR names its folder"
                                                                : "");
    return ff_err_exit_status(rc);
}
