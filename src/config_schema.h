/* config_schema.h - the config key table and value conversions (internal to config*.c).
 *
 * ff_config_keys lists every key of ff_config once: dotted path, type,
 * default (as YAML text), range, help and where the value lives. ff_layer_keys
 * does the same for the fields of one model.layers entry (offsets into
 * ff_layer_cfg). Parsing, --set, defaults, validation, help, YAML, markdown
 * and the HParams visit are all driven by these two tables. */
#ifndef FF_CONFIG_SCHEMA_H
#define FF_CONFIG_SCHEMA_H

#include <stddef.h>

#include "ff/config.h"

typedef enum {
    FF_KEY_INT,     /* int, decimal, range-checked */
    FF_KEY_U64,     /* uint64_t, decimal */
    FF_KEY_FLOAT,   /* float, strtod syntax (1e-3), finite, range-checked */
    FF_KEY_BOOL,    /* int 0/1: true/false, yes/no, on/off */
    FF_KEY_STRING,  /* char[size], always NUL-terminated; UTF-8 text without control
                       characters (C0, DEL, C1) or noncharacters */
    FF_KEY_ENUM,    /* int-sized enum, value = index into names */
    FF_KEY_LAYERS,  /* model.layers: sequence of mappings (ff_layer_keys) */
    FF_KEY_INTLIST  /* clf.layers: sequence of ints, count stored at count_offset */
} ff_key_type;

enum {
    FF_KEY_MIN_EXCL = 1, /* value must be > min (not >=) */
    FF_KEY_MAX_EXCL = 2, /* value must be < max (not <=) */
    FF_KEY_IDENT = 4,    /* string: only letters, digits, '.', '_', '-' */
    FF_KEY_NONEMPTY = 8  /* string: "" is not allowed (a directory) */
};

typedef struct ff_key {
    const char *path;          /* "train.epochs"; for layer keys just "units" */
    ff_key_type type;
    size_t offset, size;       /* where the value lives and its size in bytes */
    size_t count_offset;       /* FF_KEY_INTLIST: offset of the int element count */
    const char *const *names;  /* FF_KEY_ENUM: NULL-terminated value names, or: */
    const char *(*name_of)(int value); /* FF_KEY_ENUM: value's name, NULL past the last */
    double min, max;           /* FF_KEY_INT/FLOAT (and list elements) */
    unsigned flags;            /* FF_KEY_* flags */
    const char *def;           /* default as YAML text; NULL = zero (lists) */
    const char *help;          /* one-line meaning */
} ff_key;

extern const ff_key ff_config_keys[];
extern const size_t ff_config_n_keys;
extern const ff_key ff_layer_keys[];
extern const size_t ff_layer_n_keys;

/* Key lookup by exact dotted path (or layer field name); NULL if unknown. */
const ff_key *ff_key_find(const char *path);
const ff_key *ff_layer_key_find(const char *name);

/* 1 if `prefix` names a section (e.g. "train") that holds keys. */
int ff_key_is_section(const char *prefix);

/* Writes to out the closest known name to `name` among the config paths and
 * sections (layer = 0) or the layer field names (layer = 1): the smallest edit
 * distance within about a third of the length, else a key with the same last
 * part ("train.lr" -> "optimizer.lr"). Returns 0 (out = "") if none fits. */
int ff_key_suggest(const char *name, int layer, char *out, size_t cap);

/* Converts `text` for key k and stores it at base + k->offset. `path` names
 * the key in messages ("expected an integer for <path>, got 'x'"). Scalar
 * types only. Returns FF_OK or FF_ERR_USAGE; the message has no position. */
int ff_key_set_text(const ff_key *k, void *base, const char *text, const char *path, ff_err *err);

/* What key k expects, for messages: "an integer", "one of sgd, adam", ... */
void ff_key_expected(const ff_key *k, char *buf, size_t cap);

/* NULL if s is UTF-8 text without control characters (C0, DEL, C1) or noncharacters;
 * else what is wrong where ("an invalid UTF-8 byte 0xff at byte 5"), written to buf.
 * String values must pass: such text survives ff_config_to_yaml and parsing unchanged. */
const char *ff_text_problem(const char *s, char *buf, size_t cap);

/* Range check of a number already converted for key k. */
int ff_key_check_range(const ff_key *k, double v, const char *path, ff_err *err);

/* Checks the stored value of scalar key k (range, enum index, bool, string). */
int ff_key_check_stored(const ff_key *k, const void *base, const char *path, ff_err *err);

/* Writes the stored value as text (strings raw, enums by name, floats as the
 * shortest text that reads back to the same float). Returns snprintf-style length. */
int ff_key_format(const ff_key *k, const void *base, char *buf, size_t cap);

/* Fills one layer with its defaults (kind fc, stride 1, ...). */
void ff_layer_defaults(ff_layer_cfg *l);

/* 1 if layer field k applies to (is required by) layer kind `kind`: from the
 * kind's ff_layer_ops keys (required); type applies to and is required by all. */
int ff_layer_key_applies(const ff_key *k, ff_layer_kind kind);
int ff_layer_key_required(const ff_key *k, ff_layer_kind kind);

#endif
