/* train.c - train a Forward-Forward net from a config through libffrun's trainer API
 * (include/ff/trainer.h) and save the model:
 *     train CONFIG.yaml OUT.ffm [KEY=VALUE ...]       (the --set overrides of ffrun)
 * Build: cc train.c $(pkg-config --cflags --libs ffrun) -o train */
#include <stdio.h>

#include <ff/config.h>
#include <ff/trainer.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIG.yaml OUT.ffm [KEY=VALUE ...]\n", argv[0]);
        return 2;
    }
    ff_err err = {0};
    ff_config cfg;
    ff_trainer t = {0};
    int rc = ff_config_load(&cfg, argv[1], &err);
    for (int i = 3; !rc && i < argc; i++)
        rc = ff_config_set(&cfg, argv[i], &err);
    if (!rc)
        rc = ff_config_validate(&cfg, &err);
    if (!rc)
        rc = ff_trainer_create(&t, &cfg, NULL, NULL, &err);
    while (!rc && t.epoch < cfg.train.epochs) {
        ff_step_stats st;
        if (ff_trainer_next(&t, &st)) { /* the batch that completed an epoch */
            ff_eval_result r; /* the validation images if the config holds some out */
            const int val = t.val.n > 0;
            ff_trainer_evaluate(&t, t.epoch, val ? FF_EVAL_VAL : FF_EVAL_TEST, &r);
            printf("epoch %d: %s error %.2f%%\n", t.epoch, val ? "validation" : "test",
                   100.0 * (val ? r.val.main_error : r.test.main_error));
        }
    }
    if (!rc)
        rc = ff_trainer_save(&t, argv[2], "", &err);
    ff_trainer_free(&t);
    if (rc)
        fprintf(stderr, "train: %s\n", err.msg);
    return ff_err_exit_status(rc);
}
