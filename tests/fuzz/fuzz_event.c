/* fuzz_event.c - libFuzzer harness: one serialized Event (a TFRecord payload) through
 * ff_summary_reader_event_decode, which unpacks it (protobuf-c) and checks every summary value
 * it holds (histograms, PNG headers, text, hparams and layout plugin data). A decoded
 * event's values must be complete: a tag and a NUL-terminated text each. */
#include "ff/summary_reader.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ff_summary_event_info ev;
    ff_err err = {0};
    if (ff_summary_reader_event_decode(data, size, &ev, &err) == FF_OK) {
        if (!ev.what || (ev.n_values > 0 && !ev.values) || ev.n_values < 0)
            fuzz_fail("decoded event is incomplete");
        for (int i = 0; i < ev.n_values; i++) {
            const ff_summary_value_info *v = &ev.values[i];
            if (!v->tag || !memchr(v->text, '\0', sizeof v->text) ||
                !memchr(v->plugin, '\0', sizeof v->plugin))
                fuzz_fail("value %d is incomplete", i);
        }
        if (!memchr(ev.file_version, '\0', sizeof ev.file_version))
            fuzz_fail("file_version is not terminated");
        ff_summary_reader_event_info_destroy(&ev);
        ff_summary_reader_event_info_destroy(&ev); /* documented as safe twice */
    } else if (!err.msg[0] || ev.values || ev.n_values) {
        fuzz_fail("ff_summary_reader_event_decode failed but left values or no message");
    }
    return 0;
}
