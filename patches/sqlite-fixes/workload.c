// The library's own workload, driven from JS through emscripten's glue: one in-memory database
// that lives across calls (so a patch applied between two calls meets its data).
#include <stdio.h>
#include <string.h>
#include "sqlite3.h"

static sqlite3 *db;
static char out[65536];
static size_t used;

static int row(void *unused, int n, char **values, char **names) {
  (void)unused; (void)names;
  for (int i = 0; i < n && used < sizeof out - 2; i++) {
    int w = snprintf(out + used, sizeof out - used, "%s%s", i ? "|" : "", values[i] ? values[i] : "NULL");
    used = used + w >= sizeof out ? sizeof out - 1 : used + w;
  }
  if (used < sizeof out - 1) out[used++] = '\n';
  out[used] = 0;
  return 0;
}

int wl_open(void) { return sqlite3_open(":memory:", &db); }

/** Runs SQL; returns the rows as text (columns joined by |), or "error: <message>". */
const char *wl_query(const char *sql) {
  char *err = 0;
  used = 0;
  out[0] = 0;
  if (sqlite3_exec(db, sql, row, 0, &err) != SQLITE_OK) {
    snprintf(out, sizeof out, "error: %s", err ? err : "?");
    sqlite3_free(err);
  }
  return out;
}
