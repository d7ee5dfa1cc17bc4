/*
 * nol: an OpenSIPS 3.6 module that asks numbers.online about the calling number of an inbound
 * INVITE through libnol (the C ABI, include/nol.h), and ALWAYS fails open.
 *
 * Script:  async(nol_lookup(), RESUME_ROUTE)   nol_lookup()   nol_strip_inbound()   $nol(key)
 *
 * Process model. OpenSIPS forks its SIP workers after mod_init, and the async interface
 * resumes a transaction in the process (and reactor) that suspended it. So each SIP worker
 * holds its own libnol client (made in child_init, with every signal blocked so that libnol's
 * threads never run OpenSIPS's signal handlers) and its own libnol event fd, registered once
 * in that worker's reactor (register_async_fd, on the first async lookup). mod_init only
 * checks the configuration (it makes one client and frees it, so a bad key, PEM, URL or
 * out-of-range value stops OpenSIPS at start-up with libnol's message).
 *
 * async(nol_lookup(), R): the worker reads the call (caller from P-Asserted-Identity or From,
 * verstat from their parameters, attestation from Identity, receiver from the R-URI), starts
 * nol_lookup_start() with user_data = a pkg block that remembers the transaction's async
 * context, and returns ASYNC_NO_FD: tm has made the INVITE's transaction (retransmissions are
 * absorbed there) and the worker goes back to its reactor. When libnol's event fd is readable,
 * the worker drains nol_client_next(): every decision carries the user_data of the lookup
 * that made it, so each one resumes exactly ITS transaction (async_script_resume_f with that
 * context): $nol(...) is set from it and route R runs. Several transactions outstanding in one
 * worker share the one fd; decisions come in the order they finish, each to its own. libnol
 * delivers every started lookup exactly once, within the budget, failing open, so every
 * suspended transaction resumes within the budget.
 *
 * nol_lookup() (the synchronous form) looks up in the calling process and blocks it for at
 * most the budget (a cache hit takes about a microsecond). The async form falls back to it
 * where no reactor resume is possible (outside request and reply routes).
 *
 * The API key comes from NUMBERS_ONLINE_API_KEY only (libnol reads it); it is never logged.
 */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../../sr_module.h"
#include "../../async.h"
#include "../../dprint.h"
#include "../../error.h"
#include "../../mem/mem.h"
#include "../../pvar.h"
#include "../../route.h"
#include "../../statistics.h"
#include "../../str.h"
#include "../../ut.h"
#include "../../data_lump.h"
#include "../../parser/msg_parser.h"
#include "../../parser/parse_from.h"
#include "../../parser/parse_pai.h"
#include "../../parser/parse_uri.h"

#include <nol.h>

/* ---- parameters -------------------------------------------------------------------------- */

/* Every parameter goes to libnol as it was given (nol_config_set): libnol holds each setting's
 * one range and rule, and its message says what is wrong. A string left empty ("") and an
 * integer left at NOL_UNSET are not passed: libnol's default (or its environment variable)
 * applies. */
#define NOL_UNSET INT_MIN
#define WORKER_MAX_IN_FLIGHT 128
#define BLOCKING_MAX_IN_FLIGHT 4

static char *p_base_url = NULL;
static char *p_public_key_file = NULL;
static int p_budget_ms = NOL_UNSET;
static int p_cache_size = NOL_UNSET;
static int p_max_in_flight = NOL_UNSET;
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
/* the module answers with it itself when there is no client; libnol refuses all but 503/404 */
static int p_route_advance_code = 503;
/* The shared cache tier (libnol built with Redis): every SIP worker's client and every node
 * that names the same Redis ask the service once per caller per TTL, which also removes the
 * cost of one client per worker. The URL may carry a password: never logged here. */
static char *p_redis_url = NULL;
static char *p_redis_key_prefix = NULL;
static int p_redis_budget_ms = NOL_UNSET;
/* A private deployment's CA file, and an optional bounded warm-up connection per client. */
static char *p_tls_ca_file = NULL;
static int p_warm_up_ms = NOL_UNSET;

static const param_export_t params[] = {
	{"base_url", STR_PARAM, &p_base_url},
	{"public_key_file", STR_PARAM, &p_public_key_file},
	{"budget_ms", INT_PARAM, &p_budget_ms},
	{"cache_size", INT_PARAM, &p_cache_size},
	{"max_in_flight", INT_PARAM, &p_max_in_flight},
	{"default_country", STR_PARAM, &p_default_country},
	{"circuit_breaker", INT_PARAM, &p_circuit_breaker},
	{"breaker_failures", INT_PARAM, &p_breaker_failures},
	{"breaker_cool_down_ms", INT_PARAM, &p_breaker_cool_down_ms},
	{"rate_limit_per_minute", INT_PARAM, &p_rate_limit_per_minute},
	{"risk_tag", STR_PARAM, &p_risk_tag},
	{"risk_threshold", INT_PARAM, &p_risk_threshold},
	{"block", INT_PARAM, &p_block},
	{"screening_contact", STR_PARAM, &p_screening_contact},
	{"max_name_len", INT_PARAM, &p_max_name_len},
	{"route_advance_code", INT_PARAM, &p_route_advance_code},
	{"redis_url", STR_PARAM, &p_redis_url},
	{"redis_key_prefix", STR_PARAM, &p_redis_key_prefix},
	{"redis_budget_ms", INT_PARAM, &p_redis_budget_ms},
	{"tls_ca_file", STR_PARAM, &p_tls_ca_file},
	{"warm_up_ms", INT_PARAM, &p_warm_up_ms},
	{0, 0, 0}
};

/* ---- statistics (MI: get_statistics nol:) ------------------------------------------------- */

static stat_var *st_lookups, *st_verified, *st_cached, *st_failed_open, *st_decline,
		*st_redirect, *st_route_advance, *st_async, *st_sync;

static const stat_export_t mod_stats[] = {
	{"lookups", 0, &st_lookups},
	{"verified", 0, &st_verified},
	{"cached", 0, &st_cached},
	{"failed_open", 0, &st_failed_open},
	{"decline_603", 0, &st_decline},
	{"redirect_302", 0, &st_redirect},
	{"route_advance", 0, &st_route_advance},
	{"async_lookups", 0, &st_async},
	{"sync_lookups", 0, &st_sync},
	{0, 0, 0}
};

/* ---- per-process state ------------------------------------------------------------------- */

static nol_config *nol_cfg = NULL; /* made in mod_init, inherited by every process */
static nol_client *nol_cli = NULL; /* this process's client */
static int nol_cli_tried = 0;
static int nol_fd_registered = 0;  /* this process's event fd is in its reactor */

/* One lookup in flight in this process: user_data of nol_lookup_start. pkg memory: it is
 * made, resumed and freed by the same process. */
typedef struct nol_req {
	async_ctx *actx;   /* the transaction's async context (tm's, in shm) */
	nol_result *res;   /* the decision, set just before the resume */
} nol_req_t;

enum nol_key {
	NK_ACTION = 0, NK_NAME, NK_DISPLAY_NAME, NK_NUMBER, NK_RISK, NK_RISK_LEVEL,
	NK_IDENTITY_TYPE, NK_RECEIPT, NK_CODE, NK_REASON, NK_CONTACT, NK_VERIFIED,
	NK_FAILED_OPEN, NK_FAIL_REASON, NK_OUTCOME, NK_HEADERS, NK_DISPLAY_LINE, NK_COUNT
};

static const char *nol_key_names[NK_COUNT] = {
	"action", "name", "display_name", "number", "risk", "risk_level", "identity_type",
	"receipt", "code", "reason", "contact", "verified", "failed_open", "fail_reason",
	"outcome", "headers", "display_line",
};

/* The decision $nol(...) reads: the one of the message being handled (its id), else $null. */
typedef struct nol_last {
	unsigned int msg_id;
	int valid;
	int risk;
	int code;
	int failed_open;
	int verified;
	char *str[NK_COUNT]; /* pkg, NUL-terminated, or NULL ($null) */
} nol_last_t;

static nol_last_t nol_last;

/* What this module and the Kamailio one do alike (integrations/common/nol_ser.h). */
#include "nol_ser.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static void last_reset(void)
{
	int i;
	for (i = 0; i < NK_COUNT; i++) {
		if (nol_last.str[i]) {
			pkg_free(nol_last.str[i]);
			nol_last.str[i] = NULL;
		}
	}
	nol_last.valid = 0;
	nol_last.risk = -1;
	nol_last.code = p_route_advance_code;
	nol_last.failed_open = 1;
	nol_last.verified = 0;
}

static void count_decision(void)
{
	update_stat(st_lookups, 1);
	if (nol_last.failed_open)
		update_stat(st_failed_open, 1);
	else if (nol_last.str[NK_OUTCOME] && strcmp(nol_last.str[NK_OUTCOME], "cached") == 0)
		update_stat(st_cached, 1);
	else
		update_stat(st_verified, 1);
	if (nol_last.code == 603)
		update_stat(st_decline, 1);
	else if (nol_last.code == 302)
		update_stat(st_redirect, 1);
	else
		update_stat(st_route_advance, 1);
}

/* The values a lookup that failed open without libnol's answer leaves. */
static void last_fail_open(struct sip_msg *msg, const char *reason)
{
	last_reset();
	nol_last.msg_id = msg ? msg->id : 0;
	last_values_fail_open(reason);
	count_decision();
}

/* ---- configuration ----------------------------------------------------------------------- */

/* Makes a client. libnol starts its threads here: they inherit the calling thread's signal
 * mask, so every signal is blocked around the call and OpenSIPS's handlers only ever run on
 * OpenSIPS's own thread. */
static int make_client(nol_client **out, int max_in_flight)
{
	sigset_t all, old;
	nol_status st;
	if (p_max_in_flight == NOL_UNSET && set_int("max_in_flight", max_in_flight) < 0)
		return -1;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	st = nol_client_new(nol_cfg, out);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (st != NOL_STATUS_OK) {
		LM_ERR("nol: cannot make the numbers.online client: %s\n", nol_error_text(st));
		return -1;
	}
	return 0;
}

static nol_client *process_client(void)
{
	if (nol_cli == NULL && !nol_cli_tried && nol_cfg != NULL) {
		nol_cli_tried = 1;
		if (make_client(&nol_cli, BLOCKING_MAX_IN_FLIGHT) < 0)
			nol_cli = NULL;
	}
	return nol_cli;
}

/* ---- module life cycle ------------------------------------------------------------------- */

static int mod_init(void)
{
	nol_client *probe = NULL;
	if (build_config() < 0)
		return -1;
	/* check the whole configuration now (key, URL, public key) */
	if (make_client(&probe, BLOCKING_MAX_IN_FLIGHT) < 0) {
		LM_ERR("nol: fix the module parameters (or NUMBERS_ONLINE_API_KEY)\n");
		return -1;
	}
	nol_client_free(probe);
	LM_INFO("nol: libnol %s ready (block %s, screening contact %s)\n", nol_version(),
			(p_block == NOL_UNSET || p_block == 0) ? "off" : "on",
			(p_screening_contact && *p_screening_contact) ? "set" : "unset");
	return 0;
}

static int child_init(int rank)
{
	/* SIP workers: their own client now (its threads started with signals blocked), sized
	 * for the lookups a worker keeps outstanding at once. Other processes (timer, MI) make
	 * a small one on first use, if ever. */
	if (!is_worker_proc(rank) || nol_cfg == NULL)
		return 0;
	nol_cli_tried = 1;
	if (make_client(&nol_cli, WORKER_MAX_IN_FLIGHT) < 0) {
		nol_cli = NULL;
		LM_ERR("nol: worker %d has no client: its lookups fail open\n", rank);
	}
	return 0;
}

static void mod_destroy(void)
{
	/* the event fd is closed by libnol; OpenSIPS is exiting, nothing polls it any more */
	if (nol_cli) {
		nol_client_free(nol_cli);
		nol_cli = NULL;
	}
	if (nol_cfg) {
		nol_config_free(nol_cfg);
		nol_cfg = NULL;
	}
	last_reset();
}

/* ---- reading the call -------------------------------------------------------------------- */

typedef struct nol_call_buf {
	char *number, *verstat, *attestation, *to;
} nol_call_buf_t;

static void call_buf_free(nol_call_buf_t *b)
{
	if (b->number) pkg_free(b->number);
	if (b->verstat) pkg_free(b->verstat);
	if (b->attestation) pkg_free(b->attestation);
	if (b->to) pkg_free(b->to);
	memset(b, 0, sizeof(*b));
}

/* Fills call from msg (strings in b). Returns NULL or the reason to fail open. */
static const char *prepare_call(struct sip_msg *msg, nol_call *call, nol_call_buf_t *b)
{
	nol_fields_t f;
	const char *fail = extract_call(msg, &f);
	memset(b, 0, sizeof(*b));
	if (fail)
		return fail;
	b->number = str_dupz(&f.number);
	b->verstat = str_dupz(&f.verstat);
	b->attestation = str_dupz(&f.attestation);
	b->to = str_dupz(&f.to);
	if (b->number == NULL) {
		call_buf_free(b);
		return "invalid_number";
	}
	memset(call, 0, sizeof(*call));
	call->number = b->number;
	call->context = "inbound_voice";
	call->to = b->to;
	call->verstat = b->verstat;
	call->attestation = b->attestation;
	return NULL;
}

/* ---- the decision -> $nol(...) ------------------------------------------------------------ */

/* Makes $nol(...) describe res for msg. Returns 1 with an answer, 2 when it failed open. */
static int last_from_result(struct sip_msg *msg, const nol_result *res)
{
	int ret;
	last_reset();
	nol_last.msg_id = msg->id;
	ret = last_values_from_result(res);
	nol_last.verified = !nol_last.failed_open;
	count_decision();
	return ret;
}

/* ---- the synchronous lookup: nol_lookup() -------------------------------------------------- */

static int lookup_blocking(struct sip_msg *msg)
{
	nol_call call;
	nol_call_buf_t b;
	nol_result *res = NULL;
	const char *fail;
	nol_client *cli = process_client();
	nol_status st;
	int ret;

	update_stat(st_sync, 1);
	if (cli == NULL) {
		last_fail_open(msg, "not_configured");
		return 2;
	}
	fail = prepare_call(msg, &call, &b);
	if (fail) {
		last_fail_open(msg, fail);
		return 2;
	}
	st = nol_lookup(cli, &call, &res);
	call_buf_free(&b);
	if (st != NOL_STATUS_OK || res == NULL) {
		LM_WARN("nol: lookup error %s: failing open\n", nol_status_str(st));
		last_fail_open(msg, "internal");
		return 2;
	}
	ret = last_from_result(msg, res);
	nol_result_free(res);
	return ret;
}

static int w_nol_lookup(struct sip_msg *msg)
{
	return lookup_blocking(msg);
}

/* ---- the asynchronous lookup: async(nol_lookup(), ROUTE) --------------------------------- */

/* tm calls it (through async_script_resume_f) with the transaction's faked request when
 * dispatch_decisions() hands it this transaction's decision. */
static int nol_resume(int fd, struct sip_msg *msg, void *param)
{
	nol_req_t *req = (nol_req_t *)param;
	int ret;
	if (req == NULL) {
		last_fail_open(msg, "internal");
		async_status = ASYNC_DONE_NO_IO;
		return 2;
	}
	if (req->res) {
		ret = last_from_result(msg, req->res);
		nol_result_free(req->res);
	} else {
		last_fail_open(msg, "internal");
		ret = 2;
	}
	pkg_free(req);
	async_status = ASYNC_DONE_NO_IO; /* no fd of this transaction's own in the reactor */
	return ret;
}

/* The reactor calls it when this process's libnol event fd is readable. Every decision
 * carries the user_data of the lookup that made it: it resumes that transaction only. */
static int dispatch_decisions(int fd, void *param)
{
	uint64_t ud;
	nol_result *res;
	nol_req_t *req;
	(void)fd;
	(void)param;
	while (nol_cli && nol_client_next(nol_cli, &ud, &res) == NOL_STATUS_OK) {
		req = (nol_req_t *)(uintptr_t)ud;
		if (req == NULL) {
			nol_result_free(res);
			continue;
		}
		req->res = res;
		/* runs nol_resume() and the script's resume route for req's transaction; the route
		 * may start another async lookup (the fd stays registered) */
		async_script_resume_f(ASYNC_FD_NONE, req->actx, 0);
	}
	async_status = ASYNC_CONTINUE; /* keep the fd in the reactor */
	return 0;
}

static int ensure_fd_registered(void)
{
	int fd = -1;
	if (nol_fd_registered)
		return 0;
	if (nol_cli == NULL || nol_client_event_fd(nol_cli, &fd) != NOL_STATUS_OK || fd < 0) {
		LM_ERR("nol: no libnol event fd in this process\n");
		return -1;
	}
	if (register_async_fd(fd, dispatch_decisions, NULL) < 0) {
		LM_ERR("nol: cannot add libnol's event fd to the reactor\n");
		return -1;
	}
	nol_fd_registered = 1;
	return 0;
}

static int w_nol_lookup_async(struct sip_msg *msg, async_ctx *ctx)
{
	nol_call call;
	nol_call_buf_t b;
	nol_req_t *req;
	const char *fail;
	nol_status st;
	int ret;

	/* outside request/reply routes, or in a process without a client or reactor fd: the
	 * synchronous lookup, then the resume route at once */
	if ((route_type != REQUEST_ROUTE && route_type != ONREPLY_ROUTE) || nol_cli == NULL
			|| async_script_resume_f == NULL || ensure_fd_registered() < 0) {
		ret = lookup_blocking(msg);
		async_status = ASYNC_SYNC;
		return ret;
	}
	update_stat(st_async, 1);
	fail = prepare_call(msg, &call, &b);
	if (fail) {
		last_fail_open(msg, fail);
		async_status = ASYNC_NO_IO; /* decided: straight to the resume route */
		return 2;
	}
	req = (nol_req_t *)pkg_malloc(sizeof(*req));
	if (req == NULL) {
		call_buf_free(&b);
		last_fail_open(msg, "busy");
		async_status = ASYNC_NO_IO;
		return 2;
	}
	req->actx = ctx;
	req->res = NULL;
	st = nol_lookup_start(nol_cli, &call, (uint64_t)(uintptr_t)req);
	call_buf_free(&b);
	if (st != NOL_STATUS_OK) {
		pkg_free(req);
		LM_WARN("nol: lookup start error %s: failing open\n", nol_status_str(st));
		last_fail_open(msg, "internal");
		async_status = ASYNC_NO_IO;
		return 2;
	}
	/* the decision (even one already waiting: a cache hit) is taken from the reactor, after
	 * tm has finished suspending this transaction */
	ctx->resume_f = nol_resume;
	ctx->resume_param = req;
	async_status = ASYNC_NO_FD;
	return 1;
}

/* ---- nol_strip_inbound() ------------------------------------------------------------------ */

static int w_nol_strip_inbound(struct sip_msg *msg)
{
	struct hdr_field *hf;
	int n = 0;
	if (parse_headers(msg, HDR_EOH_F, 0) < 0)
		return -1;
	for (hf = msg->headers; hf; hf = hf->next) {
		if (hf->name.len >= 16 && strncasecmp(hf->name.s, "X-NumbersOnline-", 16) == 0) {
			if (del_lump(msg, hf->name.s - msg->buf, hf->len, 0) == NULL) {
				LM_ERR("nol: cannot remove an inbound %.*s header\n", hf->name.len, hf->name.s);
				return -1;
			}
			n++;
		}
	}
	return n > 0 ? 1 : 2;
}

/* ---- $nol(key) ---------------------------------------------------------------------------- */

static int pv_parse_nol(pv_spec_p sp, const str *in)
{
	int i;
	if (sp == NULL || in == NULL || in->s == NULL || in->len <= 0)
		return -1;
	for (i = 0; i < NK_COUNT; i++) {
		if ((int)strlen(nol_key_names[i]) == in->len
				&& strncmp(nol_key_names[i], in->s, in->len) == 0) {
			sp->pvp.pvn.type = PV_NAME_INTSTR;
			sp->pvp.pvn.u.isname.type = 0;
			sp->pvp.pvn.u.isname.name.n = i;
			return 0;
		}
	}
	LM_ERR("nol: unknown $nol(%.*s)\n", in->len, in->s);
	return -1;
}

static int pv_get_nol(struct sip_msg *msg, pv_param_t *param, pv_value_t *res)
{
	int k;
	str s;
	if (msg == NULL || param == NULL || !nol_last.valid || msg->id != nol_last.msg_id)
		return pv_get_null(msg, param, res);
	k = param->pvn.u.isname.name.n;
	switch (k) {
	case NK_RISK:
		return pv_get_sintval(msg, param, res, nol_last.risk);
	case NK_CODE:
		return pv_get_sintval(msg, param, res, nol_last.code);
	case NK_FAILED_OPEN:
		return pv_get_sintval(msg, param, res, nol_last.failed_open);
	case NK_VERIFIED:
		return pv_get_sintval(msg, param, res, nol_last.verified);
	default:
		if (k < 0 || k >= NK_COUNT || nol_last.str[k] == NULL)
			return pv_get_null(msg, param, res);
		s.s = nol_last.str[k];
		s.len = strlen(s.s);
		return pv_get_strval(msg, param, res, &s);
	}
}

/* ---- exports ------------------------------------------------------------------------------ */

static const cmd_export_t cmds[] = {
	{"nol_lookup", (cmd_function)w_nol_lookup, {{0, 0, 0}},
		REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE | BRANCH_ROUTE | LOCAL_ROUTE
		| STARTUP_ROUTE | TIMER_ROUTE | EVENT_ROUTE},
	{"nol_strip_inbound", (cmd_function)w_nol_strip_inbound, {{0, 0, 0}},
		REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE},
	{0, 0, {{0, 0, 0}}, 0}
};

static const acmd_export_t acmds[] = {
	{"nol_lookup", (acmd_function)w_nol_lookup_async, {{0, 0, 0}}},
	{0, 0, {{0, 0, 0}}}
};

static const pv_export_t mod_items[] = {
	{str_const_init("nol"), 1900, pv_get_nol, 0, pv_parse_nol, 0, 0, 0},
	{{0, 0}, 0, 0, 0, 0, 0, 0, 0}
};

struct module_exports exports = {
	"nol",
	MOD_TYPE_DEFAULT,
	MODULE_VERSION,
	DEFAULT_DLFLAGS,
	0,            /* load function */
	NULL,         /* dependencies */
	cmds,
	acmds,
	params,
	mod_stats,
	0,            /* MI functions */
	mod_items,
	0,            /* transformations */
	0,            /* extra processes */
	0,            /* pre-init */
	mod_init,
	0,            /* response function */
	mod_destroy,
	child_init,
	0             /* reload confirm */
};
