/*
 * nol: a Kamailio module that asks numbers.online about the calling number of an inbound
 * INVITE through libnol (the C ABI, include/nol.h), and ALWAYS fails open.
 *
 * Config:   nol_lookup()  nol_strip_inbound()   pseudo-variable $nol(key)
 * KEMI:     KSR.nol.lookup()  KSR.nol.strip_inbound()
 *
 * Process model: Kamailio forks its SIP workers after mod_init. mod_init only checks the
 * configuration (it makes one client and frees it again, so a bad key file or URL stops
 * Kamailio at start-up with a clear message). Every worker then makes its own nol_client in
 * child_init: its own worker threads, connections and cache. A worker serves one SIP message at
 * a time, so the last lookup's values live in per-process memory and $nol(...) reads them; they
 * belong to the message that made them and read as $null in any other message.
 *
 * Fail open: nol_lookup() always leaves the pseudo-variables describing a decision. When libnol
 * cannot answer (timeout, error, bad signature, no client in this process, a libnol bug) the
 * action is allow_with_default_policy and the SIP code is the route-advance code.
 *
 * The API key comes from the `api_key` parameter or the NUMBERS_ONLINE_API_KEY environment
 * variable; it is handed to libnol and never logged.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/counters.h"
#include "../../core/data_lump.h"
#include "../../core/dprint.h"
#include "../../core/kemi.h"
#include "../../core/mem/mem.h"
#include "../../core/mod_fix.h"
#include "../../core/parser/msg_parser.h"
#include "../../core/parser/parse_from.h"
#include "../../core/parser/parse_ppi_pai.h"
#include "../../core/parser/parse_uri.h"
#include "../../core/pvar.h"
#include "../../core/sr_module.h"
#include "../../core/str.h"
#include "../../core/ut.h"

#include <nol.h>

MODULE_VERSION

/* ---- parameters -------------------------------------------------------------------------- */

/* Every parameter goes to libnol as it was given (nol_config_set): libnol holds each
 * setting's one range and rule, and its message says what is wrong. A string parameter left
 * empty ("") and an integer parameter left at NOL_UNSET are not passed: libnol's default (or
 * its environment variable) applies. */
#define NOL_UNSET INT_MIN

static char *p_api_key = NULL;          /* else NUMBERS_ONLINE_API_KEY */
static char *p_base_url = NULL;         /* else NOL_BASE_URL, else https://numbers.online */
static char *p_public_key_file = NULL;  /* else NOL_PUBLIC_KEY (a path) */
static int p_budget_ms = NOL_UNSET;
static int p_cache_size = NOL_UNSET;
/* A Kamailio worker looks up one call at a time: a few requests in flight cover the ones a
 * timeout left behind, without libnol's default pool of 32 threads in every worker. */
static int p_max_in_flight = 4;
static char *p_default_country = NULL;
static int p_circuit_breaker = NOL_UNSET;
static int p_breaker_failures = NOL_UNSET;
static int p_breaker_cool_down_ms = NOL_UNSET;
static int p_rate_limit_per_minute = NOL_UNSET;
static char *p_risk_tag = NULL;
static int p_risk_threshold = NOL_UNSET;
static int p_block = NOL_UNSET;
static char *p_screening_contact = NULL;
static int p_max_name_len = NOL_UNSET;
/* The module answers with it itself when a worker has no client: it keeps libnol's default,
 * and libnol refuses any value but 503 and 404 at start-up. */
static int p_route_advance_code = 503;

static param_export_t params[] = {
	{"api_key", PARAM_STRING, &p_api_key},
	{"base_url", PARAM_STRING, &p_base_url},
	{"public_key_file", PARAM_STRING, &p_public_key_file},
	{"budget_ms", PARAM_INT, &p_budget_ms},
	{"cache_size", PARAM_INT, &p_cache_size},
	{"max_in_flight", PARAM_INT, &p_max_in_flight},
	{"default_country", PARAM_STRING, &p_default_country},
	{"circuit_breaker", PARAM_INT, &p_circuit_breaker},
	{"breaker_failures", PARAM_INT, &p_breaker_failures},
	{"breaker_cool_down_ms", PARAM_INT, &p_breaker_cool_down_ms},
	{"rate_limit_per_minute", PARAM_INT, &p_rate_limit_per_minute},
	{"risk_tag", PARAM_STRING, &p_risk_tag},
	{"risk_threshold", PARAM_INT, &p_risk_threshold},
	{"block", PARAM_INT, &p_block},
	{"screening_contact", PARAM_STRING, &p_screening_contact},
	{"max_name_len", PARAM_INT, &p_max_name_len},
	{"route_advance_code", PARAM_INT, &p_route_advance_code},
	{0, 0, 0}
};

/* ---- per-process state ------------------------------------------------------------------- */

static nol_config *nol_cfg = NULL; /* made in mod_init, inherited by every worker */
static nol_client *nol_cli = NULL; /* made per worker in child_init (or on first use) */
static int nol_cli_tried = 0;

/* The keys of $nol(key). */
enum nol_key {
	NK_ACTION = 0,    /* allow | label | challenge_or_route | block_candidate | allow_with_default_policy */
	NK_NAME,          /* caller name to show, plain UTF-8; $null when none */
	NK_DISPLAY_NAME,  /* the same, escaped for a SIP quoted-string; $null when none */
	NK_NUMBER,        /* the caller in E.164; $null when not a possible number */
	NK_RISK,          /* 0..100, or -1 when none */
	NK_RISK_LEVEL,
	NK_IDENTITY_TYPE,
	NK_RECEIPT,
	NK_CODE,          /* 302 / 603 / route-advance code */
	NK_REASON,        /* reason phrase for NK_CODE */
	NK_CONTACT,       /* Contact of a 302; $null otherwise */
	NK_FAILED_OPEN,   /* 1 when libnol had no usable answer, else 0 */
	NK_FAIL_REASON,   /* why it failed open; $null otherwise */
	NK_OUTCOME,       /* verified | cached | fail_open */
	NK_HEADERS,       /* "X-NumbersOnline-Action: ...\r\n..." for append_to_reply / append_hf */
	NK_DISPLAY_LINE,
	NK_COUNT
};

static const char *nol_key_names[NK_COUNT] = {
	"action", "name", "display_name", "number", "risk", "risk_level", "identity_type",
	"receipt", "code", "reason", "contact", "failed_open", "fail_reason", "outcome",
	"headers", "display_line",
};

typedef struct nol_last {
	unsigned int msg_id; /* the message these values belong to */
	int msg_pid;
	int valid;
	int risk;
	int code;
	int failed_open;
	char *str[NK_COUNT]; /* pkg memory, NUL-terminated, or NULL ($null) */
} nol_last_t;

static nol_last_t nol_last = {0};

/* ---- helpers ----------------------------------------------------------------------------- */

static void last_reset(void)
{
	int i;
	for(i = 0; i < NK_COUNT; i++) {
		if(nol_last.str[i]) {
			pkg_free(nol_last.str[i]);
			nol_last.str[i] = NULL;
		}
	}
	nol_last.valid = 0;
	nol_last.risk = -1;
	nol_last.code = p_route_advance_code;
	nol_last.failed_open = 1;
}

/* Copies s into pkg memory, keeping only bytes that are safe inside a SIP header value:
 * no CR, LF, NUL or other control characters (libnol already guarantees this; a second check
 * costs nothing and keeps a future libnol bug from becoming a header injection). */
static char *pkg_safe_dup(const char *s)
{
	size_t n, i, j;
	char *d;
	if(s == NULL)
		return NULL;
	n = strlen(s);
	d = (char *)pkg_malloc(n + 1);
	if(d == NULL) {
		PKG_MEM_ERROR;
		return NULL;
	}
	for(i = 0, j = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if(c < 0x20 || c == 0x7f)
			continue;
		d[j++] = (char)c;
	}
	d[j] = '\0';
	return d;
}

/* Takes a libnol string (freeing it) into slot k. */
static void take(int k, char *s)
{
	if(nol_last.str[k])
		pkg_free(nol_last.str[k]);
	nol_last.str[k] = pkg_safe_dup(s);
	if(s)
		nol_string_free(s);
}

/* Takes libnol's quoted-string form of the caller name (freeing it), or $null when it is not
 * one: a control character, or a backslash escaping the closing quote. Stripping characters
 * here (as pkg_safe_dup does) could leave a lone backslash, so an unsafe value is dropped. */
static void take_display_name(char *s)
{
	size_t i, n, slashes = 0;
	int ok = 1;
	if(nol_last.str[NK_DISPLAY_NAME]) {
		pkg_free(nol_last.str[NK_DISPLAY_NAME]);
		nol_last.str[NK_DISPLAY_NAME] = NULL;
	}
	if(s == NULL)
		return;
	n = strlen(s);
	for(i = 0; i < n && ok; i++) {
		unsigned char c = (unsigned char)s[i];
		if(c == '\\') {
			slashes++;
			continue;
		}
		if(c < 0x20 || c == 0x7f)
			ok = 0;
		else if(c == '"' && slashes % 2 == 0)
			ok = 0; /* an unescaped quote */
		slashes = 0;
	}
	if(ok && slashes % 2 == 1)
		ok = 0; /* ends in a lone backslash */
	if(ok)
		nol_last.str[NK_DISPLAY_NAME] = pkg_safe_dup(s);
	else
		LM_WARN("nol: dropped a caller display name that is not a safe quoted-string\n");
	nol_string_free(s);
}

static void set_const(int k, const char *s)
{
	if(nol_last.str[k])
		pkg_free(nol_last.str[k]);
	nol_last.str[k] = pkg_safe_dup(s);
}

static int is_token_char(unsigned char c)
{
	return isalnum(c) || c == '-';
}

/* The values a failed-open lookup leaves. */
static void last_fail_open(struct sip_msg *msg, const char *reason)
{
	last_reset();
	nol_last.msg_id = msg->id;
	nol_last.msg_pid = msg->pid;
	nol_last.valid = 1;
	set_const(NK_ACTION, "allow_with_default_policy");
	set_const(NK_OUTCOME, "fail_open");
	set_const(NK_FAIL_REASON, reason);
	set_const(NK_REASON, p_route_advance_code == 404 ? "Not Found" : "Service Unavailable");
	set_const(NK_HEADERS, "X-NumbersOnline-Action: allow_with_default_policy\r\n");
}

/* A NUL-terminated pkg copy of a str, or NULL. */
static char *str_dupz(const str *s)
{
	char *d;
	if(s == NULL || s->s == NULL || s->len <= 0)
		return NULL;
	d = (char *)pkg_malloc(s->len + 1);
	if(d == NULL) {
		PKG_MEM_ERROR;
		return NULL;
	}
	memcpy(d, s->s, s->len);
	d[s->len] = '\0';
	return d;
}

static int str_contains_ci(const str *s, const char *needle)
{
	int n = strlen(needle), i;
	if(s == NULL || s->s == NULL)
		return 0;
	for(i = 0; i + n <= s->len; i++) {
		if(strncasecmp(s->s + i, needle, n) == 0)
			return 1;
	}
	return 0;
}

static struct hdr_field *find_header(struct sip_msg *msg, const char *name)
{
	struct hdr_field *hf;
	int n = strlen(name);
	for(hf = msg->headers; hf; hf = hf->next) {
		if(hf->name.len == n && strncasecmp(hf->name.s, name, n) == 0)
			return hf;
	}
	return NULL;
}

/* Reads a whole file (the public key PEM) into a malloc'd string. */
static char *read_file(const char *path)
{
	FILE *f;
	char *buf;
	long n;
	size_t got;
	f = fopen(path, "rb");
	if(f == NULL) {
		LM_ERR("nol: cannot open public_key_file %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if(fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > 1024 * 1024
			|| fseek(f, 0, SEEK_SET) != 0) {
		LM_ERR("nol: cannot read public_key_file %s\n", path);
		fclose(f);
		return NULL;
	}
	buf = (char *)malloc((size_t)n + 1);
	if(buf == NULL) {
		fclose(f);
		return NULL;
	}
	got = fread(buf, 1, (size_t)n, f);
	fclose(f);
	buf[got] = '\0';
	return buf;
}

/* libnol's detail for the last failure on this thread, else the status's name. libnol never
 * puts the API key in either. */
static const char *nol_error_text(nol_status st)
{
	const char *detail = nol_last_error();
	return (detail && *detail) ? detail : nol_status_str(st);
}

#define NOL_CHECK(call, what)                                                  \
	do {                                                                       \
		nol_status st_ = (call);                                               \
		if(st_ != NOL_STATUS_OK) {                                             \
			LM_ERR("nol: %s: %s\n", what, nol_error_text(st_));               \
			goto error;                                                        \
		}                                                                      \
	} while(0)

/* An integer parameter for the start-up log line: its value, or "libnol's default". */
static const char *int_text(int value)
{
	static char buf[2][16];
	static int next = 0;
	char *b;
	if(value == NOL_UNSET)
		return "(libnol's default)";
	b = buf[next++ % 2];
	snprintf(b, sizeof buf[0], "%d", value);
	return b;
}

/* One parameter to libnol by its setting's name. */
static int set_text(const char *name, const char *value)
{
	nol_status st = nol_config_set(nol_cfg, name, value);
	if(st != NOL_STATUS_OK) {
		LM_ERR("nol: modparam %s: %s\n", name, nol_error_text(st));
		return -1;
	}
	return 0;
}

static int set_int(const char *name, int value)
{
	char text[16];
	if(value == NOL_UNSET)
		return 0;
	snprintf(text, sizeof text, "%d", value);
	return set_text(name, text);
}

static int build_config(void)
{
	char *pem = NULL;
	const struct {
		const char *name;
		char *value;
	} texts[] = {
		{"api_key", p_api_key},
		{"base_url", p_base_url},
		{"default_country", p_default_country},
		{"risk_tag", p_risk_tag},
		{"screening_contact", p_screening_contact},
	};
	const struct {
		const char *name;
		int value;
	} ints[] = {
		{"budget_ms", p_budget_ms},
		{"cache_size", p_cache_size},
		{"max_in_flight", p_max_in_flight},
		{"circuit_breaker", p_circuit_breaker},
		{"breaker_failures", p_breaker_failures},
		{"breaker_cool_down_ms", p_breaker_cool_down_ms},
		{"rate_limit_per_minute", p_rate_limit_per_minute},
		{"risk_threshold", p_risk_threshold},
		{"block", p_block},
		{"max_name_len", p_max_name_len},
		{"route_advance_code", p_route_advance_code},
	};
	size_t i;
	if(nol_config_new(&nol_cfg) != NOL_STATUS_OK) {
		LM_ERR("nol: cannot make a configuration\n");
		return -1;
	}
	for(i = 0; i < sizeof texts / sizeof texts[0]; i++)
		if(texts[i].value && *texts[i].value && set_text(texts[i].name, texts[i].value) < 0)
			goto error;
	if(p_public_key_file && *p_public_key_file) {
		pem = read_file(p_public_key_file);
		if(pem == NULL)
			goto error;
		NOL_CHECK(nol_config_set_public_key_pem(nol_cfg, pem), "public_key_file");
		free(pem);
		pem = NULL;
	}
	for(i = 0; i < sizeof ints / sizeof ints[0]; i++)
		if(set_int(ints[i].name, ints[i].value) < 0)
			goto error;
	return 0;
error:
	if(pem)
		free(pem);
	nol_config_free(nol_cfg);
	nol_cfg = NULL;
	return -1;
}

/* Makes this process's client. libnol starts its worker threads here: they inherit the signal
 * mask of the calling thread, so every signal is blocked around the call and Kamailio's
 * handlers only ever run on Kamailio's own thread. */
static int make_client(nol_client **out)
{
	sigset_t all, old;
	nol_status st;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	st = nol_client_new(nol_cfg, out);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if(st != NOL_STATUS_OK) {
		LM_ERR("nol: cannot make the numbers.online client: %s\n", nol_error_text(st));
		return -1;
	}
	return 0;
}

/* ---- module life cycle ------------------------------------------------------------------- */

static int register_counters(void);

static int mod_init(void)
{
	nol_client *probe = NULL;
	if(register_counters() < 0)
		return -1;
	if(build_config() < 0)
		return -1;
	/* Check the whole configuration now (key, URL, public key), then drop the probe: the
	 * workers make their own clients after the fork. */
	if(make_client(&probe) < 0) {
		LM_ERR("nol: fix the module parameters (or NUMBERS_ONLINE_API_KEY / NOL_PUBLIC_KEY)\n");
		return -1;
	}
	nol_client_free(probe);
	LM_INFO("nol: libnol %s, budget %s ms, cache %s, block %s, screening contact %s\n",
			nol_version(), int_text(p_budget_ms), int_text(p_cache_size),
			p_block == NOL_UNSET || p_block == 0 ? "off" : "on",
			(p_screening_contact && *p_screening_contact) ? "set" : "unset");
	return 0;
}

static int child_init(int rank)
{
	/* Only the SIP workers look numbers up; other processes make a client on first use. */
	if(rank == PROC_INIT || rank == PROC_MAIN || rank == PROC_TCP_MAIN || rank < 0)
		return 0;
	nol_cli_tried = 1;
	if(make_client(&nol_cli) < 0) {
		/* Not fatal: this worker fails open (reason not_configured) on every lookup. */
		nol_cli = NULL;
	}
	return 0;
}

static void mod_destroy(void)
{
	int i;
	if(nol_cli) {
		nol_client_free(nol_cli);
		nol_cli = NULL;
	}
	if(nol_cfg) {
		nol_config_free(nol_cfg);
		nol_cfg = NULL;
	}
	for(i = 0; i < NK_COUNT; i++) {
		if(nol_last.str[i]) {
			pkg_free(nol_last.str[i]);
			nol_last.str[i] = NULL;
		}
	}
}

/* ---- counters (kamcmd cnt.grp_get_all nol, with the ctl and counters modules) ------------- */

static counter_handle_t cnt_lookups, cnt_verified, cnt_cached, cnt_failed_open, cnt_decline,
		cnt_redirect, cnt_route_advance;

static int register_counters(void)
{
	struct {
		counter_handle_t *h;
		const char *name;
		const char *doc;
	} defs[] = {
		{&cnt_lookups, "lookups", "nol_lookup() calls"},
		{&cnt_verified, "verified", "answers fetched and signature-checked for the call"},
		{&cnt_cached, "cached", "answers from the cache"},
		{&cnt_failed_open, "failed_open", "lookups that failed open (route-advance)"},
		{&cnt_decline, "decline_603", "decisions to decline (block opt-in)"},
		{&cnt_redirect, "redirect_302", "decisions to divert to the screening Contact"},
		{&cnt_route_advance, "route_advance", "decisions to route on"},
	};
	size_t i;
	for(i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		if(counter_register(defs[i].h, "nol", defs[i].name, 0, 0, 0, defs[i].doc, 0) < 0) {
			LM_ERR("nol: cannot register counter %s\n", defs[i].name);
			return -1;
		}
	}
	return 0;
}

static void count_decision(void)
{
	counter_inc(cnt_lookups);
	if(nol_last.failed_open)
		counter_inc(cnt_failed_open);
	else if(nol_last.str[NK_OUTCOME] && strcmp(nol_last.str[NK_OUTCOME], "cached") == 0)
		counter_inc(cnt_cached);
	else
		counter_inc(cnt_verified);
	if(nol_last.code == 603)
		counter_inc(cnt_decline);
	else if(nol_last.code == 302)
		counter_inc(cnt_redirect);
	else
		counter_inc(cnt_route_advance);
}

/* ---- the lookup -------------------------------------------------------------------------- */

/* The string accessors of a result and the $nol(key) each fills (NULL from libnol: $null). */
static const struct {
	int key;
	nol_status (*get)(const nol_result *, char **);
} string_fields[] = {
	{NK_ACTION, nol_result_action_name},
	{NK_NAME, nol_result_caller_name},
	{NK_NUMBER, nol_result_number},
	{NK_RISK_LEVEL, nol_result_risk_level},
	{NK_IDENTITY_TYPE, nol_result_identity_type},
	{NK_RECEIPT, nol_result_receipt_id},
	{NK_REASON, nol_result_sip_reason},
	{NK_CONTACT, nol_result_sip_contact},
	{NK_DISPLAY_LINE, nol_result_display_line},
};

static int nol_lookup_once(sip_msg_t *msg)
{
	struct hdr_field *caller_hf = NULL, *identity_hf;
	char *number = NULL, *verstat = NULL, *attestation = NULL, *to = NULL;
	nol_call call;
	nol_result *res = NULL;
	nol_status st;
	nol_outcome outcome;
	uint16_t code = 0;
	int32_t risk = -1;
	size_t nh = 0, i;
	char *s = NULL, *hn = NULL, *hv = NULL;
	char *hdrs = NULL;
	size_t hlen = 0;
	int ret = 1;

	if(msg == NULL)
		return -1;
	if(nol_cli == NULL && !nol_cli_tried && nol_cfg != NULL) {
		nol_cli_tried = 1;
		if(make_client(&nol_cli) < 0)
			nol_cli = NULL;
	}
	if(nol_cli == NULL) {
		last_fail_open(msg, "not_configured");
		return 2;
	}

	if(parse_headers(msg, HDR_EOH_F, 0) < 0) {
		LM_WARN("nol: cannot parse the headers: failing open\n");
		last_fail_open(msg, "unparseable_request");
		return 2;
	}

	/* The caller: P-Asserted-Identity, else From (whole header values: libnol reads the
	 * number out of the URI). */
	if(msg->pai && msg->pai->body.len > 0)
		caller_hf = msg->pai;
	else if(msg->from && msg->from->body.len > 0)
		caller_hf = msg->from;
	if(caller_hf == NULL) {
		last_fail_open(msg, "invalid_number");
		return 2;
	}
	number = str_dupz(&caller_hf->body);
	/* The verstat rides on the caller's URI or header parameters (RFC 8224 / ATIS-1000074):
	 * hand libnol the header value that carries one. */
	if(str_contains_ci(&caller_hf->body, "verstat"))
		verstat = str_dupz(&caller_hf->body);
	else if(caller_hf != msg->from && msg->from
			&& str_contains_ci(&msg->from->body, "verstat"))
		verstat = str_dupz(&msg->from->body);
	/* The attestation: the SHAKEN Identity header (libnol reads `attest` from its PASSporT). */
	identity_hf = msg->identity ? msg->identity : find_header(msg, "Identity");
	if(identity_hf && identity_hf->body.len > 0)
		attestation = str_dupz(&identity_hf->body);
	/* The receiver: the R-URI's user part. */
	if(parse_sip_msg_uri(msg) >= 0 && msg->parsed_uri.user.len > 0)
		to = str_dupz(&msg->parsed_uri.user);

	if(number == NULL) {
		ret = 2;
		last_fail_open(msg, "invalid_number");
		goto done;
	}

	memset(&call, 0, sizeof(call));
	call.number = number;
	call.context = "inbound_voice";
	call.to = to;
	call.verstat = verstat;
	call.attestation = attestation;

	st = nol_lookup(nol_cli, &call, &res);
	if(st != NOL_STATUS_OK || res == NULL) {
		LM_WARN("nol: lookup error %s: failing open\n", nol_status_str(st));
		last_fail_open(msg, "internal");
		ret = 2;
		goto done;
	}

	last_reset();
	nol_last.msg_id = msg->id;
	nol_last.msg_pid = msg->pid;
	nol_last.valid = 1;

	for(i = 0; i < sizeof(string_fields) / sizeof(string_fields[0]); i++) {
		s = NULL;
		if(string_fields[i].get(res, &s) == NOL_STATUS_OK)
			take(string_fields[i].key, s);
	}
	if(nol_last.str[NK_ACTION] == NULL)
		set_const(NK_ACTION, "allow_with_default_policy");
	s = NULL;
	if(nol_result_sip_display_name(res, &s) == NOL_STATUS_OK)
		take_display_name(s);
	if(nol_result_risk_score(res, &risk) == NOL_STATUS_OK)
		nol_last.risk = risk;
	if(nol_result_sip_code(res, &code) == NOL_STATUS_OK)
		nol_last.code = code;
	if(nol_result_outcome(res, &outcome) != NOL_STATUS_OK)
		outcome = NOL_OUTCOME_FAIL_OPEN;
	nol_last.failed_open = (outcome == NOL_OUTCOME_FAIL_OPEN);
	set_const(NK_OUTCOME, outcome == NOL_OUTCOME_VERIFIED
								  ? "verified"
								  : (outcome == NOL_OUTCOME_CACHED ? "cached" : "fail_open"));
	if(nol_last.failed_open) {
		ret = 2;
		if(nol_result_fail_open_reason(res, &s) == NOL_STATUS_OK)
			take(NK_FAIL_REASON, s);
		s = NULL;
	}

	/* The trusted-network headers, as one block for append_to_reply() / append_hf(). Each
	 * name must be an X-NumbersOnline- token and each value free of control characters. */
	if(nol_result_header_count(res, &nh) == NOL_STATUS_OK && nh > 0) {
		hdrs = (char *)pkg_malloc(1024);
		if(hdrs)
			hdrs[0] = '\0';
		for(i = 0; hdrs && i < nh; i++) {
			size_t k, nl, vl;
			int ok = 1;
			hn = hv = NULL;
			if(nol_result_header(res, i, &hn, &hv) != NOL_STATUS_OK)
				continue;
			nl = hn ? strlen(hn) : 0;
			vl = hv ? strlen(hv) : 0;
			if(nl < 17 || strncasecmp(hn, "X-NumbersOnline-", 16) != 0)
				ok = 0;
			for(k = 0; ok && k < nl; k++)
				if(!is_token_char((unsigned char)hn[k]))
					ok = 0;
			for(k = 0; ok && k < vl; k++)
				if((unsigned char)hv[k] < 0x20 || (unsigned char)hv[k] == 0x7f)
					ok = 0;
			if(ok && hlen + nl + vl + 4 < 1024) {
				memcpy(hdrs + hlen, hn, nl);
				hlen += nl;
				memcpy(hdrs + hlen, ": ", 2);
				hlen += 2;
				memcpy(hdrs + hlen, hv, vl);
				hlen += vl;
				memcpy(hdrs + hlen, "\r\n", 2);
				hlen += 2;
				hdrs[hlen] = '\0';
			} else if(!ok) {
				LM_WARN("nol: dropped an unsafe header from libnol\n");
			}
			nol_string_free(hn);
			nol_string_free(hv);
		}
		if(hdrs)
			nol_last.str[NK_HEADERS] = hdrs;
	}
	if(nol_last.str[NK_HEADERS] == NULL)
		set_const(NK_HEADERS, "X-NumbersOnline-Action: allow_with_default_policy\r\n");

done:
	if(res)
		nol_result_free(res);
	if(number)
		pkg_free(number);
	if(verstat)
		pkg_free(verstat);
	if(attestation)
		pkg_free(attestation);
	if(to)
		pkg_free(to);
	return ret;
}

static int ki_nol_lookup(sip_msg_t *msg)
{
	int ret = nol_lookup_once(msg);
	if(msg != NULL)
		count_decision();
	return ret;
}

static int w_nol_lookup(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_nol_lookup(msg);
}

/* Removes every inbound X-NumbersOnline-* header: anyone upstream can forge them, so strip
 * them at the edge of the trusted network before adding libnol's own. Returns the number
 * removed + 1 (so 1, a true value, when there were none). */
static int ki_nol_strip_inbound(sip_msg_t *msg)
{
	struct hdr_field *hf;
	int n = 0;
	if(msg == NULL || parse_headers(msg, HDR_EOH_F, 0) < 0)
		return -1;
	for(hf = msg->headers; hf; hf = hf->next) {
		if(hf->name.len >= 16 && strncasecmp(hf->name.s, "X-NumbersOnline-", 16) == 0) {
			if(del_lump(msg, hf->name.s - msg->buf, hf->len, 0) == 0) {
				LM_ERR("nol: cannot remove an inbound %.*s header\n", hf->name.len,
						hf->name.s);
				return -1;
			}
			n++;
		}
	}
	return n + 1;
}

static int w_nol_strip_inbound(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_nol_strip_inbound(msg);
}

/* ---- $nol(key) --------------------------------------------------------------------------- */

static int pv_parse_nol(pv_spec_p sp, str *in)
{
	int i;
	if(sp == NULL || in == NULL || in->len <= 0)
		return -1;
	for(i = 0; i < NK_COUNT; i++) {
		if(in->len == (int)strlen(nol_key_names[i])
				&& strncmp(in->s, nol_key_names[i], in->len) == 0) {
			sp->pvp.pvn.type = PV_NAME_INTSTR;
			sp->pvp.pvn.u.isname.type = 0;
			sp->pvp.pvn.u.isname.name.n = i;
			return 0;
		}
	}
	LM_ERR("nol: unknown $nol(%.*s); one of action, name, display_name, number, risk, "
		   "risk_level, identity_type, receipt, code, reason, contact, failed_open, "
		   "fail_reason, outcome, headers, display_line\n",
			in->len, in->s);
	return -1;
}

static int pv_get_nol(struct sip_msg *msg, pv_param_t *param, pv_value_t *res)
{
	int k;
	if(msg == NULL || param == NULL)
		return -1;
	k = param->pvn.u.isname.name.n;
	if(k < 0 || k >= NK_COUNT)
		return pv_get_null(msg, param, res);
	if(!nol_last.valid || nol_last.msg_id != msg->id || nol_last.msg_pid != msg->pid)
		return pv_get_null(msg, param, res);
	switch(k) {
		case NK_RISK:
			return pv_get_sintval(msg, param, res, nol_last.risk);
		case NK_CODE:
			return pv_get_sintval(msg, param, res, nol_last.code);
		case NK_FAILED_OPEN:
			return pv_get_sintval(msg, param, res, nol_last.failed_open);
		default:
			if(nol_last.str[k] == NULL)
				return pv_get_null(msg, param, res);
			return pv_get_strzval(msg, param, res, nol_last.str[k]);
	}
}

/* ---- exports ----------------------------------------------------------------------------- */

/* clang-format off */
static cmd_export_t cmds[] = {
	{"nol_lookup", (cmd_function)w_nol_lookup, 0, 0, 0, REQUEST_ROUTE | FAILURE_ROUTE
		| BRANCH_ROUTE | ONREPLY_ROUTE},
	{"nol_strip_inbound", (cmd_function)w_nol_strip_inbound, 0, 0, 0, REQUEST_ROUTE
		| FAILURE_ROUTE | BRANCH_ROUTE},
	{0, 0, 0, 0, 0, 0}
};

static pv_export_t mod_pvs[] = {
	{{"nol", sizeof("nol") - 1}, PVT_OTHER, pv_get_nol, 0, pv_parse_nol, 0, 0, 0},
	{{0, 0}, 0, 0, 0, 0, 0, 0, 0}
};

struct module_exports exports = {
	"nol",           /* module name */
	DEFAULT_DLFLAGS, /* dlopen flags */
	cmds,            /* exported functions */
	params,          /* exported parameters */
	0,               /* RPC methods */
	mod_pvs,         /* exported pseudo-variables */
	0,               /* response handling function */
	mod_init,        /* module initialization function */
	child_init,      /* per-child init function */
	mod_destroy      /* module destroy function */
};

static sr_kemi_t sr_kemi_nol_exports[] = {
	{ str_init("nol"), str_init("lookup"),
		SR_KEMIP_INT, ki_nol_lookup,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("nol"), str_init("strip_inbound"),
		SR_KEMIP_INT, ki_nol_strip_inbound,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	sr_kemi_modules_add(sr_kemi_nol_exports);
	return 0;
}
