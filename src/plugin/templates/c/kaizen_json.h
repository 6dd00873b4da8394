/* Reading JSON requests in a Kaizen plugin. jsmn (jsmn.h, vendored, MIT:
 * LICENSE.jsmn) splits the text into tokens with a loop, never recursing,
 * into an array this header allocates; these helpers add what a unit needs
 * on top: a nesting limit checked before parsing (a request nested 100 000
 * deep is the caller's `invalid-input`, as in the other SDKs), and looking
 * up an object's member. Strings are the raw text between the quotes
 * (escapes are not decoded). */
#ifndef KAIZEN_JSON_H
#define KAIZEN_JSON_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include "jsmn.h"

/* Nesting a request may have, as the Rust, Python and JavaScript SDKs. */
#define KAIZEN_JSON_MAX_DEPTH 128

/* Whether `text` opens more than `max` arrays or objects inside each other
 * (brackets inside strings do not count). Malformed text is left to the
 * parser. */
static inline bool kaizen_json_too_deep(const char *text, size_t len, size_t max) {
    size_t depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) return true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return false;
}

/* The tokens of `text` in a malloc'd array (free it), their number in
 * `*count`; NULL when `text` is not one JSON value. */
static inline jsmntok_t *kaizen_json_parse(const char *text, size_t len, int *count) {
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, text, len, NULL, 0);
    if (n < 1) return NULL;
    jsmntok_t *tokens = calloc((size_t)n, sizeof(jsmntok_t));
    if (tokens == NULL) return NULL;
    jsmn_init(&p);
    if (jsmn_parse(&p, text, len, tokens, (unsigned)n) != n || tokens[0].end < 0) {
        free(tokens);
        return NULL;
    }
    /* One value and nothing after it but spaces. */
    for (size_t i = (size_t)tokens[0].end; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
            free(tokens);
            return NULL;
        }
    }
    *count = n;
    return tokens;
}

/* The index of the token after token `i` and everything inside it. */
static inline int kaizen_json_skip(const jsmntok_t *t, int count, int i) {
    int end = t[i].end;
    for (i++; i < count && t[i].start < end; i++) {
    }
    return i;
}

/* The index of the value of member `key` of the object at token `object`,
 * or -1 (not an object, or no such member). */
static inline int kaizen_json_get(const char *text, const jsmntok_t *t, int count, int object, const char *key) {
    if (object < 0 || object >= count || t[object].type != JSMN_OBJECT) return -1;
    size_t key_len = strlen(key);
    int i = object + 1;
    for (int member = 0; member < t[object].size && i + 1 < count; member++) {
        const jsmntok_t *k = &t[i];
        if (k->type == JSMN_STRING && (size_t)(k->end - k->start) == key_len &&
            memcmp(text + k->start, key, key_len) == 0) {
            return i + 1;
        }
        i = kaizen_json_skip(t, count, i + 1);
    }
    return -1;
}

#endif
