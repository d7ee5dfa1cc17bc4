/* Prints nol_result_json() of one lookup: the C side of the cross-language JSON test
 * (scripts/test-json.sh). Usage: decision_json NUMBER [VERSTAT] [ATTESTATION]; the API key,
 * base URL and public key come from the environment. */
#include <stdio.h>

#include <nol.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  nol_config *config = NULL;
  nol_client *client = NULL;
  nol_status st = nol_config_new(&config);
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
  const char *json = NULL;
  st = nol_lookup(client, &call, &result);
  if (st == NOL_STATUS_OK) st = nol_result_json(result, &json);
  if (st == NOL_STATUS_OK) printf("%s\n", json); /* borrowed: valid until nol_result_free */
  nol_result_free(result);
  nol_client_free(client);
  return st == NOL_STATUS_OK ? 0 : 1;
}
