/*
 * nol_ser.h: what the Kamailio and the OpenSIPS modules do alike, written once.
 *
 * Both hosts descend from SER and keep its core API: str, struct sip_msg with its parsed
 * headers (pai, from, headers, parsed_uri), parse_headers(), parse_sip_msg_uri(), pkg_malloc()
 * and pkg_free(), LM_ERR() and LM_WARN(). So one text serves both modules: reading the call
 * out of a request, turning libnol's result into the values the script reads, and handing
 * module parameters to libnol. It is the modules' own source, not an API: every function is
 * static, and each module directory links this file (integrations/common/nol_ser.h): build.sh
 * copies the module's files with cp, which follows the link; by hand, `cp -L` does the same
 * (`cp -r` or `cp -a` would copy the link itself, which dangles in the host's tree).
 *
 * The including module includes it once, after its host's headers and nol.h, and defines
 * before it:
 *   - enum nol_key, with at least NK_ACTION, NK_NAME, NK_DISPLAY_NAME, NK_NUMBER,
 *     NK_RISK_LEVEL, NK_IDENTITY_TYPE, NK_RECEIPT, NK_REASON, NK_CONTACT, NK_FAIL_REASON,
 *     NK_OUTCOME, NK_HEADERS, NK_DISPLAY_LINE and NK_COUNT;
 *   - nol_last, whose members include char *str[NK_COUNT], int valid, risk, code, failed_open;
 *   - the module parameters p_base_url, p_default_country, p_risk_tag, p_screening_contact,
 *     p_redis_url, p_redis_key_prefix, p_tls_ca_file, p_public_key_file (char *) and
 *     p_budget_ms, p_cache_size, p_max_in_flight, p_circuit_breaker, p_breaker_failures,
 *     p_breaker_cool_down_ms, p_rate_limit_per_minute, p_risk_threshold, p_block,
 *     p_max_name_len, p_route_advance_code, p_redis_budget_ms, p_warm_up_ms (int, NOL_UNSET
 *     when not set), and NOL_SER_API_KEY_PARAM when the key may come from a parameter;
 *   - nol_config *nol_cfg, which build_config() makes.
 */

#ifndef NOL_SER_H
#define NOL_SER_H

/* ---- the values the script reads ($nol(key)) ---------------------------------------------- */

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
		LM_ERR("nol: no more pkg memory\n");
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

/* The values a lookup leaves that failed open without libnol's answer (no client, no memory,
 * a request it could not read): the module has reset nol_last and bound it to its message. */
static void last_values_fail_open(const char *reason)
{
	nol_last.valid = 1;
	set_const(NK_ACTION, "allow_with_default_policy");
	set_const(NK_OUTCOME, "fail_open");
	set_const(NK_FAIL_REASON, reason);
	set_const(NK_REASON, p_route_advance_code == 404 ? "Not Found" : "Service Unavailable");
	set_const(NK_HEADERS, "X-NumbersOnline-Action: allow_with_default_policy\r\n");
}

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

/* Makes nol_last (reset by the module) describe libnol's result. Returns 1 with an answer, 2
 * when it failed open. */
static int last_values_from_result(const nol_result *res)
{
	nol_outcome outcome;
	uint16_t code = 0;
	int32_t risk = -1;
	size_t i;
	char *s = NULL;
	char *hdrs = NULL;
	const char *block = NULL;
	int ret = 1;

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
		s = NULL;
		if(nol_result_fail_open_reason(res, &s) == NOL_STATUS_OK)
			take(NK_FAIL_REASON, s);
	}

	/* The trusted-network headers as one block for append_to_reply() / append_hf(), rendered
	 * by libnol (X-NumbersOnline- token names, no control characters); copied, because the
	 * result is freed before the script reads it. */
	if(nol_result_header_block(res, &block) == NOL_STATUS_OK && block && *block) {
		size_t bl = strlen(block);
		hdrs = (char *)pkg_malloc(bl + 1);
		if(hdrs) {
			memcpy(hdrs, block, bl + 1);
			nol_last.str[NK_HEADERS] = hdrs;
		}
	}
	if(nol_last.str[NK_HEADERS] == NULL)
		set_const(NK_HEADERS, "X-NumbersOnline-Action: allow_with_default_policy\r\n");
	return ret;
}

/* ---- reading the call out of the request ---------------------------------------------------- */

/* A NUL-terminated pkg copy of a str, or NULL. */
static char *str_dupz(const str *s)
{
	char *d;
	if(s == NULL || s->s == NULL || s->len <= 0)
		return NULL;
	d = (char *)pkg_malloc(s->len + 1);
	if(d == NULL) {
		LM_ERR("nol: no more pkg memory\n");
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

/* The call's fields, as views into the request (not NUL-terminated). */
typedef struct nol_fields {
	str number;
	str verstat;
	str attestation;
	str to;
} nol_fields_t;

/* Reads the call out of the request. Returns NULL, or the reason to fail open without asking
 * (a constant). */
static const char *extract_call(struct sip_msg *msg, nol_fields_t *f)
{
	struct hdr_field *caller_hf = NULL, *identity_hf;

	memset(f, 0, sizeof(*f));
	if(parse_headers(msg, HDR_EOH_F, 0) < 0) {
		LM_WARN("nol: cannot parse the headers: failing open\n");
		return "unparseable_request";
	}
	/* The caller: P-Asserted-Identity, else From (whole header values: libnol reads the
	 * number out of the URI). */
	if(msg->pai && msg->pai->body.len > 0)
		caller_hf = msg->pai;
	else if(msg->from && msg->from->body.len > 0)
		caller_hf = msg->from;
	if(caller_hf == NULL)
		return "invalid_number";
	f->number = caller_hf->body;
	/* The verstat rides on the caller's URI or header parameters (RFC 8224 / ATIS-1000074):
	 * hand libnol the header value that carries one. */
	if(str_contains_ci(&caller_hf->body, "verstat"))
		f->verstat = caller_hf->body;
	else if(caller_hf != msg->from && msg->from
			&& str_contains_ci(&msg->from->body, "verstat"))
		f->verstat = msg->from->body;
	/* The attestation: the SHAKEN Identity header, or its compact form `y` (RFC 8224);
	 * libnol reads `attest` from its PASSporT. */
	identity_hf = find_header(msg, "Identity");
	if(identity_hf == NULL)
		identity_hf = find_header(msg, "y");
	if(identity_hf && identity_hf->body.len > 0)
		f->attestation = identity_hf->body;
	/* The receiver: the R-URI's user part. */
	if(parse_sip_msg_uri(msg) >= 0 && msg->parsed_uri.user.len > 0)
		f->to = msg->parsed_uri.user;
	return NULL;
}

/* ---- module parameters to libnol ------------------------------------------------------------ */

/* Reads a whole file (the public key PEM) into a malloc'd string. */
static char *read_file(const char *path)
{
	FILE *f;
	char *buf;
	long n;
	size_t got;
	f = fopen(path, "rb");
	if(f == NULL) {
		LM_ERR("nol: modparam public_key_file: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if(fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > 1024 * 1024
			|| fseek(f, 0, SEEK_SET) != 0) {
		LM_ERR("nol: modparam public_key_file: cannot read %s\n", path);
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

/* An integer parameter, unless it was left at NOL_UNSET (libnol's default then). */
static int set_int(const char *name, int value)
{
	char text[16];
	if(value == NOL_UNSET)
		return 0;
	snprintf(text, sizeof text, "%d", value);
	return set_text(name, text);
}

/* Makes nol_cfg from the module parameters (the includer's p_*: a string left NULL or empty
 * and an integer left at NOL_UNSET are not passed, so libnol's default or its environment
 * variable holds). Returns 0, or -1 with nol_cfg NULL after logging the refused parameter. */
static int build_config(void)
{
	char *pem = NULL;
	nol_status st;
	const struct {
		const char *name;
		char *value;
	} texts[] = {
#ifdef NOL_SER_API_KEY_PARAM
		{"api_key", NOL_SER_API_KEY_PARAM},
#endif
		{"base_url", p_base_url},
		{"default_country", p_default_country},
		{"risk_tag", p_risk_tag},
		{"screening_contact", p_screening_contact},
		{"redis_url", p_redis_url},
		{"redis_key_prefix", p_redis_key_prefix},
		{"tls_ca_file", p_tls_ca_file},
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
		{"redis_budget_ms", p_redis_budget_ms},
		{"warm_up_ms", p_warm_up_ms},
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
		st = nol_config_set_public_key_pem(nol_cfg, pem);
		free(pem);
		if(st != NOL_STATUS_OK) {
			LM_ERR("nol: modparam public_key_file: %s\n", nol_error_text(st));
			goto error;
		}
	}
	for(i = 0; i < sizeof ints / sizeof ints[0]; i++)
		if(set_int(ints[i].name, ints[i].value) < 0)
			goto error;
	return 0;
error:
	nol_config_free(nol_cfg);
	nol_cfg = NULL;
	return -1;
}

#endif /* NOL_SER_H */
