/*
 * The soak of bench/soak: one million lookups through the C ABI (nol_lookup, blocking) from 32
 * pthreads, mixing cache hits, fresh answers and injected faults against the sandbox, with the
 * process's RSS, thread count and open descriptors sampled as it goes. bench/soak/run.sh
 * builds and runs it; the README says what each check means.
 *
 *   soak [LOOKUPS] [THREADS] [SAMPLE_EVERY]      (1000000, 32, 50000)
 *
 * API key, base URL and public key come from the environment (run.sh sets them).
 *
 * Exit status 0 when every check passes, 1 otherwise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nol.h"

/* ---- the mix ------------------------------------------------------------------------------ */

/* Per 1000 lookups (by the lookup's index): 700 repeat callers (cache hits), 250 fresh numbers
 * (each asked once in the whole run), 50 faults. */
#define MIX_REPEAT 700
#define MIX_FRESH 250

/* Which client a fault goes to (see the README). */
enum { C_MAIN, C_SHORT, C_HELD, N_CLIENTS };
static const char *const CLIENT_NAMES[N_CLIENTS] = {"main", "short", "held"};

typedef struct {
  const char *name;     /* the sandbox's name for the fault */
  const char *number;   /* +141555509NN: the NNth fault of nol-sandbox's Fault::ALL */
  int client;           /* C_MAIN, C_SHORT or C_HELD */
  const char *reason;   /* the fail-open reason every decision for it must have */
  unsigned http_status; /* for reason "http_status" */
  int weight;           /* slots of the 50 fault slots per 1000 lookups */
} fault;

static const fault FAULTS[] = {
    {"hang", "+14155550901", C_SHORT, "timeout", 0, 1},
    {"drip", "+14155550902", C_SHORT, "timeout", 0, 1},
    {"slow-body", "+14155550903", C_SHORT, "timeout", 0, 1},
    {"reset", "+14155550904", C_MAIN, "connect", 0, 4},
    {"close", "+14155550905", C_MAIN, "connect", 0, 4},
    {"500", "+14155550906", C_MAIN, "http_status", 500, 4},
    {"503", "+14155550907", C_MAIN, "http_status", 503, 4},
    {"429", "+14155550908", C_HELD, "rate_limited", 0, 2},
    {"401", "+14155550909", C_MAIN, "http_status", 401, 4},
    {"non-json", "+14155550910", C_MAIN, "unparseable", 0, 4},
    {"truncated", "+14155550911", C_MAIN, "connect", 0, 4},
    {"huge", "+14155550912", C_MAIN, "body_too_large", 0, 1},
    {"wrong-types", "+14155550913", C_MAIN, "unusable", 0, 4},
    {"bad-signature", "+14155550914", C_MAIN, "bad_signature", 0, 4},
    {"no-signature", "+14155550915", C_MAIN, "unsigned", 0, 4},
    {"redirect", "+14155550916", C_MAIN, "http_status", 302, 4},
};
#define N_FAULTS (sizeof FAULTS / sizeof FAULTS[0])
static int fault_of_slot[1000 - MIX_REPEAT - MIX_FRESH];

/* The repeat callers: the sandbox's directory (names to check) and numbers without a record. */
#define N_REPEAT 32
static char repeat_numbers[N_REPEAT][16];
static const char *const DIRECTORY[][2] = {
    {"+14155551212", "Acme Support"},
    {"+14155550100", "Verified & online"},
    {"+14155550111", "Café Zürich — Bäckerei"},
    {"+14155550122", NULL},
    {"+14155550133", NULL},
};
#define N_DIRECTORY 5

/* ---- what is counted ---------------------------------------------------------------------- */

/* Rows: repeat, fresh, then one per fault. Columns: verified, cached, then fail-open reasons
 * by name (an unknown name lands in the last column). */
enum { ROW_REPEAT, ROW_FRESH, ROW_FAULT0 };
#define N_ROWS (ROW_FAULT0 + N_FAULTS)
static const char *const REASONS[] = {
    "timeout",   "connect",       "tls",         "http_status", "rate_limited",
    "body_too_large", "unparseable", "unsigned", "bad_signature", "unusable",
    "circuit_open", "busy",       "invalid_number", "anonymous", "not_configured",
    "(other)"};
#define N_REASONS (sizeof REASONS / sizeof REASONS[0])
#define COL_VERIFIED 0
#define COL_CACHED 1
#define N_COLS (2 + N_REASONS)

typedef struct {
  unsigned long long count[N_ROWS][N_COLS];
  unsigned long long not_fail_open[N_ROWS]; /* a fault decision that did not fail open */
  unsigned long long stale[N_ROWS];         /* a fault decision with `connect` instead */
  unsigned long long wrong_reason[N_ROWS];  /* a fault decision with any other reason */
  unsigned long long wrong_name;           /* a directory hit with another caller name */
  unsigned long long errors;               /* any status but NOL_STATUS_OK */
  long long max_ns[N_ROWS];
  double sum_ns[N_ROWS];
} tally;

static nol_client *clients[N_CLIENTS];
static atomic_ullong next_index;
static atomic_ullong next_fresh;
static unsigned long long total_lookups, sample_every;
static long long started_ns;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- process figures ---------------------------------------------------------------------- */

/* A look at the process: RSS, threads and open descriptors (/proc/self), and the heap glibc
 * has handed out and not had back (mallinfo2: every arena, plus mmapped blocks). */
typedef struct {
  long rss_kb, threads, fds, sockets, heap_kb;
} look;

/* One round of SAMPLE_EVERY lookups: the look at its end, with every thread at a barrier (no
 * lookup in flight), and the mean of the looks taken every 5 ms while it ran. */
typedef struct {
  unsigned long long lookups;
  double seconds;
  look end;
  double mean_rss_kb, mean_fds, mean_sockets;
  long max_fds, max_other_fds;
  int looks;
} sample;

#define MAX_SAMPLES 1024
static sample samples[MAX_SAMPLES];
static int n_samples;

static long status_field(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long value = -1;
  size_t len = strlen(field);
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, len) == 0 && line[len] == ':') {
      value = atol(line + len + 1);
      break;
    }
  fclose(f);
  return value;
}

/* Open descriptors, and how many of them are sockets (the connection pools'). */
static long open_fds(long *sockets) {
  DIR *d = opendir("/proc/self/fd");
  long n = 0, sock = 0;
  struct dirent *e;
  char target[64];
  if (!d) return -1;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    /* One closed since the directory was read is not counted. */
    ssize_t len = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
    if (len <= 0) continue;
    target[len] = '\0';
    n++;
    if (strncmp(target, "socket:", 7) == 0) sock++;
  }
  closedir(d);
  *sockets = sock;
  return n - 1; /* the directory's own descriptor */
}

/* One look at a time: a look opens descriptors of its own, which another must not count. */
static pthread_mutex_t look_lock = PTHREAD_MUTEX_INITIALIZER;

static look take_look(void) {
  look l;
  pthread_mutex_lock(&look_lock);
  struct mallinfo2 m = mallinfo2();
  l.rss_kb = status_field("VmRSS");
  l.threads = status_field("Threads");
  l.fds = open_fds(&l.sockets);
  l.heap_kb = (long)((m.uordblks + m.hblkhd) / 1024);
  pthread_mutex_unlock(&look_lock);
  return l;
}

/* The watcher's sums for the round under way (reset at each round's end). */
static pthread_mutex_t round_lock = PTHREAD_MUTEX_INITIALIZER;
static double round_rss_sum, round_fds_sum, round_sockets_sum;
static long round_fds_max, round_other_max;
static int round_looks;

static void record_sample(unsigned long long lookups) {
  sample s;
  s.lookups = lookups;
  s.seconds = (double)(now_ns() - started_ns) / 1e9;
  s.end = take_look();
  pthread_mutex_lock(&round_lock);
  s.looks = round_looks;
  s.mean_rss_kb = round_looks ? round_rss_sum / round_looks : (double)s.end.rss_kb;
  s.mean_fds = round_looks ? round_fds_sum / round_looks : (double)s.end.fds;
  s.mean_sockets = round_looks ? round_sockets_sum / round_looks : (double)s.end.sockets;
  s.max_fds = round_fds_max > s.end.fds ? round_fds_max : s.end.fds;
  s.max_other_fds = round_other_max > s.end.fds - s.end.sockets ? round_other_max
                                                                 : s.end.fds - s.end.sockets;
  round_rss_sum = round_fds_sum = round_sockets_sum = 0;
  round_fds_max = round_other_max = 0;
  round_looks = 0;
  pthread_mutex_unlock(&round_lock);
  if (n_samples < MAX_SAMPLES) samples[n_samples++] = s;
  printf("%8llu lookups %5.1f s | at rest: RSS %5ld kB, heap %5ld kB, threads %3ld, fds %2ld "
         "(%2ld sockets) | running (%3d looks): RSS %5.0f kB, fds %4.1f (%4.1f sockets, max %ld)\n",
         s.lookups, s.seconds, s.end.rss_kb, s.end.heap_kb, s.end.threads, s.end.fds,
         s.end.sockets, s.looks, s.mean_rss_kb, s.mean_fds, s.mean_sockets, s.max_fds);
  fflush(stdout);
}

/* ---- one lookup --------------------------------------------------------------------------- */

static int reason_column(const char *reason) {
  for (size_t i = 0; i + 1 < N_REASONS; i++)
    if (strcmp(reason, REASONS[i]) == 0) return (int)(2 + i);
  return (int)(2 + N_REASONS - 1);
}

static void lookup(tally *t, unsigned long long i) {
  unsigned slot = (unsigned)(i % 1000);
  char fresh[16];
  int row, client = C_MAIN;
  const char *want_name = NULL;
  const fault *f = NULL;
  nol_call call = {0};

  if (slot < MIX_REPEAT) {
    unsigned k = (unsigned)(i / 1000 * 7 + slot) % N_REPEAT;
    row = ROW_REPEAT;
    call.number = repeat_numbers[k];
    if (k < N_DIRECTORY) want_name = DIRECTORY[k][1];
  } else if (slot < MIX_REPEAT + MIX_FRESH) {
    /* 415-2XX-XXXX: a million possible numbers, none in the directory or a fault's. */
    unsigned long long n = atomic_fetch_add(&next_fresh, 1);
    snprintf(fresh, sizeof fresh, "+14152%06llu", n % 1000000ULL);
    row = ROW_FRESH;
    call.number = fresh;
  } else {
    int k = fault_of_slot[slot - MIX_REPEAT - MIX_FRESH];
    f = &FAULTS[k];
    row = ROW_FAULT0 + k;
    client = f->client;
    call.number = f->number;
  }

  nol_result *r = NULL;
  long long start = now_ns();
  nol_status st = nol_lookup(clients[client], &call, &r);
  long long took = now_ns() - start;
  if (st != NOL_STATUS_OK) {
    t->errors++;
    fprintf(stderr, "nol_lookup(%s): status %u: %s\n", call.number, (unsigned)st,
            nol_last_error());
    return;
  }
  if (took > t->max_ns[row]) t->max_ns[row] = took;
  t->sum_ns[row] += (double)took;

  /* What a host reads of every decision: outcome, reason, caller name, header block, JSON. */
  nol_outcome outcome;
  char *reason = NULL, *name = NULL;
  const char *block = NULL, *json = NULL;
  uint16_t http_status = 0;
  if (nol_result_outcome(r, &outcome) || nol_result_fail_open_reason(r, &reason) ||
      nol_result_fail_open_http_status(r, &http_status) || nol_result_caller_name(r, &name) ||
      nol_result_header_block(r, &block) || nol_result_json(r, &json)) {
    t->errors++;
    fprintf(stderr, "a result accessor failed: %s\n", nol_last_error());
  }
  int col;
  if (outcome == NOL_OUTCOME_VERIFIED)
    col = COL_VERIFIED;
  else if (outcome == NOL_OUTCOME_CACHED)
    col = COL_CACHED;
  else
    col = reason_column(reason ? reason : "");
  t->count[row][col]++;
  if (f && outcome != NOL_OUTCOME_FAIL_OPEN)
    t->not_fail_open[row]++;
  else if (f && (!reason || strcmp(reason, f->reason) != 0 ||
                 (f->http_status && http_status != f->http_status))) {
    if (reason && strcmp(reason, "connect") == 0)
      t->stale[row]++;
    else
      t->wrong_reason[row]++;
  }
  if (want_name && outcome != NOL_OUTCOME_FAIL_OPEN && (!name || strcmp(name, want_name) != 0))
    t->wrong_name++;
  nol_string_free(reason);
  nol_string_free(name);
  nol_result_free(r);
}

/* The lookups go in rounds of SAMPLE_EVERY: at the end of each, every thread waits at a
 * barrier (no lookup in flight, idle connections back in their pools) and one of them takes
 * the sample, so that samples compare like with like. */
static pthread_barrier_t round_barrier;
static unsigned long long round_end;

static void *worker(void *arg) {
  tally *t = arg;
  for (;;) {
    unsigned long long end = round_end, i;
    while ((i = atomic_fetch_add(&next_index, 1)) < end) lookup(t, i);
    if (pthread_barrier_wait(&round_barrier) == PTHREAD_BARRIER_SERIAL_THREAD) {
      record_sample(end);
      atomic_store(&next_index, end);
      round_end = end + sample_every < total_lookups ? end + sample_every : total_lookups;
    }
    pthread_barrier_wait(&round_barrier);
    if (end >= total_lookups) return NULL;
  }
}

/* While lookups run: a look every 5 ms, summed into the round under way. */
static atomic_int running = 1;

static void *watcher(void *arg) {
  (void)arg;
  while (atomic_load(&running)) {
    usleep(5 * 1000);
    look l = take_look();
    pthread_mutex_lock(&round_lock);
    round_rss_sum += (double)l.rss_kb;
    round_fds_sum += (double)l.fds;
    round_sockets_sum += (double)l.sockets;
    if (l.fds > round_fds_max) round_fds_max = l.fds;
    if (l.fds - l.sockets > round_other_max) round_other_max = l.fds - l.sockets;
    round_looks++;
    pthread_mutex_unlock(&round_lock);
  }
  return NULL;
}

/* ---- set-up and report -------------------------------------------------------------------- */

static nol_client *make_client(uint32_t budget_ms, int breaker, uint32_t breaker_failures,
                               uint32_t max_in_flight) {
  nol_config *cfg = NULL;
  nol_client *c = NULL;
  if (nol_config_new(&cfg) || nol_config_set_budget_ms(cfg, budget_ms) ||
      nol_config_set_max_in_flight(cfg, max_in_flight) ||
      (breaker ? nol_config_set_breaker_failures(cfg, breaker_failures)
               : nol_config_set_circuit_breaker(cfg, false)) ||
      nol_client_new(cfg, &c)) {
    fprintf(stderr, "soak: %s\n", nol_last_error());
    exit(2);
  }
  nol_config_free(cfg);
  return c;
}

static const char *verdict(int ok) { return ok ? "PASS" : "FAIL"; }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Flat after the warm-up. CHECK_LEVEL: every round within 5% of the rounds' median (its level),
 * and no drift (the mean of the last third of the rounds within 5% of the mean of the first
 * third). CHECK_DRIFT: no drift only. CHECK_NONE: the figures, for the record. */
enum { CHECK_NONE, CHECK_DRIFT, CHECK_LEVEL };
static int flat(const char *what, int first, double (*get)(const sample *), int check) {
  int n = n_samples - first, third = n / 3 > 0 ? n / 3 : 1;
  double v[MAX_SAMPLES], sorted[MAX_SAMPLES], lo, hi, head = 0, tail = 0;
  for (int i = 0; i < n; i++) sorted[i] = v[i] = get(&samples[first + i]);
  qsort(sorted, (size_t)n, sizeof sorted[0], cmp_double);
  lo = sorted[0];
  hi = sorted[n - 1];
  double median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  for (int i = 0; i < third; i++) {
    head += v[i] / third;
    tail += v[n - third + i] / third;
  }
  double below = median > 0 ? 100.0 * (median - lo) / median : 100.0;
  double above = median > 0 ? 100.0 * (hi - median) / median : 100.0;
  double drift = head > 0 ? 100.0 * (tail - head) / head : 100.0;
  int ok = median > 0 && drift <= 5.0 && drift >= -5.0 &&
           (check != CHECK_LEVEL || (below <= 5.0 && above <= 5.0));
  printf("%s %-20s level %8.1f, rounds %8.1f..%8.1f (-%.1f%% / +%.1f%%%s), drift %+.1f%% "
         "(first third %.1f, last third %.1f)\n",
         check ? verdict(ok) : "info", what, median, lo, hi, below, above,
         check == CHECK_DRIFT ? ": not checked" : "", drift, head, tail);
  return ok || !check;
}
static double get_rss(const sample *s) { return s->mean_rss_kb; }
static double get_rss_rest(const sample *s) { return (double)s->end.rss_kb; }
static double get_heap(const sample *s) { return (double)s->end.heap_kb; }
static double get_threads(const sample *s) { return (double)s->end.threads; }
static double get_fds(const sample *s) { return s->mean_fds; }
static double get_sockets(const sample *s) { return s->mean_sockets; }
static double get_fds_rest(const sample *s) { return (double)s->end.fds; }

int main(int argc, char **argv) {
  total_lookups = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000ULL;
  int n_threads = argc > 2 ? atoi(argv[2]) : 32;
  sample_every = argc > 3 ? strtoull(argv[3], NULL, 10) : 50000ULL;
  if (total_lookups == 0 || n_threads < 1 || sample_every == 0) {
    fprintf(stderr, "usage: soak [LOOKUPS] [THREADS] [SAMPLE_EVERY]\n");
    return 2;
  }

  /* The fault slots, in weight order; the weights must fill them exactly. */
  int used = 0;
  for (size_t k = 0; k < N_FAULTS; k++)
    for (int w = 0; w < FAULTS[k].weight; w++) {
      if (used < (int)(sizeof fault_of_slot / sizeof fault_of_slot[0])) fault_of_slot[used] = (int)k;
      used++;
    }
  if (used != (int)(sizeof fault_of_slot / sizeof fault_of_slot[0])) {
    fprintf(stderr, "soak: fault weights add up to %d, not %zu\n", used,
            sizeof fault_of_slot / sizeof fault_of_slot[0]);
    return 2;
  }
  for (int k = 0; k < N_REPEAT; k++) {
    if (k < N_DIRECTORY)
      snprintf(repeat_numbers[k], sizeof repeat_numbers[k], "%s", DIRECTORY[k][0]);
    else /* 415-3XX-XXXX: possible numbers without a record (cached for 60 s) */
      snprintf(repeat_numbers[k], sizeof repeat_numbers[k], "+1415300%04d", k);
  }

  look before = take_look();
  /* main: the default 400 ms budget; the circuit breaker on but at its largest threshold
   * (1000 failures in a row), so that the faults mixed in among healthy answers never open it.
   * short: 50 ms, for the faults that hang, without a breaker (each must time out).
   * held: the 429s, whose Retry-After holds back every lookup of the client that got it. */
  clients[C_MAIN] = make_client(400, 1, 1000, 32);
  clients[C_SHORT] = make_client(50, 0, 0, 32);
  clients[C_HELD] = make_client(400, 1, 5, 4);
  started_ns = now_ns();
  look made = take_look();
  printf("soak: %llu lookups from %d threads; per 1000: %d repeat callers, %d fresh numbers, "
         "%d faults\n",
         total_lookups, n_threads, MIX_REPEAT, MIX_FRESH, 1000 - MIX_REPEAT - MIX_FRESH);
  printf("before the clients: RSS %ld kB, heap in use %ld kB, threads %ld, fds %ld; with them: "
         "RSS %ld kB, heap in use %ld kB, threads %ld, fds %ld\n",
         before.rss_kb, before.heap_kb, before.threads, before.fds, made.rss_kb, made.heap_kb,
         made.threads, made.fds);

  pthread_t *threads = calloc((size_t)n_threads, sizeof *threads);
  tally *tallies = calloc((size_t)n_threads, sizeof *tallies);
  if (!threads || !tallies) return 2;
  pthread_t watch;
  round_end = sample_every < total_lookups ? sample_every : total_lookups;
  pthread_barrier_init(&round_barrier, NULL, (unsigned)n_threads);
  if (pthread_create(&watch, NULL, watcher, NULL)) {
    perror("pthread_create");
    return 2;
  }
  for (int i = 0; i < n_threads; i++)
    if (pthread_create(&threads[i], NULL, worker, &tallies[i])) {
      perror("pthread_create");
      return 2;
    }
  for (int i = 0; i < n_threads; i++) pthread_join(threads[i], NULL);
  atomic_store(&running, 0);
  pthread_join(watch, NULL);
  double seconds = (double)(now_ns() - started_ns) / 1e9;

  /* Merge. */
  tally all;
  memset(&all, 0, sizeof all);
  for (int i = 0; i < n_threads; i++) {
    for (int r = 0; r < (int)N_ROWS; r++) {
      for (int c = 0; c < (int)N_COLS; c++) all.count[r][c] += tallies[i].count[r][c];
      all.not_fail_open[r] += tallies[i].not_fail_open[r];
      all.stale[r] += tallies[i].stale[r];
      all.wrong_reason[r] += tallies[i].wrong_reason[r];
      if (tallies[i].max_ns[r] > all.max_ns[r]) all.max_ns[r] = tallies[i].max_ns[r];
      all.sum_ns[r] += tallies[i].sum_ns[r];
    }
    all.wrong_name += tallies[i].wrong_name;
    all.errors += tallies[i].errors;
  }

  printf("\n%llu lookups in %.1f s (%.0f/s)\n\n", total_lookups, seconds,
         (double)total_lookups / seconds);
  printf("| calls | client | lookups | verified | cached | fail-open (reason: count) | "
         "mean ms | max ms |\n|---|---|---|---|---|---|---|---|\n");
  unsigned long long healthy_fail_open = 0, wrong = 0, not_fail_open = 0, stale = 0;
  for (int r = 0; r < (int)N_ROWS; r++) {
    unsigned long long n = 0;
    for (int c = 0; c < (int)N_COLS; c++) n += all.count[r][c];
    char reasons[512] = "";
    size_t len = 0;
    for (size_t c = 2; c < N_COLS; c++)
      if (all.count[r][c]) {
        len += (size_t)snprintf(reasons + len, sizeof reasons - len, "%s%s: %llu",
                                len ? ", " : "", REASONS[c - 2], all.count[r][c]);
        if (r < ROW_FAULT0) healthy_fail_open += all.count[r][c];
      }
    char label[64];
    const char *client = CLIENT_NAMES[C_MAIN];
    if (r == ROW_REPEAT)
      snprintf(label, sizeof label, "repeat callers (%d)", N_REPEAT);
    else if (r == ROW_FRESH)
      snprintf(label, sizeof label, "fresh numbers");
    else {
      snprintf(label, sizeof label, "fault %s", FAULTS[r - ROW_FAULT0].name);
      client = CLIENT_NAMES[FAULTS[r - ROW_FAULT0].client];
    }
    wrong += all.wrong_reason[r];
    not_fail_open += all.not_fail_open[r];
    stale += all.stale[r];
    printf("| %s | %s | %llu | %llu | %llu | %s | %.2f | %.1f |\n", label, client, n,
           all.count[r][COL_VERIFIED], all.count[r][COL_CACHED], len ? reasons : "-",
           n ? all.sum_ns[r] / (double)n / 1e6 : 0.0, (double)all.max_ns[r] / 1e6);
  }

  for (int c = 0; c < N_CLIENTS; c++) {
    nol_stats s;
    if (nol_client_stats(clients[c], &s) == NOL_STATUS_OK)
      printf("\nclient %-5s: %llu lookups, %llu cache hits, %llu verified, %llu shared flights, "
             "%llu failed open; latency p50 %llu us, p90 %llu us, p99 %llu us, max %llu us",
             CLIENT_NAMES[c], (unsigned long long)s.lookups, (unsigned long long)s.cache_hits,
             (unsigned long long)s.verified, (unsigned long long)s.shared_flights,
             (unsigned long long)s.fail_open, (unsigned long long)s.latency_p50_us,
             (unsigned long long)s.latency_p90_us, (unsigned long long)s.latency_p99_us,
             (unsigned long long)s.latency_max_us);
  }
  printf("\n\n");

  /* Warm-up: the first fifth of the run (the cache fills with 10000 fresh answers, the
   * connection pools and the allocator's arenas reach their size). */
  int first = 0;
  while (first < n_samples && samples[first].lookups <= total_lookups / 5) first++;
  int ok = 1;
  if (n_samples - first < 2) {
    printf("FAIL too few samples after the warm-up (%d): lower SAMPLE_EVERY\n", n_samples - first);
    ok = 0;
  } else {
    printf("after the warm-up (%d rounds from %llu lookups on):\n", n_samples - first,
           samples[first].lookups);
    ok &= flat("RSS kB (running)", first, get_rss, CHECK_LEVEL);
    ok &= flat("threads", first, get_threads, CHECK_LEVEL);
    /* Descriptors: the process's own never change (checked below); the rest are the pools'
     * connections, as many at a moment as the load asks for (a second in which the machine
     * stalls opens more), up to max_in_flight each (32 + 32 + 4). Flat for them is: no drift,
     * and never above that bound; their round-to-round level is printed. */
    ok &= flat("fds (running)", first, get_fds, CHECK_DRIFT);
    flat("  of them sockets", first, get_sockets, CHECK_NONE);
    flat("RSS kB (at rest)", first, get_rss_rest, CHECK_NONE);
    flat("heap in use kB", first, get_heap, CHECK_NONE);
    flat("fds (at rest)", first, get_fds_rest, CHECK_NONE);
    long most = 0, most_other = 0, bound = before.fds + 32 + 32 + 4;
    for (int i = first; i < n_samples; i++) {
      if (samples[i].max_fds > most) most = samples[i].max_fds;
      if (samples[i].max_other_fds > most_other) most_other = samples[i].max_other_fds;
    }
    int bounded = most <= bound && most_other <= before.fds;
    printf("%s fds never above %ld (the process's own %ld and 68 pooled connections): most %ld, "
           "of which not sockets at most %ld\n",
           verdict(bounded), bound, before.fds, most, most_other);
    ok &= bounded;
  }
  printf("%s no error: %llu statuses other than NOL_STATUS_OK\n", verdict(all.errors == 0),
         all.errors);
  ok &= all.errors == 0;
  printf("%s every fault decision fails open: %llu do not\n", verdict(not_fail_open == 0),
         not_fail_open);
  ok &= not_fail_open == 0;
  printf("%s every fault fails open with its own reason, or `connect` on a stale connection: "
         "%llu other reasons\n",
         verdict(wrong == 0), wrong);
  ok &= wrong == 0;
  /* Healthy numbers never fail open but for two causes outside libnol's say: a request sent
   * on a pooled connection that the sandbox closed the instant before (it closes after each
   * fault's answer without `Connection: close`, see the README), reason `connect`, and a
   * machine too busy to answer within 400 ms, reason `timeout`. Together with the faults that
   * met a stale connection, at most 0.01% of the lookups. */
  unsigned long long healthy = 0;
  int healthy_other = 0;
  for (int r = 0; r < ROW_FAULT0; r++)
    for (int c = 0; c < (int)N_COLS; c++) {
      healthy += all.count[r][c];
      if (c >= 2 && c != 2 + 0 && c != 2 + 1 && all.count[r][c]) healthy_other = 1;
    }
  unsigned long long unexpected = healthy_fail_open + stale;
  int unexpected_ok = !healthy_other && unexpected * 10000 <= total_lookups;
  printf("%s healthy numbers failed open %llu times in %llu (%.4f%%), faults met a stale "
         "connection %llu times: %llu in all, allowed 0.01%% of the lookups (%llu), reasons "
         "`connect` and `timeout` only\n",
         verdict(unexpected_ok), healthy_fail_open, healthy,
         healthy ? 100.0 * (double)healthy_fail_open / (double)healthy : 0.0, stale, unexpected,
         total_lookups / 10000);
  ok &= unexpected_ok;
  printf("%s directory callers show their names: %llu do not\n", verdict(all.wrong_name == 0),
         all.wrong_name);
  ok &= all.wrong_name == 0;

  /* Everything goes back: free the clients, wait out a budget (a request still in flight ends
   * by its deadline on libnol's own thread), and compare with the figures before them. */
  for (int c = 0; c < N_CLIENTS; c++) nol_client_free(clients[c]);
  usleep(1000 * 1000);
  look after = take_look();
  int back = after.threads == before.threads && after.fds == before.fds;
  printf("%s clients freed: threads %ld (before them %ld), fds %ld (before them %ld); RSS %ld "
         "kB, heap in use %ld kB\n",
         verdict(back), after.threads, before.threads, after.fds, before.fds, after.rss_kb,
         after.heap_kb);
  ok &= back;
  printf("\n%s\n", ok ? "soak: PASS" : "soak: FAIL");
  free(threads);
  free(tallies);
  return ok ? 0 : 1;
}
