/* predict.c - classify image files with a trained model through libffrun
 * (include/ff/model.h, include/ff/image.h):
 *     predict MODEL.ffm IMAGE...       (PNG, PGM/PPM, IDX or CIFAR-10 files)
 * prints "IMAGE CLASS SCORE" per image, by the model's default readout.
 * Build: cc predict.c $(pkg-config --cflags --libs ffrun) -o predict */
#include <stdio.h>
#include <stdlib.h>

#include <ff/image.h>
#include <ff/model.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.ffm IMAGE...\n", argv[0]);
        return 2;
    }
    ff_err err = {0};
    ff_model m;
    int rc = ff_model_open(&m, argv[1], NULL, &err); /* NULL: the data.dir of its config */
    const ff_model_readout r = rc ? FF_MODEL_READOUT_GOODNESS : ff_model_default_readout(&m);
    for (int i = 2; !rc && i < argc; i++) {
        ff_image_file f;
        if ((rc = ff_image_file_read(argv[i], m.image, &f, &err)))
            break;
        float *scores = malloc(sizeof(float) * 10 * (size_t)f.n);
        if (!scores)
            return 1;
        ff_model_scores(&m, r, f.images, f.n, scores); /* all images of the file at once */
        for (int j = 0; j < f.n; j++) {
            const int k = ff_model_argmax(scores + 10 * j);
            printf("%s#%d %d %g\n", argv[i], j, k, scores[10 * j + k]);
        }
        free(scores);
        ff_image_file_free(&f);
    }
    ff_model_free(&m);
    if (rc)
        fprintf(stderr, "predict: %s\n", err.msg);
    return ff_err_exit_status(rc);
}
