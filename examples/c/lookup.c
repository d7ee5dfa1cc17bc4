/*
 * Looks up an inbound call with libnol and prints what a switch would do with it.
 *
 *   cc lookup.c $(pkg-config --cflags --libs nol) -o nol-lookup
 *   NUMBERS_ONLINE_API_KEY=... NOL_BASE_URL=... NOL_PUBLIC_KEY=inbound_public.pem \
 *     ./nol-lookup +14155551212 [verstat] [attestation]
 *
 * Whatever the service does, the call goes on: a failed lookup is allow_with_default_policy.
 */
#include <stdio.h>
#include <stdlib.h>

#include <nol.h>

static void print_string(const char *label, nol_status (*get)(const nol_result *, char **),
                         const nol_result *r) {
  char *s = NULL;
  if (get(r, &s) == NOL_STATUS_OK) {
    printf("%-14s %s\n", label, s ? s : "(none)");
    nol_string_free(s); /* every char ** output is ours, freed with nol_string_free */
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s NUMBER [VERSTAT] [ATTESTATION]\n", argv[0]);
    return 2;
  }

  /* Made once, before any worker forks; safe to share between threads and across fork(). */
  nol_config *config = NULL;
  nol_client *client = NULL;
  nol_status st = nol_config_new(&config);
  if (st == NOL_STATUS_OK) st = nol_config_set_budget_ms(config, 400);
  if (st == NOL_STATUS_OK) st = nol_config_set_screening_contact(config, "sip:screening@pbx.example");
  /* The API key, base URL and public key come from the environment (nothing else is set). */
  if (st == NOL_STATUS_OK) st = nol_client_new(config, &client);
  nol_config_free(config);
  if (st != NOL_STATUS_OK) {
    fprintf(stderr, "libnol: %s: %s\n", nol_status_str(st), nol_last_error());
    return 1;
  }

  nol_call call = {0};
  call.number = argv[1];
  call.verstat = argc > 2 ? argv[2] : NULL;
  call.attestation = argc > 3 ? argv[3] : NULL;

  nol_result *result = NULL;
  st = nol_lookup(client, &call, &result); /* blocks at most the budget */
  if (st != NOL_STATUS_OK) {
    /* Only a programming error gets here; the call still goes on. */
    printf("action         allow_with_default_policy (%s)\n", nol_status_str(st));
    nol_client_free(client);
    return 0;
  }

  print_string("action", nol_result_action_name, result);
  print_string("caller name", nol_result_caller_name, result);
  int32_t risk = -1;
  nol_result_risk_score(result, &risk);
  if (risk >= 0) printf("%-14s %d\n", "risk", risk);
  else printf("%-14s (none)\n", "risk");
  print_string("receipt", nol_result_receipt_id, result);
  uint16_t code = 0;
  nol_result_sip_code(result, &code);
  printf("%-14s %u\n", "sip code", (unsigned)code);
  print_string("sip contact", nol_result_sip_contact, result);

  nol_outcome outcome = NOL_OUTCOME_FAIL_OPEN;
  nol_result_outcome(result, &outcome);
  printf("%-14s %s\n", "outcome",
         outcome == NOL_OUTCOME_VERIFIED ? "verified"
         : outcome == NOL_OUTCOME_CACHED ? "cached"
                                         : "failed open");
  print_string("fail-open", nol_result_fail_open_reason, result);

  size_t n = 0;
  nol_result_agi_count(result, &n);
  for (size_t i = 0; i < n; i++) {
    char *name = NULL, *value = NULL;
    if (nol_result_agi_variable(result, i, &name, &value) == NOL_STATUS_OK)
      printf("agi            %s=%s\n", name, value);
    nol_string_free(name);
    nol_string_free(value);
  }
  nol_result_header_count(result, &n);
  for (size_t i = 0; i < n; i++) {
    char *name = NULL, *value = NULL;
    if (nol_result_header(result, i, &name, &value) == NOL_STATUS_OK)
      printf("header         %s: %s\n", name, value);
    nol_string_free(name);
    nol_string_free(value);
  }
  print_string("display", nol_result_display_line, result);

  nol_result_free(result);
  nol_client_free(client);
  return 0;
}
