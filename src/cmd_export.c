/* cmd_export.c - `ffrun export MODEL.ffm OUT.npz`: a trained model as NumPy arrays and a
 * manifest (include/ff/export.h). */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "ff/export.h"
#include "ff/model.h"

static const char export_help[] =
    "usage: ffrun export MODEL.ffm OUT.npz [--data DIR]\n"
    "\n"
    "Writes a trained model (supervised or unsupervised_clf) as a NumPy .npz: every\n"
    "layer's weights and biases in PyTorch's layouts (fc [out, in] as nn.Linear, conv\n"
    "[out, in/groups, k, k] as nn.Conv2d, local [oh, ow, out, in, k, k]: a conv kernel per\n"
    "output location), batch-norm statistics and affine scales and shifts, the input's\n"
    "per-channel mean and std (data.normalize channel), the softmax head, the pattern\n"
    "embedding's tiles, a recurrent net's top-down weights (model.recurrent, fc layers;\n"
    "manifest version 2), and manifest.json describing the architecture, the label\n"
    "embedding, the normalisations and the readouts: np.load(OUT)['manifest.json'].\n"
    "tools/ffm_torch.py builds the PyTorch module from it and computes ffrun predict's\n"
    "scores. Statistics the model file does not hold (input normalisation, batch-norm\n"
    "evaluation statistics) are computed from the training data as ffrun eval does:\n"
    "--data DIR replaces the data.dir of the model's config.\n"
    "exit status: 0 success, 1 runtime failure, 2 usage error.\n";

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "ffrun: export: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'ffrun export --help'.\n");
    return 2;
}

int ff_cmd_export(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *data = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(export_help, stdout);
            return 0;
        } else if (!strcmp(a, "--data")) {
            if (i + 1 >= argc)
                return usage("%s needs a value", a);
            data = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return usage("unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else if (!out) {
            out = a;
        } else {
            return usage("one model and one output file (extra: '%s')", a);
        }
    }
    if (!model || !out)
        return usage("%s", "needs MODEL.ffm and OUT.npz");
    const size_t n = strlen(out);
    if (n < 4 || strcmp(out + n - 4, ".npz") != 0)
        return usage("the output file must end in .npz, got '%s'", out);
    ff_err err = {0};
    ff_model m;
    int rc = ff_model_open(&m, model, data, &err);
    if (!rc)
        rc = ff_export_npz(&m, model, out, &err);
    if (!rc)
        printf("%s: %d layers%s, readouts: %s%s\n", out, m.net->n_layers,
               m.head ? " and the softmax head" : "", m.is_clf ? "" : "goodness",
               m.head ? (m.is_clf ? "softmax" : ", softmax") : "");
    ff_model_free(&m);
    if (rc)
        fprintf(stderr, "ffrun: export: %s%s\n", err.msg,
                strstr(err.msg, "its training data (data.dir") ? "; --data DIR names its folder"
                                                                : "");
    return ff_err_exit_status(rc);
}
