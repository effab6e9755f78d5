/* yaml_depth.h - a guard both YAML readers (the config, src/config.c, and the sweep file,
 * src/sweep.c) run before building a document: libyaml's loader takes minutes on a
 * million nested '[', so the events are walked first (no document built) to the first
 * list or mapping nested too deep. Private to src/. */
#ifndef FF_YAML_DEPTH_H
#define FF_YAML_DEPTH_H

#include <stddef.h>

/* 1 if a list or mapping of text is nested deeper than max_depth, with *line and *col
 * (1-based) where it starts; 0 if none, or at a syntax error (the loader reports it, with
 * its position); -1 if libyaml has no memory. */
int ff_yaml_too_deep(const char *text, size_t len, int max_depth, int *line, int *col);

#endif
