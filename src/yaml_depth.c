/* yaml_depth.c - the nesting guard of the YAML readers (src/yaml_depth.h). */
#include "yaml_depth.h"

#include <yaml.h>

int ff_yaml_too_deep(const char *text, size_t len, int max_depth, int *line, int *col)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return -1;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int deep = 0, depth = 0, done = 0;
    while (!deep && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev))
            break; /* a syntax error: the loader reports it with its position */
        if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
            if (++depth > max_depth) {
                deep = 1;
                *line = (int)ev.start_mark.line + 1;
                *col = (int)ev.start_mark.column + 1;
            }
        } else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return deep;
}
