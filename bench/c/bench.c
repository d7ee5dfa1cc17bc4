/*
 * The C side of bench/c: nol_lookup (+ nol_result_free) on a cache hit and on a fresh lookup
 * over HTTP, timed call by call. bench/c/bench_rust.rs makes exactly the same calls through
 * nol-core; bench/c/run.sh runs both against one sandbox and prints the ratios.
 * Output: one line per case, "<case> <n> <p50_ns> <p90_ns> <p99_ns> <mean_ns>".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nol.h"

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

static void report(const char *name, long long *t, size_t n) {
  long long sum = 0;
  for (size_t i = 0; i < n; i++) sum += t[i];
  qsort(t, n, sizeof *t, cmp);
  printf("%s %zu %lld %lld %lld %lld\n", name, n, t[n / 2], t[n * 9 / 10], t[n * 99 / 100],
         sum / (long long)n);
}

static nol_client *client(size_t cache) {
  nol_config *cfg = NULL;
  nol_client *c = NULL;
  if (nol_config_new(&cfg) || nol_config_set_cache_size(cfg, cache) ||
      nol_config_set_budget_ms(cfg, 2000) || nol_client_new(cfg, &c)) {
    fprintf(stderr, "bench: %s\n", nol_last_error());
    exit(1);
  }
  nol_config_free(cfg);
  return c;
}

static void run(const char *name, nol_client *c, size_t n, nol_outcome want) {
  long long *t = calloc(n, sizeof *t);
  nol_call call = {0};
  call.number = "+14155551212";
  for (size_t i = 0; i < n; i++) {
    nol_result *r = NULL;
    long long start = now_ns();
    nol_status st = nol_lookup(c, &call, &r);
    nol_result_free(r);
    t[i] = now_ns() - start;
    if (st != NOL_STATUS_OK) exit(1);
  }
  /* Check the case measured what it says. */
  nol_result *r = NULL;
  nol_outcome o = NOL_OUTCOME_FAIL_OPEN;
  nol_lookup(c, &call, &r);
  nol_result_outcome(r, &o);
  nol_result_free(r);
  if (o != want) {
    fprintf(stderr, "bench %s: unexpected outcome %u\n", name, (unsigned)o);
    exit(1);
  }
  report(name, t, n);
  free(t);
}

int main(int argc, char **argv) {
  size_t hits = argc > 1 ? (size_t)atol(argv[1]) : 200000;
  size_t fresh = argc > 2 ? (size_t)atol(argv[2]) : 2000;
  /* API key, base URL and public key from the environment. */
  nol_client *cached = client(10000);
  run("cache_hit", cached, hits / 10, NOL_OUTCOME_CACHED); /* warm-up */
  run("cache_hit", cached, hits, NOL_OUTCOME_CACHED);
  nol_client *uncached = client(0);
  run("fresh", uncached, fresh / 10, NOL_OUTCOME_VERIFIED); /* warm-up, connections open */
  run("fresh", uncached, fresh, NOL_OUTCOME_VERIFIED);
  nol_client_free(cached);
  nol_client_free(uncached);
  return 0;
}
