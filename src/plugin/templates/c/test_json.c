/* The JSON reader's own test, natively (`make test` runs it before building
 * the component). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kaizen_json.h"

static int failures = 0;

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "test_json.c: failed: %s\n", #cond);          \
            failures++;                                               \
        }                                                             \
    } while (0)

static char *nested(size_t depth) {
    char *s = malloc(2 * depth + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    return s;
}

int main(void) {
    char *deep = nested(100000);
    CHECK(kaizen_json_too_deep(deep, strlen(deep), KAIZEN_JSON_MAX_DEPTH));
    free(deep);
    char *at_limit = nested(KAIZEN_JSON_MAX_DEPTH);
    CHECK(!kaizen_json_too_deep(at_limit, strlen(at_limit), KAIZEN_JSON_MAX_DEPTH));
    free(at_limit);
    const char *quoted = "[\"[[[\\\"[[[\"]";
    CHECK(!kaizen_json_too_deep(quoted, strlen(quoted), 1));

    const char *req = " {\"tags\": [\"a\", {\"name\": \"inner\"}], \"name\": \"Ada\", \"n\": 7} ";
    int n = 0;
    jsmntok_t *t = kaizen_json_parse(req, strlen(req), &n);
    CHECK(t != NULL);
    if (t != NULL) {
        int name = kaizen_json_get(req, t, n, 0, "name");
        CHECK(name > 0 && t[name].type == JSMN_STRING);
        CHECK(name > 0 && strncmp(req + t[name].start, "Ada", 3) == 0 && t[name].end - t[name].start == 3);
        int num = kaizen_json_get(req, t, n, 0, "n");
        CHECK(num > 0 && t[num].type == JSMN_PRIMITIVE && req[t[num].start] == '7');
        CHECK(kaizen_json_get(req, t, n, 0, "missing") == -1);
        CHECK(kaizen_json_get(req, t, n, 1, "name") == -1); /* token 1 is a key, not an object */
        free(t);
    }
    const char *bad[] = {"", "{", "not json", "{\"a\": 1} x", "{\"a\" 1}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int count = 0;
        jsmntok_t *tokens = kaizen_json_parse(bad[i], strlen(bad[i]), &count);
        if (tokens != NULL) fprintf(stderr, "parsed: %s\n", bad[i]);
        CHECK(tokens == NULL);
        free(tokens);
    }
    if (failures == 0) printf("kaizen_json: ok\n");
    return failures == 0 ? 0 : 1;
}
