/*
 * libnol's C ABI, tested from C: every function with good and bad input, lookups against the
 * sandbox (verified, cached, policy, every fail-open mode), 32 threads on one client, and a
 * client used across fork(), and the non-blocking lookup (nol_lookup_start + a poll() loop on
 * nol_client_event_fd + nol_client_next) with thousands of lookups in flight against the
 * sandbox, a slow one and a hanging one. Built with -Wall -Wextra -Werror; run by
 * tests/c/run.sh, plain, under valgrind and under AddressSanitizer.
 *
 * Needs NOL_TEST_BASE_URL (the sandbox, http://127.0.0.1:PORT) and NOL_TEST_PUBLIC_KEY (the
 * path of its public key PEM); optionally NOL_TEST_SLOW_URL and NOL_TEST_HANG_URL (sandboxes
 * with the same key that answer after 250 ms / never: `nol sandbox --delay-ms 250`,
 * `nol sandbox --fault hang`), NOL_TEST_SLOW_PUBLIC_KEY (the slow one's key), NOL_TEST_ASYNC_N
 * (lookups per storm, 2000 by default) and NOL_TEST_ASYNC_IN_FLIGHT (their max_in_flight, 512).
 * Ends with "N passed, N failed" and exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nol.h"

static int passed, failed;
static const char *test_name = "";

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (cond) {                                                                       \
      __atomic_add_fetch(&passed, 1, __ATOMIC_RELAXED);                               \
    } else {                                                                          \
      __atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);                               \
      fprintf(stderr, "FAIL %s (%s:%d): %s [last error: %s]\n", test_name, __FILE__, \
              __LINE__, #cond, nol_last_error());                                     \
    }                                                                                 \
  } while (0)

#define CHECK_STATUS(expr, want) CHECK((expr) == (want))
#define CHECK_STR(got, want) CHECK((got) != NULL && strcmp((got), (want)) == 0)

static const char *SANDBOX_KEY = "nol_sandbox_standard_key";
static const char *OTHER_PEM = /* RFC 8410, section 10.1: a valid Ed25519 key, not the sandbox's */
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
    "-----END PUBLIC KEY-----\n";
static const char *BAD_UTF8 = "\xff\xfe\x41";

static char *base_url;
/* How far past its budget a fail-open lookup may return: 400 ms (a loaded 2-core machine),
 * more under valgrind (NOL_TEST_SLACK_MS), which slows everything tenfold. */
static double slack_ms = 400;
static char *pem;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = calloc(1, 65536);
  size_t n = fread(buf, 1, 65535, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

/* ---- helpers over the API ------------------------------------------------------------- */

static nol_config *sandbox_config(uint32_t budget_ms) {
  nol_config *cfg = NULL;
  CHECK_STATUS(nol_config_new(&cfg), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_api_key(cfg, SANDBOX_KEY), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_base_url(cfg, base_url), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_public_key_pem(cfg, pem), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_budget_ms(cfg, budget_ms), NOL_STATUS_OK);
  return cfg;
}

static nol_client *sandbox_client(uint32_t budget_ms) {
  nol_config *cfg = sandbox_config(budget_ms);
  nol_client *client = NULL;
  CHECK_STATUS(nol_client_new(cfg, &client), NOL_STATUS_OK);
  nol_config_free(cfg);
  return client;
}

static nol_result *lookup(const nol_client *client, const char *number) {
  nol_call call = {0};
  call.number = number;
  nol_result *r = NULL;
  CHECK_STATUS(nol_lookup(client, &call, &r), NOL_STATUS_OK);
  CHECK(r != NULL);
  return r;
}

/* A string accessor's value (owned: free it), or NULL. */
typedef nol_status (*string_accessor)(const nol_result *, char **);
static char *get(string_accessor f, const nol_result *r) {
  char *s = (char *)0x1; /* must be overwritten */
  CHECK_STATUS(f(r, &s), NOL_STATUS_OK);
  CHECK(s != (char *)0x1);
  return s == (char *)0x1 ? NULL : s;
}

static int str_is(string_accessor f, const nol_result *r, const char *want) {
  char *s = get(f, r);
  int ok = want == NULL ? s == NULL : (s != NULL && strcmp(s, want) == 0);
  if (!ok) fprintf(stderr, "  got %s, want %s\n", s ? s : "(null)", want ? want : "(null)");
  nol_string_free(s);
  return ok;
}

static nol_action action_of(const nol_result *r) {
  nol_action a = 99;
  CHECK_STATUS(nol_result_action(r, &a), NOL_STATUS_OK);
  return a;
}

static nol_outcome outcome_of(const nol_result *r) {
  nol_outcome o = 99;
  CHECK_STATUS(nol_result_outcome(r, &o), NOL_STATUS_OK);
  return o;
}

/* ---- static functions ----------------------------------------------------------------- */

static void test_version_status_and_errors(void) {
  test_name = "version, status strings, last error";
  CHECK_STR(nol_version(), NOL_VERSION);
  CHECK_STR(nol_status_str(NOL_STATUS_OK), "ok");
  CHECK_STR(nol_status_str(NOL_STATUS_NULL_ARGUMENT), "null argument");
  CHECK_STR(nol_status_str(NOL_STATUS_SIGNATURE_MISMATCH), "signature mismatch");
  CHECK_STR(nol_status_str(4242), "unknown status");
  CHECK(nol_last_error() != NULL);
  /* A failure sets the thread's message; it names the argument. */
  CHECK_STATUS(nol_config_new(NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK(strstr(nol_last_error(), "out") != NULL);
  /* Each thread has its own (checked in the thread test). Frees accept NULL. */
  nol_string_free(NULL);
  nol_config_free(NULL);
  nol_client_free(NULL);
  nol_result_free(NULL);
}

static void test_normalize(void) {
  test_name = "nol_normalize";
  char *out = NULL;
  CHECK_STATUS(nol_normalize("+1 (415) 555-1212", NULL, &out), NOL_STATUS_OK);
  CHECK_STR(out, "+14155551212");
  nol_string_free(out);
  out = NULL;
  CHECK_STATUS(nol_normalize("(415) 555-1212", "US", &out), NOL_STATUS_OK);
  CHECK_STR(out, "+14155551212");
  nol_string_free(out);
  out = NULL;
  CHECK_STATUS(nol_normalize("sip:+442079460018@carrier.example;user=phone", NULL, &out),
               NOL_STATUS_OK);
  CHECK_STR(out, "+442079460018");
  nol_string_free(out);

  char *untouched = (char *)"untouched";
  out = untouched;
  CHECK_STATUS(nol_normalize("(415) 555-1212", NULL, &out), NOL_STATUS_INVALID_NUMBER);
  CHECK(out == untouched); /* outputs are written only on success */
  CHECK(strlen(nol_last_error()) > 0);
  CHECK_STATUS(nol_normalize("12", "US", &out), NOL_STATUS_INVALID_NUMBER);
  CHECK_STATUS(nol_normalize("not a number", "US", &out), NOL_STATUS_INVALID_NUMBER);
  CHECK_STATUS(nol_normalize("anonymous", NULL, &out), NOL_STATUS_ANONYMOUS);
  CHECK_STATUS(nol_normalize("415 555 1212", "ZZ", &out), NOL_STATUS_UNKNOWN_COUNTRY);
  CHECK_STATUS(nol_normalize(NULL, NULL, &out), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_normalize("+14155551212", NULL, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_normalize(BAD_UTF8, NULL, &out), NOL_STATUS_INVALID_UTF8);
  CHECK_STATUS(nol_normalize("+14155551212", BAD_UTF8, &out), NOL_STATUS_INVALID_UTF8);
  CHECK(out == untouched);
}

static void test_stir(void) {
  test_name = "nol_parse_verstat / nol_parse_attestation";
  nol_verstat v = 99;
  nol_attestation a = 99;
  CHECK_STATUS(nol_parse_verstat("TN-Validation-Passed", &v, &a), NOL_STATUS_OK);
  CHECK(v == NOL_VERSTAT_PASSED && a == NOL_ATTESTATION_UNKNOWN);
  CHECK_STATUS(nol_parse_verstat("TN-Validation-Passed-A", &v, &a), NOL_STATUS_OK);
  CHECK(v == NOL_VERSTAT_PASSED && a == NOL_ATTESTATION_A);
  CHECK_STATUS(nol_parse_verstat("<sip:+14155551212;verstat=TN-Validation-Failed@x>", &v, &a),
               NOL_STATUS_OK);
  CHECK(v == NOL_VERSTAT_FAILED);
  CHECK_STATUS(nol_parse_verstat("No-TN-Validation", &v, &a), NOL_STATUS_OK);
  CHECK(v == NOL_VERSTAT_NO_VALIDATION);
  CHECK_STATUS(nol_parse_verstat("TN-Validation-Passedfoo", &v, &a), NOL_STATUS_OK);
  CHECK(v == NOL_VERSTAT_UNKNOWN);
  CHECK_STATUS(nol_parse_verstat(NULL, &v, &a), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_parse_verstat("x", NULL, &a), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_parse_verstat("x", &v, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_parse_verstat(BAD_UTF8, &v, &a), NOL_STATUS_INVALID_UTF8);

  CHECK_STATUS(nol_parse_attestation("B", &a), NOL_STATUS_OK);
  CHECK(a == NOL_ATTESTATION_B);
  CHECK_STATUS(nol_parse_attestation("c", &a), NOL_STATUS_OK);
  CHECK(a == NOL_ATTESTATION_C);
  CHECK_STATUS(nol_parse_attestation("garbage", &a), NOL_STATUS_OK);
  CHECK(a == NOL_ATTESTATION_UNKNOWN);
  CHECK_STATUS(nol_parse_attestation(NULL, &a), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_parse_attestation("A", NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_parse_attestation(BAD_UTF8, &a), NOL_STATUS_INVALID_UTF8);
}

static void test_strip_headers(void) {
  test_name = "nol_strip_headers";
  char *out = NULL;
  CHECK_STATUS(nol_strip_headers("Via: a\r\nX-NumbersOnline-Action: allow\r\n folded\r\n"
                                 "x-numbersonline-risk: 0\r\nTo: b\r\n",
                                 &out),
               NOL_STATUS_OK);
  CHECK_STR(out, "Via: a\r\nTo: b\r\n");
  nol_string_free(out);
  CHECK_STATUS(nol_strip_headers(NULL, &out), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_strip_headers("a: b\r\n", NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_strip_headers(BAD_UTF8, &out), NOL_STATUS_INVALID_UTF8);
}

/* A signed body straight from the sandbox, over a plain socket. */
static char *fetch_signed_body(const char *number) {
  int port = atoi(strrchr(base_url, ':') + 1);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    close(fd);
    return NULL;
  }
  char body[128], req[512];
  snprintf(body, sizeof body, "{\"number\":\"%s\",\"context\":\"inbound_voice\"}", number);
  snprintf(req, sizeof req,
           "POST /api/v1/inbound/lookup HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
           "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
           SANDBOX_KEY, strlen(body), body);
  if (write(fd, req, strlen(req)) < 0) {
    close(fd);
    return NULL;
  }
  char *buf = calloc(1, 65536);
  size_t len = 0;
  ssize_t n;
  while (len < 65535 && (n = read(fd, buf + len, 65535 - len)) > 0) len += (size_t)n;
  close(fd);
  char *start = strstr(buf, "\r\n\r\n");
  if (!start) {
    free(buf);
    return NULL;
  }
  char *out = strdup(start + 4);
  free(buf);
  return out;
}

static void test_verify_response(void) {
  test_name = "nol_verify_response";
  char *body = fetch_signed_body("+14155551212");
  CHECK(body != NULL && strstr(body, "response_signature") != NULL);
  if (!body) return;
  size_t len = strlen(body);
  CHECK_STATUS(nol_verify_response((const uint8_t *)body, len, pem), NOL_STATUS_OK);
  CHECK_STATUS(nol_verify_response((const uint8_t *)body, len, OTHER_PEM),
               NOL_STATUS_SIGNATURE_MISMATCH);
  char *tampered = strdup(body);
  char *acme = strstr(tampered, "Acme");
  CHECK(acme != NULL);
  if (acme) acme[0] = 'X';
  CHECK_STATUS(nol_verify_response((const uint8_t *)tampered, len, pem),
               NOL_STATUS_SIGNATURE_MISMATCH);
  free(tampered);
  /* Not NUL-terminated: only len bytes are read (a truncated body does not parse). */
  CHECK_STATUS(nol_verify_response((const uint8_t *)body, len - 1, pem),
               NOL_STATUS_BODY_UNPARSEABLE);
  free(body);

#define VERIFY(text) nol_verify_response((const uint8_t *)(text), strlen(text), pem)
  CHECK_STATUS(VERIFY("not json"), NOL_STATUS_BODY_UNPARSEABLE);
  CHECK_STATUS(VERIFY("[1,2]"), NOL_STATUS_BODY_UNPARSEABLE);
  CHECK_STATUS(VERIFY("{\"a\":1,\"a\":2,\"response_signature\":\"ed25519:x\"}"),
               NOL_STATUS_BODY_DUPLICATE_KEY);
  CHECK_STATUS(VERIFY("{\"result\":\"found\"}"), NOL_STATUS_SIGNATURE_MISSING);
  CHECK_STATUS(VERIFY("{\"response_signature\":\"rsa:AAAA\"}"), NOL_STATUS_SIGNATURE_WRONG_PREFIX);
  CHECK_STATUS(VERIFY("{\"response_signature\":\"ed25519:AAAA\"}"), NOL_STATUS_SIGNATURE_MALFORMED);
  CHECK_STATUS(VERIFY("{\"response_signature\":7}"), NOL_STATUS_SIGNATURE_MALFORMED);
#undef VERIFY
  CHECK_STATUS(nol_verify_response((const uint8_t *)"{}", 2, "not a pem"),
               NOL_STATUS_INVALID_PUBLIC_KEY);
  CHECK_STATUS(nol_verify_response((const uint8_t *)"{}", 2,
                                   "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
               NOL_STATUS_INVALID_PUBLIC_KEY);
  CHECK_STATUS(nol_verify_response((const uint8_t *)"{}", 2, BAD_UTF8), NOL_STATUS_INVALID_UTF8);
  CHECK_STATUS(nol_verify_response((const uint8_t *)"{}", 2, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_verify_response(NULL, 5, pem), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_verify_response(NULL, 0, pem), NOL_STATUS_BODY_UNPARSEABLE);
}

/* ---- configuration and clients --------------------------------------------------------- */

static void test_config(void) {
  test_name = "nol_config_*";
  nol_config *cfg = NULL;
  CHECK_STATUS(nol_config_new(&cfg), NOL_STATUS_OK);
  CHECK(cfg != NULL);

  CHECK_STATUS(nol_config_set_api_key(NULL, "k"), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_api_key(cfg, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_api_key(cfg, BAD_UTF8), NOL_STATUS_INVALID_UTF8);
  CHECK_STATUS(nol_config_set_api_key(cfg, "has space"), NOL_STATUS_INVALID_API_KEY);
  CHECK_STATUS(nol_config_set_api_key(cfg, "  "), NOL_STATUS_MISSING_API_KEY);
  CHECK_STATUS(nol_config_set_api_key(cfg, "sk_live_abc"), NOL_STATUS_OK);

  CHECK_STATUS(nol_config_set_base_url(NULL, "https://x"), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_base_url(cfg, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_base_url(cfg, BAD_UTF8), NOL_STATUS_INVALID_UTF8);
  CHECK_STATUS(nol_config_set_base_url(cfg, "https://numbers.online"), NOL_STATUS_OK);

  CHECK_STATUS(nol_config_set_public_key_pem(NULL, pem), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_public_key_pem(cfg, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_public_key_pem(cfg, BAD_UTF8), NOL_STATUS_INVALID_UTF8);
  CHECK_STATUS(nol_config_set_public_key_pem(cfg, "hello"), NOL_STATUS_INVALID_PUBLIC_KEY);
  CHECK_STATUS(nol_config_set_public_key_pem(
                   cfg, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
               NOL_STATUS_INVALID_PUBLIC_KEY);
  CHECK_STATUS(nol_config_set_public_key_pem(cfg, pem), NOL_STATUS_OK);

  CHECK_STATUS(nol_config_set_budget_ms(NULL, 100), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_budget_ms(cfg, 0), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_budget_ms(cfg, 60001), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_budget_ms(cfg, 250), NOL_STATUS_OK);

  CHECK_STATUS(nol_config_set_cache_size(NULL, 1), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_cache_size(cfg, 0), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_cache_size(cfg, 5000), NOL_STATUS_OK);

  CHECK_STATUS(nol_config_set_max_in_flight(NULL, 4), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_max_in_flight(cfg, 0), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_max_in_flight(cfg, 5000), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_max_in_flight(cfg, 8), NOL_STATUS_OK);

  CHECK_STATUS(nol_config_set_default_country(NULL, "US"), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_default_country(cfg, "ZZ"), NOL_STATUS_UNKNOWN_COUNTRY);
  CHECK_STATUS(nol_config_set_default_country(cfg, BAD_UTF8), NOL_STATUS_INVALID_UTF8);
  CHECK_STATUS(nol_config_set_default_country(cfg, "US"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_default_country(cfg, NULL), NOL_STATUS_OK);

  CHECK_STATUS(nol_config_set_risk_tag(NULL, "[risk]", 50), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_risk_tag(cfg, "[risk]", 101), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_risk_tag(cfg, " ", 50), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_risk_tag(cfg, BAD_UTF8, 50), NOL_STATUS_INVALID_UTF8);
  CHECK_STATUS(nol_config_set_risk_tag(cfg, "[risk]", 50), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_risk_tag(cfg, NULL, 0), NOL_STATUS_OK);

  CHECK_STATUS(nol_config_set_block(NULL, true), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_block(cfg, true), NOL_STATUS_OK);

  CHECK_STATUS(nol_config_set_screening_contact(NULL, "sip:s@x"), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_screening_contact(cfg, ""), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_screening_contact(cfg, BAD_UTF8), NOL_STATUS_INVALID_UTF8);
  CHECK_STATUS(nol_config_set_screening_contact(cfg, "sip:screen@pbx.example"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_screening_contact(cfg, NULL), NOL_STATUS_OK);

  CHECK_STATUS(nol_config_set_max_name_len(NULL, 10), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_max_name_len(cfg, 0), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_max_name_len(cfg, 2000), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_max_name_len(cfg, 32), NOL_STATUS_OK);

  CHECK_STATUS(nol_config_set_route_advance_code(NULL, 404), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set_route_advance_code(cfg, 302), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_route_advance_code(cfg, 404), NOL_STATUS_OK);

  nol_config_free(cfg);
}

static void test_client_new(void) {
  test_name = "nol_client_new";
  nol_client *untouched = (nol_client *)0x1, *client = untouched;
  nol_config *cfg = NULL;
  CHECK_STATUS(nol_config_new(&cfg), NOL_STATUS_OK);
  CHECK_STATUS(nol_client_new(cfg, NULL), NOL_STATUS_NULL_ARGUMENT);

  /* Nothing set and nothing in the environment. */
  CHECK_STATUS(nol_client_new(cfg, &client), NOL_STATUS_MISSING_API_KEY);
  CHECK_STATUS(nol_client_new(NULL, &client), NOL_STATUS_MISSING_API_KEY);
  CHECK(client == untouched);

  /* The key is never in an error message. */
  CHECK_STATUS(nol_config_set_api_key(cfg, "sk_live_supersecret"), NOL_STATUS_OK);
  CHECK_STATUS(nol_client_new(cfg, &client), NOL_STATUS_MISSING_PUBLIC_KEY);
  CHECK(strstr(nol_last_error(), "supersecret") == NULL);
  CHECK_STATUS(nol_config_set_public_key_pem(cfg, pem), NOL_STATUS_OK);
  /* The base URL is checked when it is set, and the message never repeats it. */
  CHECK_STATUS(nol_config_set_base_url(cfg, "ftp://numbers.online"), NOL_STATUS_INVALID_BASE_URL);
  CHECK(strstr(nol_last_error(), "supersecret") == NULL);
  CHECK_STATUS(nol_config_set_base_url(cfg, "https://u:hunter2@numbers.online"),
               NOL_STATUS_INVALID_BASE_URL);
  CHECK(strstr(nol_last_error(), "hunter2") == NULL);
  CHECK_STATUS(nol_config_set_base_url(cfg, "http://numbers.online"),
               NOL_STATUS_INVALID_BASE_URL); /* plain http off-host */
  CHECK_STATUS(nol_config_set(cfg, "base_url", "https://numbers.online/path"),
               NOL_STATUS_INVALID_BASE_URL);
  CHECK(client == untouched);

  CHECK_STATUS(nol_config_set_base_url(cfg, base_url), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_budget_ms(cfg, 10000), NOL_STATUS_OK);
  CHECK_STATUS(nol_client_new(cfg, &client), NOL_STATUS_OK);
  CHECK(client != untouched && client != NULL);
  nol_config_free(cfg); /* the client keeps a copy */
  /* The wrong key: the sandbox answers 401, and the lookup fails open. */
  nol_result *r = lookup(client, "+14155551212");
  CHECK(action_of(r) == NOL_ACTION_ALLOW_WITH_DEFAULT_POLICY);
  CHECK(str_is(nol_result_fail_open_reason, r, "http_status"));
  uint16_t http = 0;
  CHECK_STATUS(nol_result_fail_open_http_status(r, &http), NOL_STATUS_OK);
  CHECK(http == 401);
  nol_result_free(r);
  nol_client_free(client);
}

/* Runs before any thread exists: setenv is not thread-safe. */
static void test_client_from_environment(const char *key_path) {
  test_name = "nol_client_new from the environment";
  setenv("NUMBERS_ONLINE_API_KEY", SANDBOX_KEY, 1);
  setenv("NOL_BASE_URL", base_url, 1);
  setenv("NOL_PUBLIC_KEY", "/nonexistent/inbound_public.pem", 1);
  nol_client *client = NULL;
  CHECK_STATUS(nol_client_new(NULL, &client), NOL_STATUS_INVALID_PUBLIC_KEY);
  setenv("NOL_PUBLIC_KEY", key_path, 1);
  CHECK_STATUS(nol_client_new(NULL, &client), NOL_STATUS_OK);
  nol_client_free(client);
  /* Only a budget set (generous, for valgrind): the rest comes from the environment. */
  nol_config *cfg = NULL;
  CHECK_STATUS(nol_config_new(&cfg), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_budget_ms(cfg, 10000), NOL_STATUS_OK);
  client = NULL;
  CHECK_STATUS(nol_client_new(cfg, &client), NOL_STATUS_OK);
  nol_config_free(cfg);
  if (client) {
    nol_result *r = lookup(client, "+14155551212");
    CHECK(outcome_of(r) == NOL_OUTCOME_VERIFIED);
    nol_result_free(r);
    nol_client_free(client);
  }
  unsetenv("NUMBERS_ONLINE_API_KEY");
  unsetenv("NOL_BASE_URL");
  unsetenv("NOL_PUBLIC_KEY");
}

/* Every numeric setting's bounds, through nol_config_set and through its typed setter: the
 * ranges live once in libnol's core, and C sees exactly them. */
typedef nol_status (*u32_setter)(nol_config *, uint32_t);
static nol_status set_cache_size_u32(nol_config *c, uint32_t v) { return nol_config_set_cache_size(c, v); }
static nol_status set_risk_threshold_u32(nol_config *c, uint32_t v) {
  return nol_config_set_risk_tag(c, "[risk]", v);
}

static void test_settings_bounds(void) {
  test_name = "settings: bounds through nol_config_set and the typed setters";
  static const struct {
    const char *name;
    uint64_t min, max;
    u32_setter typed;
  } ints[] = {
      {"budget_ms", 1, 60000, nol_config_set_budget_ms},
      {"cache_size", 0, 10000000, set_cache_size_u32},
      {"max_in_flight", 1, 1024, nol_config_set_max_in_flight},
      {"breaker_failures", 1, 1000, nol_config_set_breaker_failures},
      {"breaker_cool_down_ms", 1, 3600000, nol_config_set_breaker_cool_down_ms},
      {"rate_limit_per_minute", 0, 1000000, nol_config_set_rate_limit_per_minute},
      {"risk_threshold", 0, 100, set_risk_threshold_u32},
      {"max_name_len", 1, 1024, nol_config_set_max_name_len},
  };
  nol_config *cfg = NULL;
  CHECK_STATUS(nol_config_new(&cfg), NOL_STATUS_OK);
  char text[32];
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    uint64_t min = ints[i].min, max = ints[i].max;
    int before = failed;
    snprintf(text, sizeof text, "%llu", (unsigned long long)min);
    CHECK_STATUS(nol_config_set(cfg, ints[i].name, text), NOL_STATUS_OK);
    snprintf(text, sizeof text, "%llu", (unsigned long long)max);
    CHECK_STATUS(nol_config_set(cfg, ints[i].name, text), NOL_STATUS_OK);
    snprintf(text, sizeof text, "%llu", (unsigned long long)(max + 1));
    CHECK_STATUS(nol_config_set(cfg, ints[i].name, text), NOL_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(nol_last_error(), ints[i].name) != NULL);
    if (min > 0) {
      snprintf(text, sizeof text, "%llu", (unsigned long long)(min - 1));
      CHECK_STATUS(nol_config_set(cfg, ints[i].name, text), NOL_STATUS_INVALID_ARGUMENT);
    }
    CHECK_STATUS(nol_config_set(cfg, ints[i].name, "-1"), NOL_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(nol_config_set(cfg, ints[i].name, "ten"), NOL_STATUS_INVALID_ARGUMENT);

    CHECK_STATUS(ints[i].typed(cfg, (uint32_t)min), NOL_STATUS_OK);
    CHECK_STATUS(ints[i].typed(cfg, (uint32_t)max), NOL_STATUS_OK);
    CHECK_STATUS(ints[i].typed(cfg, (uint32_t)(max + 1)), NOL_STATUS_INVALID_ARGUMENT);
    if (min > 0) CHECK_STATUS(ints[i].typed(cfg, (uint32_t)(min - 1)), NOL_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ints[i].typed(NULL, (uint32_t)min), NOL_STATUS_NULL_ARGUMENT);
    if (failed != before) fprintf(stderr, "  setting %s\n", ints[i].name);
  }
  /* cache_size's typed setter takes 64 bits. */
  CHECK_STATUS(nol_config_set_cache_size(cfg, 10000001ULL), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_cache_size(cfg, UINT64_MAX), NOL_STATUS_INVALID_ARGUMENT);

  CHECK_STATUS(nol_config_set(cfg, "route_advance_code", "503"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "route_advance_code", "404"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "route_advance_code", "480"), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_route_advance_code(cfg, 503), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_route_advance_code(cfg, 404), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_route_advance_code(cfg, 480), NOL_STATUS_INVALID_ARGUMENT);

  /* Flags. */
  CHECK_STATUS(nol_config_set(cfg, "circuit_breaker", "off"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "circuit_breaker", "yes"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "circuit_breaker", "maybe"), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set_circuit_breaker(cfg, false), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_circuit_breaker(cfg, true), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_circuit_breaker(NULL, true), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set(cfg, "block", "1"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "block", "0"), NOL_STATUS_OK);

  /* Text. */
  CHECK_STATUS(nol_config_set(cfg, "screening_contact", ""), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set(cfg, "screening_contact", "http://x"), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set(cfg, "screening_contact", "sip:screen@pbx.example"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "screening_contact", NULL), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "risk_tag", ""), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set(cfg, "risk_tag", "[risk]"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "risk_tag", NULL), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "default_country", ""), NOL_STATUS_UNKNOWN_COUNTRY);
  CHECK_STATUS(nol_config_set_default_country(cfg, ""), NOL_STATUS_UNKNOWN_COUNTRY);
  CHECK_STATUS(nol_config_set(cfg, "default_country", "GB"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "default_country", NULL), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "api_key", "cl\xc3\xa9"), NOL_STATUS_INVALID_API_KEY);
  CHECK_STATUS(nol_config_set_api_key(cfg, "cl\xc3\xa9"), NOL_STATUS_INVALID_API_KEY);
  CHECK_STATUS(nol_config_set(cfg, "api_key", "sk_live_supersecret x"), NOL_STATUS_INVALID_API_KEY);
  CHECK(strstr(nol_last_error(), "supersecret") == NULL);
  CHECK_STATUS(nol_config_set(cfg, "base_url", base_url), NOL_STATUS_OK);

  /* The shared cache tier and TLS trust, through the one generic setter. A Redis password
   * never reaches the error text. */
  CHECK_STATUS(nol_config_set(cfg, "redis_url", "http://:s3cret-pw@127.0.0.1:6379"),
               NOL_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(nol_last_error(), "s3cret-pw") == NULL);
  CHECK(strstr(nol_last_error(), "redis_url") != NULL);
  CHECK_STATUS(nol_config_set(cfg, "redis_url", "redis://:s3cret-pw@127.0.0.1:1/0"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "redis_key_prefix", "has space"), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set(cfg, "redis_key_prefix", "pbx1:"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "redis_budget_ms", "0"), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set(cfg, "redis_budget_ms", "1001"), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set(cfg, "redis_budget_ms", "20"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set(cfg, "warm_up_ms", "10001"), NOL_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(nol_config_set(cfg, "tls_ca_file", "/nonexistent/ca.pem"), NOL_STATUS_INVALID_CONFIG);
  CHECK(strstr(nol_last_error(), "tls_ca_file") != NULL);

  /* Names. */
  CHECK_STATUS(nol_config_set(cfg, "no_such_setting", "1"), NOL_STATUS_UNKNOWN_SETTING);
  CHECK_STATUS(nol_config_set(cfg, "no_such_setting", NULL), NOL_STATUS_UNKNOWN_SETTING);
  CHECK_STR(nol_status_str(NOL_STATUS_UNKNOWN_SETTING), "unknown setting");
  CHECK_STATUS(nol_config_set(cfg, "Budget_MS", "100"), NOL_STATUS_UNKNOWN_SETTING);
  CHECK_STATUS(nol_config_set(cfg, "budget_ms", NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set(cfg, NULL, "1"), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set(NULL, "budget_ms", "1"), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_config_set(cfg, BAD_UTF8, "1"), NOL_STATUS_INVALID_UTF8);
  nol_config_free(cfg);
}

/* ---- lookups ----------------------------------------------------------------------------- */

static void test_lookup_verified_and_cached(void) {
  test_name = "nol_lookup: verified, then cached";
  nol_client *client = sandbox_client(10000);
  nol_call call = {0};
  call.number = "sip:+14155551212@carrier.example";
  call.verstat = "TN-Validation-Passed";
  call.attestation = "A";
  call.to = "+14155550000";
  nol_result *r = NULL;
  CHECK_STATUS(nol_lookup(client, &call, &r), NOL_STATUS_OK);
  CHECK(action_of(r) == NOL_ACTION_ALLOW);
  CHECK(outcome_of(r) == NOL_OUTCOME_VERIFIED);
  CHECK(str_is(nol_result_action_name, r, "allow"));
  CHECK(str_is(nol_result_caller_name, r, "Acme Support"));
  CHECK(str_is(nol_result_sip_display_name, r, "Acme Support"));
  CHECK(str_is(nol_result_number, r, "+14155551212"));
  CHECK(str_is(nol_result_identity_type, r, "verified_business"));
  CHECK(str_is(nol_result_fail_open_reason, r, NULL));
  CHECK(str_is(nol_result_sip_contact, r, NULL));
  CHECK(str_is(nol_result_sip_reason, r, "Service Unavailable"));
  int32_t risk = -2;
  CHECK_STATUS(nol_result_risk_score(r, &risk), NOL_STATUS_OK);
  CHECK(risk >= 0 && risk <= 100);
  char *level = get(nol_result_risk_level, r);
  CHECK(level != NULL);
  nol_string_free(level);
  char *receipt = get(nol_result_receipt_id, r);
  CHECK(receipt != NULL && strncmp(receipt, "nol_rec_", 8) == 0);
  uint16_t code = 0;
  CHECK_STATUS(nol_result_sip_code(r, &code), NOL_STATUS_OK);
  CHECK(code == 503);
  uint16_t http = 9;
  CHECK_STATUS(nol_result_fail_open_http_status(r, &http), NOL_STATUS_OK);
  CHECK(http == 0);
  uint64_t age = 9;
  CHECK_STATUS(nol_result_cache_age_ms(r, &age), NOL_STATUS_OK);
  CHECK(age == 0);
  char *line = get(nol_result_display_line, r);
  CHECK(line != NULL && strstr(line, "Caller: Acme Support") == line);
  CHECK(line != NULL && strstr(line, "STIR/SHAKEN: A, verified") != NULL);
  nol_string_free(line);

  /* AGI variables: exactly NOL_ACTION, NOL_RISK, NOL_LABEL, NOL_RECEIPT. */
  size_t n = 0;
  CHECK_STATUS(nol_result_agi_count(r, &n), NOL_STATUS_OK);
  CHECK(n == 4);
  const char *agi_names[] = {"NOL_ACTION", "NOL_RISK", "NOL_LABEL", "NOL_RECEIPT"};
  for (size_t i = 0; i < n && i < 4; i++) {
    char *name = NULL, *value = NULL;
    CHECK_STATUS(nol_result_agi_variable(r, i, &name, &value), NOL_STATUS_OK);
    CHECK_STR(name, agi_names[i]);
    if (i == 0) CHECK_STR(value, "allow");
    if (i == 2) CHECK_STR(value, "Acme Support");
    if (i == 3) CHECK_STR(value, receipt);
    nol_string_free(name);
    nol_string_free(value);
  }
  char *name = (char *)0x1, *value = (char *)0x1;
  CHECK_STATUS(nol_result_agi_variable(r, 4, &name, &value), NOL_STATUS_OUT_OF_RANGE);
  CHECK(name == (char *)0x1 && value == (char *)0x1);

  /* Headers: Action, Risk, Receipt. */
  CHECK_STATUS(nol_result_header_count(r, &n), NOL_STATUS_OK);
  CHECK(n == 3);
  const char *header_names[] = {"X-NumbersOnline-Action", "X-NumbersOnline-Risk",
                                "X-NumbersOnline-Receipt"};
  for (size_t i = 0; i < n && i < 3; i++) {
    name = value = NULL;
    CHECK_STATUS(nol_result_header(r, i, &name, &value), NOL_STATUS_OK);
    CHECK_STR(name, header_names[i]);
    CHECK(value != NULL && strlen(value) > 0);
    nol_string_free(name);
    nol_string_free(value);
  }
  CHECK_STATUS(nol_result_header(r, 3, &name, &value), NOL_STATUS_OUT_OF_RANGE);
  CHECK_STATUS(nol_result_header(r, 0, NULL, &value), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_header(r, 0, &name, NULL), NOL_STATUS_NULL_ARGUMENT);
  nol_string_free(receipt);
  nol_result_free(r);

  /* The same call again: from the cache, same decision. */
  r = NULL;
  CHECK_STATUS(nol_lookup(client, &call, &r), NOL_STATUS_OK);
  CHECK(outcome_of(r) == NOL_OUTCOME_CACHED);
  CHECK(action_of(r) == NOL_ACTION_ALLOW);
  CHECK(str_is(nol_result_caller_name, r, "Acme Support"));
  nol_result_free(r);

  /* A known local contact always wins. */
  call.local_contact = "Mum";
  r = NULL;
  CHECK_STATUS(nol_lookup(client, &call, &r), NOL_STATUS_OK);
  CHECK(str_is(nol_result_caller_name, r, "Mum"));
  nol_result_free(r);
  call.local_contact = "Bad \xff bytes";
  r = NULL;
  CHECK_STATUS(nol_lookup(client, &call, &r), NOL_STATUS_OK);
  CHECK(str_is(nol_result_caller_name, r, "Bad \xef\xbf\xbd bytes"));
  nol_result_free(r);

  nol_stats stats;
  memset(&stats, 0xff, sizeof stats);
  CHECK_STATUS(nol_client_stats(client, &stats), NOL_STATUS_OK);
  CHECK(stats.lookups == 4);
  CHECK(stats.cache_hits == 3);
  CHECK(stats.verified == 1);
  CHECK(stats.fail_open == 0);
  CHECK(stats.workers == 32);
  CHECK(!stats.circuit_open);
  CHECK(stats.latency_max_us >= stats.latency_p50_us);
  CHECK_STATUS(nol_client_stats(NULL, &stats), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_client_stats(client, NULL), NOL_STATUS_NULL_ARGUMENT);
  nol_client_free(client);
}

/* A shared tier that cannot be reached costs no call its budget: the lookup goes to the
 * service and is verified (nol-core's tests run a real Redis, hung, killed and lying). */
static void test_lookup_with_unreachable_redis(void) {
  test_name = "nol_lookup: an unreachable Redis falls through to the service";
  nol_config *cfg = sandbox_config(400);
  CHECK_STATUS(nol_config_set(cfg, "redis_url", "redis://127.0.0.1:1/0"), NOL_STATUS_OK);
  nol_client *client = NULL;
  CHECK_STATUS(nol_client_new(cfg, &client), NOL_STATUS_OK);
  nol_config_free(cfg);
  for (int i = 0; i < 5; i++) {
    double start = now_ms();
    nol_result *r = lookup(client, i % 2 ? "+14155550100" : "+14155550111");
    double took = now_ms() - start;
    CHECK(r != NULL);
    if (r) {
      nol_outcome o = NOL_OUTCOME_FAIL_OPEN;
      CHECK_STATUS(nol_result_outcome(r, &o), NOL_STATUS_OK);
      CHECK(o == NOL_OUTCOME_VERIFIED || o == NOL_OUTCOME_CACHED);
      nol_result_free(r);
    }
    CHECK(took < 400 + 400);
  }
  nol_client_free(client);
}

static void test_lookup_policy(void) {
  test_name = "nol_lookup: policy (screening, block, risk tag, no record)";
  nol_config *cfg = sandbox_config(10000);
  CHECK_STATUS(nol_config_set_screening_contact(cfg, "sip:screen@pbx.example"), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_block(cfg, true), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_risk_tag(cfg, "[SPAM?]", 50), NOL_STATUS_OK);
  CHECK_STATUS(nol_config_set_route_advance_code(cfg, 404), NOL_STATUS_OK);
  nol_client *client = NULL;
  CHECK_STATUS(nol_client_new(cfg, &client), NOL_STATUS_OK);
  nol_config_free(cfg);

  nol_result *r = lookup(client, "+14155550122"); /* elevated risk */
  CHECK(action_of(r) == NOL_ACTION_CHALLENGE_OR_ROUTE);
  uint16_t code = 0;
  CHECK_STATUS(nol_result_sip_code(r, &code), NOL_STATUS_OK);
  CHECK(code == 302);
  CHECK(str_is(nol_result_sip_contact, r, "sip:screen@pbx.example"));
  char *name = get(nol_result_caller_name, r);
  CHECK(name != NULL && strncmp(name, "[SPAM?] ", 8) == 0);
  nol_string_free(name);
  nol_result_free(r);

  r = lookup(client, "+14155550133"); /* block candidate, block opted in */
  CHECK(action_of(r) == NOL_ACTION_BLOCK_CANDIDATE);
  CHECK_STATUS(nol_result_sip_code(r, &code), NOL_STATUS_OK);
  CHECK(code == 603);
  nol_result_free(r);

  r = lookup(client, "+14155550199"); /* no record */
  CHECK(action_of(r) == NOL_ACTION_ALLOW_WITH_DEFAULT_POLICY);
  CHECK(outcome_of(r) == NOL_OUTCOME_VERIFIED);
  CHECK(str_is(nol_result_caller_name, r, NULL));
  int32_t risk = 0;
  CHECK_STATUS(nol_result_risk_score(r, &risk), NOL_STATUS_OK);
  CHECK(risk == -1);
  CHECK_STATUS(nol_result_sip_code(r, &code), NOL_STATUS_OK);
  CHECK(code == 404);
  size_t n = 0;
  CHECK_STATUS(nol_result_header_count(r, &n), NOL_STATUS_OK);
  CHECK(n >= 1);
  nol_result_free(r);

  r = lookup(client, "+14155550100"); /* verified individual: never a name but this */
  CHECK(str_is(nol_result_caller_name, r, "Verified & online"));
  nol_result_free(r);
  nol_client_free(client);
}

static void test_lookup_bad_input(void) {
  test_name = "nol_lookup: bad input";
  nol_client *client = sandbox_client(10000);
  nol_result *untouched = (nol_result *)0x1, *r = untouched;
  nol_call call = {0};
  CHECK_STATUS(nol_lookup(client, &call, &r), NOL_STATUS_NULL_ARGUMENT); /* no number */
  call.number = "+14155551212";
  CHECK_STATUS(nol_lookup(NULL, &call, &r), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_lookup(client, NULL, &r), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_lookup(client, &call, NULL), NOL_STATUS_NULL_ARGUMENT);
  call.context = "fax";
  CHECK_STATUS(nol_lookup(client, &call, &r), NOL_STATUS_INVALID_ARGUMENT);
  call.context = BAD_UTF8;
  CHECK_STATUS(nol_lookup(client, &call, &r), NOL_STATUS_INVALID_UTF8);
  CHECK(r == untouched);
  call.context = "inbound_sms";
  r = NULL;
  CHECK_STATUS(nol_lookup(client, &call, &r), NOL_STATUS_OK);
  CHECK(action_of(r) == NOL_ACTION_ALLOW);
  nol_result_free(r);

  /* What comes from the wire is never an error: it fails open. */
  call.context = NULL;
  call.verstat = BAD_UTF8;
  call.attestation = BAD_UTF8;
  call.to = BAD_UTF8;
  r = NULL;
  CHECK_STATUS(nol_lookup(client, &call, &r), NOL_STATUS_OK);
  CHECK(action_of(r) == NOL_ACTION_ALLOW); /* unknown STIR, still looked up */
  nol_result_free(r);
  const char *cases[][2] = {
      {"anonymous", "anonymous"},
      {"sip:anonymous@anonymous.invalid", "anonymous"},
      {"not a number", "invalid_number"},
      {"+1415", "invalid_number"},
      {"+14155551212\xff", "invalid_number"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    call.number = cases[i][0];
    r = NULL;
    CHECK_STATUS(nol_lookup(client, &call, &r), NOL_STATUS_OK);
    CHECK(action_of(r) == NOL_ACTION_ALLOW_WITH_DEFAULT_POLICY);
    CHECK(outcome_of(r) == NOL_OUTCOME_FAIL_OPEN);
    CHECK(str_is(nol_result_fail_open_reason, r, cases[i][1]));
    CHECK(str_is(nol_result_caller_name, r, NULL));
    CHECK(str_is(nol_result_number, r, NULL));
    size_t n = 0;
    CHECK_STATUS(nol_result_agi_count(r, &n), NOL_STATUS_OK);
    char *name = NULL, *value = NULL;
    CHECK_STATUS(nol_result_agi_variable(r, 0, &name, &value), NOL_STATUS_OK);
    CHECK_STR(value, "allow_with_default_policy");
    nol_string_free(name);
    nol_string_free(value);
    nol_result_free(r);
  }

  /* Every accessor checks its pointers. */
  r = lookup(client, "+14155551212");
  char *s = NULL;
  string_accessor strings[] = {nol_result_action_name,     nol_result_caller_name,
                               nol_result_sip_display_name, nol_result_number,
                               nol_result_risk_level,       nol_result_identity_type,
                               nol_result_receipt_id,       nol_result_sip_reason,
                               nol_result_sip_contact,      nol_result_fail_open_reason,
                               nol_result_display_line};
  for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
    CHECK_STATUS(strings[i](NULL, &s), NOL_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(strings[i](r, NULL), NOL_STATUS_NULL_ARGUMENT);
  }
  nol_action a;
  nol_outcome o;
  int32_t risk;
  uint16_t u16;
  uint64_t u64;
  size_t n;
  char *name = NULL, *value = NULL;
  CHECK_STATUS(nol_result_action(NULL, &a), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_action(r, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_outcome(NULL, &o), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_outcome(r, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_risk_score(NULL, &risk), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_risk_score(r, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_sip_code(NULL, &u16), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_sip_code(r, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_fail_open_http_status(NULL, &u16), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_fail_open_http_status(r, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_cache_age_ms(NULL, &u64), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_cache_age_ms(r, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_agi_count(NULL, &n), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_agi_count(r, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_header_count(NULL, &n), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_header_count(r, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_agi_variable(NULL, 0, &name, &value), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_header(NULL, 0, &name, &value), NOL_STATUS_NULL_ARGUMENT);
  nol_result_free(r);

  uint64_t count = 9;
  CHECK_STATUS(nol_client_fail_open_count(client, "invalid_number", &count), NOL_STATUS_OK);
  CHECK(count == 3);
  CHECK_STATUS(nol_client_fail_open_count(client, "anonymous", &count), NOL_STATUS_OK);
  CHECK(count == 2);
  CHECK_STATUS(nol_client_fail_open_count(client, "no_such_reason", &count), NOL_STATUS_OK);
  CHECK(count == 0);
  CHECK_STATUS(nol_client_fail_open_count(NULL, "timeout", &count), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_client_fail_open_count(client, NULL, &count), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_client_fail_open_count(client, BAD_UTF8, &count), NOL_STATUS_INVALID_UTF8);
  CHECK_STATUS(nol_client_fail_open_count(client, "timeout", NULL), NOL_STATUS_NULL_ARGUMENT);
  nol_client_free(client);
}

/* Every way the service can misbehave: OK, allow_with_default_policy, the reason, in time. */
static void test_fail_open_modes(void) {
  test_name = "nol_lookup: fail-open modes";
  static const struct {
    const char *number, *fault, *reason;
    uint16_t http;
    int slow;
  } faults[] = {
      {"+14155550901", "hang", "timeout", 0, 1},
      {"+14155550902", "drip", "timeout", 0, 1},
      {"+14155550903", "slow-body", "timeout", 0, 1},
      {"+14155550904", "reset", "connect", 0, 0},
      {"+14155550905", "close", "connect", 0, 0},
      {"+14155550906", "500", "http_status", 500, 0},
      {"+14155550907", "503", "http_status", 503, 0},
      {"+14155550908", "429", "rate_limited", 0, 0},
      {"+14155550909", "401", "http_status", 401, 0},
      {"+14155550910", "non-json", "unparseable", 0, 0},
      {"+14155550911", "truncated", "connect", 0, 0},
      {"+14155550912", "huge", "body_too_large", 0, 0},
      {"+14155550913", "wrong-types", "unusable", 0, 0},
      {"+14155550914", "bad-signature", "bad_signature", 0, 0},
      {"+14155550915", "no-signature", "unsigned", 0, 0},
      {"+14155550916", "redirect", "http_status", 302, 0},
  };
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
    /* A client per fault: one fault's breaker or Retry-After must not colour the next. */
    uint32_t budget = faults[i].slow ? 300 : 5000;
    nol_client *client = sandbox_client(budget);
    double start = now_ms();
    nol_result *r = lookup(client, faults[i].number);
    double took = now_ms() - start;
    if (!r) {
      nol_client_free(client);
      continue;
    }
    CHECK(action_of(r) == NOL_ACTION_ALLOW_WITH_DEFAULT_POLICY);
    CHECK(outcome_of(r) == NOL_OUTCOME_FAIL_OPEN);
    if (!str_is(nol_result_fail_open_reason, r, faults[i].reason)) {
      fprintf(stderr, "  fault %s\n", faults[i].fault);
      CHECK(0);
    }
    uint16_t http = 0;
    CHECK_STATUS(nol_result_fail_open_http_status(r, &http), NOL_STATUS_OK);
    CHECK(http == faults[i].http);
    CHECK(str_is(nol_result_caller_name, r, NULL));
    /* Within the budget. */
    if (took >= budget + slack_ms) fprintf(stderr, "  fault %s took %.0f ms\n", faults[i].fault, took);
    CHECK(took < budget + slack_ms);
    nol_result_free(r);
    nol_client_free(client);
  }

  /* Nothing listening at all. */
  nol_config *cfg = sandbox_config(300);
  CHECK_STATUS(nol_config_set_base_url(cfg, "http://127.0.0.1:1"), NOL_STATUS_OK);
  nol_client *client = NULL;
  CHECK_STATUS(nol_client_new(cfg, &client), NOL_STATUS_OK);
  nol_config_free(cfg);
  nol_result *r = lookup(client, "+14155551212");
  CHECK(action_of(r) == NOL_ACTION_ALLOW_WITH_DEFAULT_POLICY);
  char *reason = get(nol_result_fail_open_reason, r);
  CHECK(reason != NULL && (strcmp(reason, "connect") == 0 || strcmp(reason, "timeout") == 0));
  nol_string_free(reason);
  nol_result_free(r);
  nol_client_free(client);
}

/* The JSON view: borrowed, the same pointer each time, valid until nol_result_free. */
static void test_result_json(void) {
  test_name = "nol_result_json";
  nol_client *client = sandbox_client(5000);
  nol_result *r = lookup(client, "+14155550914"); /* fails open: bad signature */
  const char *json = NULL, *again = NULL;
  CHECK_STATUS(nol_result_json(r, &json), NOL_STATUS_OK);
  CHECK_STATUS(nol_result_json(r, &again), NOL_STATUS_OK);
  CHECK(json != NULL && json == again);
  if (json) {
    size_t n = strlen(json);
    CHECK(n > 2 && json[0] == '{' && json[n - 1] == '}');
    CHECK(strstr(json, "\"action\":\"allow_with_default_policy\"") != NULL);
    CHECK(strstr(json, "\"fail_open\":\"bad_signature\"") != NULL);
    CHECK(strstr(json, "\"caller_name\":null") != NULL);
  }
  CHECK_STATUS(nol_result_json(NULL, &json), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_result_json(r, NULL), NOL_STATUS_NULL_ARGUMENT);
  nol_result_free(r);

  r = lookup(client, "+14155551212");
  json = NULL;
  CHECK_STATUS(nol_result_json(r, &json), NOL_STATUS_OK);
  CHECK(json != NULL && strstr(json, "\"caller_name\":\"Acme Support\"") != NULL);
  CHECK(json != NULL && strstr(json, "\"verified\":true") != NULL);
  nol_result_free(r);
  nol_client_free(client);
}

static void test_precall_and_enroll(void) {
  test_name = "nol_precall, nol_enroll";
  nol_client *client = sandbox_client(5000);
  nol_precall_result *p = NULL;
  char *s = NULL;
  CHECK_STATUS(nol_precall(client, "+14155551212", "+14155550199", &p), NOL_STATUS_OK);
  CHECK(p != NULL);
  CHECK_STATUS(nol_precall_result_dnc(p, &s), NOL_STATUS_OK);
  CHECK_STR(s, "SUPPRESS");
  nol_string_free(s);
  s = (char *)0x1;
  CHECK_STATUS(nol_precall_result_receipt_id(p, &s), NOL_STATUS_OK);
  CHECK(s != NULL && s != (char *)0x1 && strncmp(s, "nol_rec_", 8) == 0);
  if (s != (char *)0x1) nol_string_free(s);
  s = (char *)0x1;
  CHECK_STATUS(nol_precall_result_fail_open_reason(p, &s), NOL_STATUS_OK);
  CHECK(s == NULL);
  s = NULL;
  CHECK_STATUS(nol_precall_result_compliance_signal_json(p, &s), NOL_STATUS_OK);
  CHECK(s != NULL && s[0] == '{');
  nol_string_free(s);
  nol_precall_result_free(p);

  p = NULL;
  CHECK_STATUS(nol_precall(client, "+14155551212", "+14155550100", &p), NOL_STATUS_OK);
  s = NULL;
  CHECK_STATUS(nol_precall_result_dnc(p, &s), NOL_STATUS_OK);
  CHECK_STR(s, "NO_MATCH");
  nol_string_free(s);
  nol_precall_result_free(p);

  /* Not a number: UNKNOWN, invalid_number, OK. */
  p = NULL;
  CHECK_STATUS(nol_precall(client, "+14155551212", "nope", &p), NOL_STATUS_OK);
  s = NULL;
  CHECK_STATUS(nol_precall_result_dnc(p, &s), NOL_STATUS_OK);
  CHECK_STR(s, "UNKNOWN");
  nol_string_free(s);
  s = NULL;
  CHECK_STATUS(nol_precall_result_fail_open_reason(p, &s), NOL_STATUS_OK);
  CHECK_STR(s, "invalid_number");
  nol_string_free(s);
  nol_precall_result_free(p);

  nol_precall_result *untouched = (nol_precall_result *)0x1;
  p = untouched;
  CHECK_STATUS(nol_precall(NULL, "+14155551212", "+14155550100", &p), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_precall(client, NULL, "+14155550100", &p), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_precall(client, "+14155551212", NULL, &p), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_precall(client, "+14155551212", "+14155550100", NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK(p == untouched);
  nol_precall_result_free(NULL);

  nol_enroll_result *e = NULL;
  bool enrolled = false;
  CHECK_STATUS(nol_enroll(client, "+14155551212", &e), NOL_STATUS_OK);
  CHECK_STATUS(nol_enroll_result_enrolled(e, &enrolled), NOL_STATUS_OK);
  CHECK(enrolled);
  s = NULL;
  CHECK_STATUS(nol_enroll_result_number(e, &s), NOL_STATUS_OK);
  CHECK_STR(s, "+14155551212");
  nol_string_free(s);
  s = (char *)0x1;
  CHECK_STATUS(nol_enroll_result_fail_open_reason(e, &s), NOL_STATUS_OK);
  CHECK(s == NULL);
  nol_enroll_result_free(e);
  CHECK_STATUS(nol_enroll(client, NULL, &e), NOL_STATUS_NULL_ARGUMENT);
  nol_enroll_result_free(NULL);
  nol_client_free(client);

  /* Nothing listening: both fail open, within the budget. */
  nol_config *cfg = sandbox_config(300);
  CHECK_STATUS(nol_config_set(cfg, "base_url", "http://127.0.0.1:1"), NOL_STATUS_OK);
  client = NULL;
  CHECK_STATUS(nol_client_new(cfg, &client), NOL_STATUS_OK);
  nol_config_free(cfg);
  double start = now_ms();
  p = NULL;
  CHECK_STATUS(nol_precall(client, "+14155551212", "+14155550100", &p), NOL_STATUS_OK);
  CHECK(now_ms() - start < 300 + slack_ms);
  s = NULL;
  CHECK_STATUS(nol_precall_result_dnc(p, &s), NOL_STATUS_OK);
  CHECK_STR(s, "UNKNOWN");
  nol_string_free(s);
  s = NULL;
  CHECK_STATUS(nol_precall_result_fail_open_reason(p, &s), NOL_STATUS_OK);
  CHECK(s != NULL && (strcmp(s, "connect") == 0 || strcmp(s, "timeout") == 0));
  nol_string_free(s);
  nol_precall_result_free(p);

  start = now_ms();
  e = NULL;
  enrolled = true;
  CHECK_STATUS(nol_enroll(client, "+14155551212", &e), NOL_STATUS_OK);
  CHECK(now_ms() - start < 300 + slack_ms);
  CHECK_STATUS(nol_enroll_result_enrolled(e, &enrolled), NOL_STATUS_OK);
  CHECK(!enrolled);
  s = NULL;
  CHECK_STATUS(nol_enroll_result_fail_open_reason(e, &s), NOL_STATUS_OK);
  CHECK(s != NULL);
  nol_string_free(s);
  nol_enroll_result_free(e);
  nol_client_free(client);
}

/* ---- threads ---------------------------------------------------------------------------- */

#define THREADS 32
#define PER_THREAD 40

static const char *thread_numbers[] = {"+14155551212", "+14155550100", "+14155550122",
                                       "+14155550199"};
static const char *thread_names[] = {"Acme Support", "Verified & online", NULL, NULL};

static void *thread_main(void *arg) {
  const nol_client *client = arg;
  /* Each thread has its own last error. */
  char *out = NULL;
  CHECK_STATUS(nol_normalize("12", "US", &out), NOL_STATUS_INVALID_NUMBER);
  for (int i = 0; i < PER_THREAD; i++) {
    size_t k = (size_t)i % 4;
    nol_result *r = lookup(client, thread_numbers[k]);
    if (!r) continue;
    CHECK(outcome_of(r) != NOL_OUTCOME_FAIL_OPEN);
    if (thread_names[k]) CHECK(str_is(nol_result_caller_name, r, thread_names[k]));
    nol_result_free(r);
  }
  CHECK(strlen(nol_last_error()) > 0); /* its own failure, not cleared by others' successes */
  return NULL;
}

static void test_threads(void) {
  test_name = "32 threads, one client";
  nol_client *client = sandbox_client(10000);
  pthread_t threads[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, thread_main, client);
  for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
  nol_stats stats;
  CHECK_STATUS(nol_client_stats(client, &stats), NOL_STATUS_OK);
  CHECK(stats.lookups == THREADS * PER_THREAD);
  CHECK(stats.fail_open == 0);
  /* Exactly one request per number went out; everyone else shared it (counted as verified
   * too) or hit the cache. A lookup that missed the cache just before an answer landed finds
   * it in the cache when it looks for the flight (a flight stores its answer before it ends). */
  CHECK(stats.verified + stats.cache_hits == THREADS * PER_THREAD);
  CHECK(stats.verified - stats.shared_flights == 4);
  nol_client_free(client);
}

/* ---- the non-blocking lookup ---------------------------------------------------------------- */

static int event_fd(const nol_client *client) {
  int fd = -1;
  CHECK_STATUS(nol_client_event_fd(client, &fd), NOL_STATUS_OK);
  CHECK(fd >= 0);
  return fd;
}

static int fd_readable(int fd, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/* The next decision within timeout_ms, as an event loop takes it; NULL when none came. */
static nol_result *next_within(const nol_client *client, int timeout_ms, uint64_t *data) {
  int fd = event_fd(client);
  double until = now_ms() + timeout_ms;
  for (;;) {
    nol_result *r = NULL;
    nol_status st = nol_client_next(client, data, &r);
    if (st == NOL_STATUS_OK) return r;
    CHECK_STATUS(st, NOL_STATUS_WOULD_BLOCK);
    double left = until - now_ms();
    if (left <= 0) return NULL;
    fd_readable(fd, (int)left + 1);
  }
}

static void test_nonblocking_basics(void) {
  test_name = "nol_lookup_start / nol_client_event_fd / nol_client_next";
  nol_client *client = sandbox_client(5000);
  uint64_t data = 77;
  nol_result *sentinel = (nol_result *)&data, *r = sentinel;
  nol_call call = {0};

  /* Nothing started: WOULD_BLOCK, outputs untouched, the fd quiet. */
  CHECK_STATUS(nol_client_next(client, &data, &r), NOL_STATUS_WOULD_BLOCK);
  CHECK(data == 77 && r == sentinel);
  CHECK(strlen(nol_last_error()) > 0);
  CHECK_STR(nol_status_str(NOL_STATUS_WOULD_BLOCK), "would block (no finished decision waiting)");
  int fd = event_fd(client);
  CHECK(fd == event_fd(client)); /* the same fd every time */
  CHECK(!fd_readable(fd, 0));

  /* NULL arguments: a status, nothing started, nothing written. */
  int out_fd = -5;
  CHECK_STATUS(nol_lookup_start(NULL, &call, 1), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_lookup_start(client, NULL, 1), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_lookup_start(client, &call, 1), NOL_STATUS_NULL_ARGUMENT); /* no number */
  call.number = "+14155551212";
  call.context = "inbound_fax";
  CHECK_STATUS(nol_lookup_start(client, &call, 1), NOL_STATUS_INVALID_ARGUMENT);
  call.context = BAD_UTF8;
  CHECK_STATUS(nol_lookup_start(client, &call, 1), NOL_STATUS_INVALID_UTF8);
  call.context = NULL;
  CHECK_STATUS(nol_client_event_fd(NULL, &out_fd), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_client_event_fd(client, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK(out_fd == -5);
  CHECK_STATUS(nol_client_next(NULL, &data, &r), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_client_next(client, NULL, &r), NOL_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(nol_client_next(client, &data, NULL), NOL_STATUS_NULL_ARGUMENT);
  CHECK(!fd_readable(fd, 50));
  CHECK_STATUS(nol_client_next(client, &data, &r), NOL_STATUS_WOULD_BLOCK);
  CHECK(r == sentinel);

  /* A verified lookup: the same result the blocking lookup gives, with its user_data. The
   * call's strings are copied by nol_lookup_start: overwrite them at once. */
  char number[] = "+14155551212";
  call.number = number;
  call.verstat = "TN-Validation-Passed";
  CHECK_STATUS(nol_lookup_start(client, &call, UINT64_MAX), NOL_STATUS_OK);
  memset(number, 'x', sizeof number - 1);
  r = next_within(client, 5000, &data);
  CHECK(r != NULL);
  if (r) {
    CHECK(data == UINT64_MAX);
    CHECK(outcome_of(r) == NOL_OUTCOME_VERIFIED);
    CHECK(action_of(r) == NOL_ACTION_ALLOW);
    CHECK(str_is(nol_result_caller_name, r, "Acme Support"));
    const char *json = NULL;
    CHECK_STATUS(nol_result_json(r, &json), NOL_STATUS_OK);
    CHECK(json && strstr(json, "\"Acme Support\"") != NULL);
    nol_result_free(r);
  }
  CHECK(!fd_readable(fd, 0));

  /* A cache hit is waiting before nol_lookup_start returns; so are an invalid number and an
   * anonymous caller. The blocking lookup agrees on each. */
  static const struct {
    const char *number;
    nol_outcome outcome;
  } at_once[] = {{"+14155551212", NOL_OUTCOME_CACHED},
                 {"12", NOL_OUTCOME_FAIL_OPEN},
                 {"anonymous", NOL_OUTCOME_FAIL_OPEN}};
  for (size_t i = 0; i < 3; i++) {
    nol_call c = {0};
    c.number = at_once[i].number;
    c.verstat = "TN-Validation-Passed";
    CHECK_STATUS(nol_lookup_start(client, &c, i), NOL_STATUS_OK);
    CHECK(fd_readable(fd, 0));
    r = NULL;
    CHECK_STATUS(nol_client_next(client, &data, &r), NOL_STATUS_OK);
    CHECK(data == i);
    if (!r) continue;
    CHECK(outcome_of(r) == at_once[i].outcome);
    nol_result *b = NULL;
    CHECK_STATUS(nol_lookup(client, &c, &b), NOL_STATUS_OK);
    CHECK(b && outcome_of(b) == outcome_of(r) && action_of(b) == action_of(r));
    char *ra = get(nol_result_fail_open_reason, r), *rb = get(nol_result_fail_open_reason, b);
    CHECK((ra == NULL && rb == NULL) || (ra && rb && strcmp(ra, rb) == 0));
    nol_string_free(ra);
    nol_string_free(rb);
    nol_result_free(b);
    nol_result_free(r);
  }
  CHECK(!fd_readable(fd, 0));
  CHECK_STATUS(nol_client_next(client, &data, &r), NOL_STATUS_WOULD_BLOCK);
  /* The result outlives its client. */
  call.number = "+14155551212";
  CHECK_STATUS(nol_lookup_start(client, &call, 9), NOL_STATUS_OK);
  r = next_within(client, 1000, &data);
  nol_client_free(client);
  CHECK(r != NULL && action_of(r) == NOL_ACTION_ALLOW);
  nol_result_free(r);
}

/* Thousands of lookups in flight, started from several threads while the main thread drains
 * them in a poll() loop: every one delivered exactly once, with its user_data, within its
 * budget (+ slack) of its own start. */
struct storm {
  const nol_client *client;
  int n, threads, thread;
  double *started; /* per lookup, ms */
  int start_failures;
};

static void storm_number(int i, char *buf, size_t len) {
  /* Distinct numbers (no record in the sandbox's directory), every 10th a repeat caller. */
  if (i % 10 == 0)
    snprintf(buf, len, "+14155551212");
  else
    snprintf(buf, len, "+1212555%04d", i % 10000);
}

static void *storm_starter(void *arg) {
  struct storm *s = arg;
  for (int i = s->thread; i < s->n; i += s->threads) {
    char number[32];
    storm_number(i, number, sizeof number);
    nol_call call = {0};
    call.number = number;
    s->started[i] = now_ms();
    if (nol_lookup_start(s->client, &call, (uint64_t)i) != NOL_STATUS_OK)
      __atomic_add_fetch(&s->start_failures, 1, __ATOMIC_RELAXED);
    if (i % 64 == 0) usleep(1000); /* a stream of calls, not one burst */
  }
  return NULL;
}

static void storm(const char *label, const char *url, const char *key_pem, uint32_t budget, int n) {
  test_name = label;
  nol_config *cfg = sandbox_config(budget);
  CHECK_STATUS(nol_config_set_base_url(cfg, url), NOL_STATUS_OK);
  if (key_pem) CHECK_STATUS(nol_config_set_public_key_pem(cfg, key_pem), NOL_STATUS_OK);
  /* Many requests out at once (valgrind runs at most 500 threads: it asks for fewer). */
  const char *in_flight = getenv("NOL_TEST_ASYNC_IN_FLIGHT");
  uint32_t max_in_flight = in_flight && atoi(in_flight) > 0 ? (uint32_t)atoi(in_flight) : 512;
  CHECK_STATUS(nol_config_set_max_in_flight(cfg, max_in_flight), NOL_STATUS_OK);
  nol_client *client = NULL;
  CHECK_STATUS(nol_client_new(cfg, &client), NOL_STATUS_OK);
  nol_config_free(cfg);
  if (!client) return;
  int fd = event_fd(client);

  enum { STARTERS = 4 };
  double *started = calloc((size_t)n, sizeof *started);
  unsigned char *seen = calloc((size_t)n, 1);
  struct storm s[STARTERS];
  pthread_t threads[STARTERS];
  double t0 = now_ms();
  for (int t = 0; t < STARTERS; t++) {
    s[t] = (struct storm){.client = client, .n = n, .threads = STARTERS, .thread = t, .started = started};
    pthread_create(&threads[t], NULL, storm_starter, &s[t]);
  }

  int delivered = 0, duplicates = 0, bad_data = 0, late = 0, wakeups = 0, spurious = 0;
  int verified = 0, cached = 0, fail_open = 0;
  struct {
    char *name;
    int count;
  } reasons[8] = {{0}};
  double worst = 0;
  double give_up = t0 + 60000; /* far beyond any budget: only a lost decision gets here */
  while (delivered < n && now_ms() < give_up) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int ready = poll(&p, 1, 1000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready != 1) continue;
    wakeups++;
    int taken = 0;
    for (;;) {
      uint64_t data = 0;
      nol_result *r = NULL;
      nol_status st = nol_client_next(client, &data, &r);
      if (st == NOL_STATUS_WOULD_BLOCK) break;
      CHECK_STATUS(st, NOL_STATUS_OK);
      if (st != NOL_STATUS_OK) break;
      double at = now_ms();
      taken++;
      if (data >= (uint64_t)n) {
        bad_data++;
      } else if (seen[data]++) {
        duplicates++;
      } else {
        delivered++;
        double took = at - started[data];
        if (took > worst) worst = took;
        if (took > budget + slack_ms) late++;
      }
      switch (outcome_of(r)) {
        case NOL_OUTCOME_VERIFIED: verified++; break;
        case NOL_OUTCOME_CACHED: cached++; break;
        default: {
          fail_open++;
          char *reason = get(nol_result_fail_open_reason, r);
          for (size_t k = 0; reason && k < sizeof reasons / sizeof reasons[0]; k++) {
            if (!reasons[k].name) reasons[k].name = strdup(reason);
            if (strcmp(reasons[k].name, reason) == 0) {
              reasons[k].count++;
              break;
            }
          }
          nol_string_free(reason);
        }
      }
      nol_result_free(r);
    }
    if (taken == 0) spurious++;
  }
  for (int t = 0; t < STARTERS; t++) pthread_join(threads[t], NULL);
  printf("  %s: %d started, %d delivered in %.0f ms (%d wake-ups), slowest %.0f ms of a %u ms "
         "budget; %d verified, %d cached, %d failed open\n",
         label, n, delivered, now_ms() - t0, wakeups, worst, budget, verified, cached, fail_open);
  for (size_t k = 0; k < sizeof reasons / sizeof reasons[0] && reasons[k].name; k++) {
    printf("    failed open (%s): %d\n", reasons[k].name, reasons[k].count);
    free(reasons[k].name);
  }
  int start_failures = 0;
  for (int t = 0; t < STARTERS; t++) start_failures += s[t].start_failures;
  CHECK(start_failures == 0);
  CHECK(delivered == n);
  CHECK(duplicates == 0);
  CHECK(bad_data == 0);
  CHECK(late == 0);
  CHECK(spurious == 0); /* readable only while decisions wait */
  /* Nothing more comes: the fd is quiet, next would block. */
  CHECK(!fd_readable(fd, 100));
  uint64_t data;
  nol_result *r = NULL;
  CHECK_STATUS(nol_client_next(client, &data, &r), NOL_STATUS_WOULD_BLOCK);
  nol_stats stats;
  CHECK_STATUS(nol_client_stats(client, &stats), NOL_STATUS_OK);
  CHECK(stats.lookups == (uint64_t)n);
  free(started);
  free(seen);
  nol_client_free(client);
}

static int storm_size(void) {
  const char *n = getenv("NOL_TEST_ASYNC_N");
  return n && atoi(n) > 0 ? atoi(n) : 2000;
}

static void test_nonblocking_storms(void) {
  int n = storm_size();
  storm("non-blocking: a poll loop, the sandbox", base_url, NULL, 400, n);
  const char *slow = getenv("NOL_TEST_SLOW_URL"), *hang = getenv("NOL_TEST_HANG_URL");
  const char *slow_key = getenv("NOL_TEST_SLOW_PUBLIC_KEY");
  char *slow_pem = slow_key ? read_file(slow_key) : NULL;
  if (slow && slow_pem)
    storm("non-blocking: a poll loop, a slow sandbox (250 ms)", slow, slow_pem, 400, n);
  else
    printf("  (no NOL_TEST_SLOW_URL: the slow-sandbox storm is skipped)\n");
  free(slow_pem);
  if (hang)
    storm("non-blocking: a poll loop, a hanging sandbox", hang, NULL, 300, n);
  else
    printf("  (no NOL_TEST_HANG_URL: the hanging-sandbox storm is skipped)\n");
}

/* Freeing a client with lookups pending never waits for them; they end by their deadline on
 * libnol's threads and free their decisions (valgrind: no leak, no invalid access). */
static void test_nonblocking_free_pending(void) {
  test_name = "nol_client_free with non-blocking lookups pending";
  const char *hang = getenv("NOL_TEST_HANG_URL");
  nol_client *client = sandbox_client(300);
  int fd = event_fd(client);
  nol_call call = {0};
  for (int i = 0; i < 40; i++) {
    char number[32];
    storm_number(i, number, sizeof number);
    /* hanging (a per-number fault), verified, no record: some pending, some finished */
    call.number = i % 3 == 0 ? "+14155550901" : number;
    CHECK_STATUS(nol_lookup_start(client, &call, (uint64_t)i), NOL_STATUS_OK);
  }
  (void)fd_readable(fd, 100); /* some have finished and wait, undelivered */
  double start = now_ms();
  nol_client_free(client);
  double took = now_ms() - start;
  CHECK(took < 100 + (slack_ms > 400 ? slack_ms : 0));

  if (hang) { /* and a whole hanging service */
    nol_config *cfg = sandbox_config(300);
    CHECK_STATUS(nol_config_set_base_url(cfg, hang), NOL_STATUS_OK);
    client = NULL;
    CHECK_STATUS(nol_client_new(cfg, &client), NOL_STATUS_OK);
    nol_config_free(cfg);
    for (int i = 0; client && i < 100; i++) {
      char number[32];
      storm_number(i, number, sizeof number);
      call.number = number;
      CHECK_STATUS(nol_lookup_start(client, &call, (uint64_t)i), NOL_STATUS_OK);
    }
    start = now_ms();
    nol_client_free(client);
    CHECK(now_ms() - start < 100 + (slack_ms > 400 ? slack_ms : 0));
  }
  /* Let the pending lookups end (after the free) before the leak check at exit. */
  usleep((useconds_t)((300 + slack_ms + 200) * 1000));
}

/* fork(): a child gets its own queue and fd; lookups started in the parent are delivered in
 * the parent only, even when they were pending at the fork. */
static void test_fork_nonblocking(void) {
  test_name = "fork() and the non-blocking lookup";
  nol_client *client = sandbox_client(1500);
  int parent_fd = event_fd(client);
  nol_call call = {0};
  call.number = "+14155550901"; /* hangs: pending in the parent at the fork */
  CHECK_STATUS(nol_lookup_start(client, &call, 1), NOL_STATUS_OK);
  call.number = "+14155551212"; /* finished and waiting at the fork */
  CHECK_STATUS(nol_lookup_start(client, &call, 2), NOL_STATUS_OK);
  CHECK(fd_readable(parent_fd, 3000));

  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int bad = 0;
    int fd = -1;
    if (nol_client_event_fd(client, &fd) != NOL_STATUS_OK || fd < 0) _exit(1);
    if (fd == parent_fd) bad |= 2;
    uint64_t data = 0;
    nol_result *r = NULL;
    /* The parent's waiting decision is not the child's. */
    if (nol_client_next(client, &data, &r) != NOL_STATUS_WOULD_BLOCK) bad |= 4;
    if (fd_readable(fd, 0)) bad |= 8;
    nol_call c = {0};
    c.number = "+14155551212";
    if (nol_lookup_start(client, &c, 3) != NOL_STATUS_OK) bad |= 16;
    r = next_within(client, 9000, &data); /* within its budget, 1.5 s */
    if (!r || data != 3) bad |= 32;
    if (r && outcome_of(r) != NOL_OUTCOME_VERIFIED) bad |= 64; /* fetched, not the parent's cache */
    nol_result_free(r);
    /* The parent's pending lookup (data 1) never shows up here. */
    if (next_within(client, 2000, &data) != NULL) bad |= 128;
    nol_client_free(client);
    _exit(bad);
  }
  CHECK(pid > 0);
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    fprintf(stderr, "  child failed with code %d\n", WEXITSTATUS(status));
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  /* The parent gets both of its own, the hanging one failed open by its budget. */
  int got = 0;
  for (int k = 0; k < 2; k++) {
    uint64_t data = 0;
    nol_result *r = next_within(client, 5000, &data);
    CHECK(r != NULL);
    if (!r) break;
    got |= 1 << data;
    nol_result_free(r);
  }
  CHECK(got == ((1 << 1) | (1 << 2)));
  CHECK(!fd_readable(parent_fd, 100));
  nol_client_free(client);
}

/* ---- fork -------------------------------------------------------------------------------- */

static void *hanging_lookup(void *arg) {
  /* Busy inside the client (a flight, a worker, locks) at the moment of the fork. */
  nol_result *r = lookup(arg, "+14155550901");
  if (r) nol_result_free(r);
  return NULL;
}

static int child_checks(nol_client *client) {
  int bad = 0, failed_before = failed;
  /* A fresh inner client: the parent's cache is not carried over, the answer is fetched. */
  nol_result *r = NULL;
  nol_call call = {0};
  call.number = "+14155551212";
  double start = now_ms();
  if (nol_lookup(client, &call, &r) != NOL_STATUS_OK || r == NULL) return 10;
  double took = now_ms() - start;
  nol_outcome o = 99;
  nol_result_outcome(r, &o);
  if (o != NOL_OUTCOME_VERIFIED) {
    char *reason = NULL;
    nol_result_fail_open_reason(r, &reason);
    fprintf(stderr, "child: outcome %u (%s)\n", (unsigned)o, reason ? reason : "-");
    nol_string_free(reason);
    bad |= 1;
  }
  char *name = NULL;
  nol_result_caller_name(r, &name);
  if (!name || strcmp(name, "Acme Support") != 0) bad |= 2;
  nol_string_free(name);
  nol_result_free(r);
  if (took > 9000) bad |= 4;
  nol_stats stats;
  if (nol_client_stats(client, &stats) != NOL_STATUS_OK || stats.lookups != 1) bad |= 8;
  /* Threads in the child share the rebuilt client. */
  pthread_t threads[4];
  for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, thread_main, client);
  for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
  if (failed != failed_before) bad |= 16;
  return bad;
}

static void test_fork(void) {
  test_name = "fork()";
  nol_client *client = sandbox_client(10000);
  nol_result *r = lookup(client, "+14155551212"); /* threads started, a connection open */
  nol_result_free(r);

  /* Fork while other threads are inside lookups on the same client. */
  pthread_t busy[2];
  nol_config *cfg = sandbox_config(1500);
  nol_client *hang_client = NULL;
  CHECK_STATUS(nol_client_new(cfg, &hang_client), NOL_STATUS_OK);
  nol_config_free(cfg);
  for (int i = 0; i < 2; i++) pthread_create(&busy[i], NULL, hanging_lookup, hang_client);
  usleep(100 * 1000);

  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int bad = child_checks(client);
    /* The forked hang_client is rebuilt too: it fails open in time, it does not deadlock. */
    double start = now_ms();
    nol_result *h = lookup(hang_client, "+14155550901");
    if (now_ms() - start > 9000) bad |= 32;
    char *reason = NULL;
    if (h) nol_result_fail_open_reason(h, &reason);
    if (!reason || strcmp(reason, "timeout") != 0) bad |= 64;
    nol_string_free(reason);
    nol_result_free(h);
    nol_client_free(hang_client);
    nol_client_free(client);
    _exit(bad); /* as after any fork of a threaded process: the parent's threads are gone */
  }
  CHECK(pid > 0);
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    fprintf(stderr, "  child failed with code %d\n", WEXITSTATUS(status));
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  /* The parent is unaffected: its cache and counters are its own. */
  r = lookup(client, "+14155551212");
  CHECK(outcome_of(r) == NOL_OUTCOME_CACHED);
  nol_result_free(r);
  nol_stats stats;
  CHECK_STATUS(nol_client_stats(client, &stats), NOL_STATUS_OK);
  CHECK(stats.lookups == 2);
  for (int i = 0; i < 2; i++) pthread_join(busy[i], NULL);
  nol_client_free(hang_client);
  nol_client_free(client);
}

int main(void) {
  base_url = getenv("NOL_TEST_BASE_URL");
  if (getenv("NOL_TEST_SLACK_MS")) slack_ms = atof(getenv("NOL_TEST_SLACK_MS"));
  const char *key_path = getenv("NOL_TEST_PUBLIC_KEY");
  if (!base_url || !key_path || !(pem = read_file(key_path))) {
    fprintf(stderr, "set NOL_TEST_BASE_URL and NOL_TEST_PUBLIC_KEY (run tests/c/run.sh)\n");
    return 2;
  }
  unsetenv("NUMBERS_ONLINE_API_KEY");
  unsetenv("NOL_BASE_URL");
  unsetenv("NOL_PUBLIC_KEY");

  const char *only = getenv("NOL_TEST_ONLY");
  if (only && strcmp(only, "fork") == 0) {
    test_fork();
    test_fork_nonblocking();
  } else if (only && strcmp(only, "nonblocking") == 0) {
    test_nonblocking_basics();
    test_nonblocking_storms();
    test_nonblocking_free_pending();
  } else {
    test_version_status_and_errors();
    test_client_from_environment(key_path);
    test_normalize();
    test_stir();
    test_strip_headers();
    test_verify_response();
    test_config();
    test_settings_bounds();
    test_client_new();
    test_lookup_verified_and_cached();
    test_lookup_with_unreachable_redis();
  test_lookup_policy();
    test_lookup_bad_input();
    test_fail_open_modes();
    test_result_json();
    test_precall_and_enroll();
    test_threads();
    test_nonblocking_basics();
    test_nonblocking_storms();
    test_nonblocking_free_pending();
    if (!only || strcmp(only, "no-fork") != 0) {
      test_fork();
      test_fork_nonblocking();
    }
  }

  free(pem);
  printf("c: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
