/*
 * nol: a Kamailio module that asks numbers.online about the calling number of an inbound
 * INVITE through libnol (the C ABI, include/nol.h), and ALWAYS fails open.
 *
 * Config:   nol_lookup_async("ROUTE")  nol_lookup()  nol_strip_inbound()   $nol(key)
 * KEMI:     KSR.nol.lookup_async("callback")  KSR.nol.lookup()  KSR.nol.strip_inbound()
 *
 * Process model (non-blocking, nol_lookup_async): ONE libnol client per Kamailio instance,
 * held by one module process ("nol lookups", forked from the main process in child_init like
 * http_async_client's workers). A SIP worker never waits on the service: it creates the
 * INVITE's transaction (t_newtran, so a retransmission is absorbed by tm and never looked up
 * again), copies the call's fields (caller from P-Asserted-Identity or From, verstat,
 * Identity attestation, R-URI user) into one shared-memory block, suspends the transaction
 * (tm t_suspend), writes the block's address into a pipe (8 bytes: atomic) and stops its
 * script. The nol process polls that pipe and libnol's event fd: a request becomes
 * nol_lookup_start(user_data = the block); a decision becomes the current $nol(...) and the
 * transaction is resumed with t_continue (the resume route, or the KEMI callback, runs in the
 * nol process), then the block is freed. libnol always delivers a decision within the budget
 * (fail open), so every suspended transaction resumes within it. The cache, single-flight,
 * circuit breaker, rate limit and connections are the one client's: one paid lookup per
 * caller per TTL for the whole instance.
 *
 * mod_init only checks the configuration (it makes one client and frees it again, so a bad key
 * file or URL stops Kamailio at start-up with a clear message) and makes the pipe. The blocking
 * nol_lookup() (kept for stateless configs without tm) makes a client in the process that
 * calls it, on first use, and blocks that process for at most the budget.
 *
 * $nol(key) reads the decision of the message being handled: in the nol process, of the
 * transaction being resumed; after nol_lookup(), of the message that made it. Anywhere else it
 * reads $null.
 *
 * Fail open: every path leaves the pseudo-variables describing a decision. When libnol cannot
 * answer (timeout, error, bad signature, no client, a libnol bug) the action is
 * allow_with_default_policy and the SIP code is the route-advance code.
 *
 * The API key comes from the `api_key` parameter or the NUMBERS_ONLINE_API_KEY environment
 * variable; it is handed to libnol and never logged.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/action.h"
#include "../../core/cfg/cfg_struct.h"
#include "../../core/counters.h"
#include "../../core/daemonize.h"
#include "../../core/data_lump.h"
#include "../../core/dprint.h"
#include "../../core/kemi.h"
#include "../../core/mem/mem.h"
#include "../../core/mod_fix.h"
#include "../../core/parser/msg_parser.h"
#include "../../core/parser/parse_from.h"
#include "../../core/parser/parse_ppi_pai.h"
#include "../../core/parser/parse_uri.h"
#include "../../core/pt.h"
#include "../../core/pvar.h"
#include "../../core/route.h"
#include "../../core/sr_module.h"
#include "../../core/str.h"
#include "../../core/ut.h"
#include "../../modules/tm/tm_load.h"

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
/* Unset, the module picks per client (libnol starts that many threads in it): the nol
 * process's client serves every SIP worker's calls at once (64 INVITEs outstanding from new
 * callers against a service that takes 250 ms need 64 requests in flight, plus the ones a
 * timeout left behind); a process that blocks in nol_lookup() looks up one call at a time, and
 * a few cover the requests a timeout left behind. */
static int p_max_in_flight = NOL_UNSET;
#define NOL_PROCESS_MAX_IN_FLIGHT 128
#define BLOCKING_MAX_IN_FLIGHT 4
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
/* The shared cache tier (libnol built with Redis): every node of a cluster that names the same
 * Redis asks the service once per caller per TTL. The URL may carry a password: it is handed to
 * libnol and never logged here. */
static char *p_redis_url = NULL;
static char *p_redis_key_prefix = NULL;
static int p_redis_budget_ms = NOL_UNSET;
/* A private deployment's CA file, and an optional bounded warm-up connection per client. */
static char *p_tls_ca_file = NULL;
static int p_warm_up_ms = NOL_UNSET;

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
	{"redis_url", PARAM_STRING, &p_redis_url},
	{"redis_key_prefix", PARAM_STRING, &p_redis_key_prefix},
	{"redis_budget_ms", PARAM_INT, &p_redis_budget_ms},
	{"tls_ca_file", PARAM_STRING, &p_tls_ca_file},
	{"warm_up_ms", PARAM_INT, &p_warm_up_ms},
	{0, 0, 0}
};

/* ---- per-process state ------------------------------------------------------------------- */

static nol_config *nol_cfg = NULL; /* made in mod_init, inherited by every process */
/* The nol process's client (made after its fork), or, in a process that calls the blocking
 * nol_lookup(), that process's own (made on first use). */
static nol_client *nol_cli = NULL;
static int nol_cli_tried = 0;

static tm_api_t tmb;       /* tm's API; tmb.t_suspend is NULL without tm */
static int nol_tm_loaded = 0;
/* Requests from the SIP workers to the nol process: the address of an nol_req_t in shared
 * memory, 8 bytes per write (atomic: below PIPE_BUF), both ends non-blocking. Made in mod_init,
 * before any fork. */
static int nol_pipe[2] = {-1, -1};

/* One suspended INVITE, in shared memory: made by a SIP worker, freed by the nol process. */
typedef struct nol_req {
	unsigned int tindex; /* the suspended transaction */
	unsigned int tlabel;
	int route;           /* the resume route's index in main_rt, or -1 with KEMI */
	str cbname;          /* the KEMI callback (points into this block) */
	const char *fail;    /* when set: no lookup, fail open with this reason (a constant) */
	char *number;        /* the nol_call fields, NUL-terminated, in this block, or NULL */
	char *verstat;
	char *attestation;
	char *to;
} nol_req_t;

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
	int resuming;        /* in the nol process: they belong to this transaction instead */
	unsigned int tindex;
	unsigned int tlabel;
	int valid;
	int risk;
	int code;
	int failed_open;
	char *str[NK_COUNT]; /* pkg memory, NUL-terminated, or NULL ($null) */
} nol_last_t;

static nol_last_t nol_last = {0};

/* What this module and the OpenSIPS one do alike (integrations/common/nol_ser.h). */
#define NOL_SER_API_KEY_PARAM p_api_key
#include "nol_ser.h"

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
	nol_last.resuming = 0;
	nol_last.risk = -1;
	nol_last.code = p_route_advance_code;
	nol_last.failed_open = 1;
}

/* The values a failed-open lookup leaves. */
static void last_fail_open(struct sip_msg *msg, const char *reason)
{
	last_reset();
	if(msg) {
		nol_last.msg_id = msg->id;
		nol_last.msg_pid = msg->pid;
	}
	last_values_fail_open(reason);
}

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

/* Makes this process's client. libnol starts its worker threads here: they inherit the signal
 * mask of the calling thread, so every signal is blocked around the call and Kamailio's
 * handlers only ever run on Kamailio's own thread. */
static int make_client_sized(nol_client **out, int max_in_flight)
{
	sigset_t all, old;
	nol_status st;
	if(p_max_in_flight == NOL_UNSET && set_int("max_in_flight", max_in_flight) < 0)
		return -1;
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

/* A client for a process that blocks in nol_lookup() (and mod_init's probe). */
static int make_client(nol_client **out)
{
	return make_client_sized(out, BLOCKING_MAX_IN_FLIGHT);
}

/* ---- module life cycle ------------------------------------------------------------------- */

static int register_counters(void);
static void nol_process_main(void);

static int mod_init(void)
{
	nol_client *probe = NULL;
	if(register_counters() < 0)
		return -1;
	if(build_config() < 0)
		return -1;
	/* Check the whole configuration now (key, URL, public key), then drop the probe: the nol
	 * process makes the instance's client after the fork. */
	if(make_client(&probe) < 0) {
		LM_ERR("nol: fix the module parameters (or NUMBERS_ONLINE_API_KEY / NOL_PUBLIC_KEY)\n");
		return -1;
	}
	nol_client_free(probe);
	memset(&tmb, 0, sizeof(tmb));
	if(load_tm_api(&tmb) == 0 && tmb.t_suspend && tmb.t_continue && tmb.t_newtran) {
		nol_tm_loaded = 1;
	} else {
		memset(&tmb, 0, sizeof(tmb));
		LM_INFO("nol: tm is not loaded: only the blocking nol_lookup() is available\n");
	}
	if(pipe(nol_pipe) < 0 || fcntl(nol_pipe[0], F_SETFL, O_NONBLOCK) < 0
			|| fcntl(nol_pipe[1], F_SETFL, O_NONBLOCK) < 0
			|| fcntl(nol_pipe[0], F_SETFD, FD_CLOEXEC) < 0
			|| fcntl(nol_pipe[1], F_SETFD, FD_CLOEXEC) < 0) {
		LM_ERR("nol: cannot make the request pipe: %s\n", strerror(errno));
		return -1;
	}
	/* the nol process: it holds the instance's client and resumes the transactions */
	register_procs(1);
	cfg_register_child(1);
	/* The Redis URL may carry a password: only whether it is set. */
	LM_INFO("nol: libnol %s, budget %s ms, cache %s, block %s, screening contact %s, shared "
			"cache %s\n",
			nol_version(), int_text(p_budget_ms), int_text(p_cache_size),
			p_block == NOL_UNSET || p_block == 0 ? "off" : "on",
			(p_screening_contact && *p_screening_contact) ? "set" : "unset",
			(p_redis_url && *p_redis_url) ? "on" : "off");
	return 0;
}

static int child_init(int rank)
{
	int pid;
	/* Only the main process forks the nol process, once. Every other process (SIP workers,
	 * timers, the nol process itself, which comes back here as PROC_RPC) has nothing to do:
	 * a process that calls the blocking nol_lookup() makes its client on first use. */
	if(rank != PROC_MAIN)
		return 0;
	pid = fork_process(PROC_RPC, "nol lookups", 1);
	if(pid < 0) {
		LM_ERR("nol: cannot fork the nol process\n");
		return -1;
	}
	if(pid == 0) {
		if(cfg_child_init())
			return -1;
		nol_process_main(); /* never returns */
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

/* Makes $nol(...) describe libnol's result (not yet bound to a message). Returns 1 with an
 * answer, 2 when it failed open. */
static int last_from_result(const nol_result *res)
{
	last_reset();
	return last_values_from_result(res);
}

/* ---- the blocking lookup: nol_lookup() ---------------------------------------------------- */

static int nol_lookup_once(sip_msg_t *msg)
{
	nol_fields_t f;
	const char *fail;
	char *number = NULL, *verstat = NULL, *attestation = NULL, *to = NULL;
	nol_call call;
	nol_result *res = NULL;
	nol_status st;
	int ret;

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
	fail = extract_call(msg, &f);
	if(fail != NULL) {
		last_fail_open(msg, fail);
		return 2;
	}
	number = str_dupz(&f.number);
	verstat = str_dupz(&f.verstat);
	attestation = str_dupz(&f.attestation);
	to = str_dupz(&f.to);
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
	ret = last_from_result(res);
	nol_last.msg_id = msg->id;
	nol_last.msg_pid = msg->pid;

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

/* ---- the non-blocking lookup: nol_lookup_async(route) in a SIP worker ---------------------- */

/* Copies a field into the request block at *p (NUL-terminated), or NULL when empty. */
static char *req_put(char **p, const str *s)
{
	char *d;
	if(s->s == NULL || s->len <= 0)
		return NULL;
	d = *p;
	memcpy(d, s->s, s->len);
	d[s->len] = '\0';
	*p += s->len + 1;
	return d;
}

static nol_req_t *req_new(sip_msg_t *msg, int route, const str *cbname)
{
	nol_fields_t f;
	const char *fail;
	nol_req_t *req;
	size_t size;
	char *p;

	fail = extract_call(msg, &f);
	size = sizeof(nol_req_t) + (cbname ? cbname->len + 1 : 0) + f.number.len + 1
		   + f.verstat.len + 1 + f.attestation.len + 1 + f.to.len + 1;
	req = (nol_req_t *)shm_malloc(size);
	if(req == NULL) {
		SHM_MEM_ERROR;
		return NULL;
	}
	memset(req, 0, sizeof(*req));
	p = (char *)(req + 1);
	req->route = route;
	req->fail = fail;
	if(cbname && cbname->len > 0) {
		req->cbname.s = p;
		req->cbname.len = cbname->len;
		memcpy(p, cbname->s, cbname->len);
		p[cbname->len] = '\0';
		p += cbname->len + 1;
	}
	if(fail == NULL) {
		req->number = req_put(&p, &f.number);
		req->verstat = req_put(&p, &f.verstat);
		req->attestation = req_put(&p, &f.attestation);
		req->to = req_put(&p, &f.to);
		if(req->number == NULL)
			req->fail = "invalid_number";
	}
	return req;
}

/* The hand-over failed (no shared memory, the pipe full): the worker decides itself, failed
 * open at once, and runs the resume route (or KEMI callback) now, so that the call still gets
 * exactly one decision. */
static int decide_here(sip_msg_t *msg, int route, const str *cbname, const char *reason)
{
	sr_kemi_eng_t *keng;
	str evname = str_init("nol:decided");
	last_fail_open(msg, reason);
	count_decision();
	keng = sr_kemi_eng_get();
	if(keng != NULL && cbname && cbname->len > 0) {
		if(sr_kemi_route(keng, msg, REQUEST_ROUTE, (str *)cbname, &evname) < 0)
			LM_ERR("nol: error running the callback %.*s\n", cbname->len, cbname->s);
	} else if(route >= 0 && main_rt.rlist[route] != NULL) {
		run_top_route(main_rt.rlist[route], msg, 0);
	}
	return 0;
}

/* Suspends the INVITE's transaction and hands the call to the nol process. Returns 0: the
 * script stops here (the resume route carries on); -1 when it cannot be used (no tm, an
 * unknown route). */
static int nol_lookup_async_helper(sip_msg_t *msg, int route, const str *cbname)
{
	tm_cell_t *t;
	nol_req_t *req;
	unsigned int tindex = 0, tlabel = 0;
	int r;
	ssize_t w;

	if(msg == NULL)
		return -1;
	if(!nol_tm_loaded) {
		LM_ERR("nol: nol_lookup_async() needs the tm module (loadmodule \"tm.so\")\n");
		return -1;
	}
	t = tmb.t_gett();
	if(t == NULL || t == T_UNDEFINED) {
		r = tmb.t_newtran(msg);
		if(r == 0)
			return 0; /* a retransmission (or an ACK): tm absorbed it */
		if(r < 0) {
			LM_ERR("nol: cannot create the transaction (%d)\n", r);
			return -1;
		}
	}
	req = req_new(msg, route, cbname);
	if(req == NULL)
		return decide_here(msg, route, cbname, "internal");
	r = tmb.t_suspend(msg, &tindex, &tlabel);
	if(r != 0) {
		/* 1: the transaction was canceled; <0: a final reply went out already or tm failed */
		shm_free(req);
		if(r > 0)
			return 0;
		LM_ERR("nol: cannot suspend the transaction (%d)\n", r);
		return -1;
	}
	req->tindex = tindex;
	req->tlabel = tlabel;
	do {
		w = write(nol_pipe[1], &req, sizeof(req));
	} while(w < 0 && errno == EINTR);
	if(w != (ssize_t)sizeof(req)) {
		LM_WARN("nol: the nol process is not taking requests (%s): failing open\n",
				w < 0 ? strerror(errno) : "short write");
		shm_free(req);
		if(tmb.t_cancel_suspend && tmb.t_cancel_suspend(tindex, tlabel) < 0)
			LM_ERR("nol: cannot cancel the suspension [%u:%u]\n", tindex, tlabel);
		return decide_here(msg, route, cbname, "busy");
	}
	return 0;
}

static int fixup_lookup_async(void **param, int param_no)
{
	if(param_no != 1)
		return 0;
	if(!nol_tm_loaded) {
		LM_ERR("nol: nol_lookup_async() needs the tm module (loadmodule \"tm.so\" before "
			   "nol)\n");
		return -1;
	}
	return fixup_spve_null(param, param_no);
}

static int w_nol_lookup_async(struct sip_msg *msg, char *p1, char *p2)
{
	str name = STR_NULL;
	char buf[128];
	int route;
	if(fixup_get_svalue(msg, (gparam_t *)p1, &name) < 0 || name.len <= 0
			|| name.len >= (int)sizeof(buf)) {
		LM_ERR("nol: nol_lookup_async() needs the name of a route\n");
		return -1;
	}
	memcpy(buf, name.s, name.len);
	buf[name.len] = '\0';
	route = route_lookup(&main_rt, buf);
	if(route < 0 || main_rt.rlist[route] == NULL) {
		LM_ERR("nol: no route[%s] to resume in\n", buf);
		return -1;
	}
	return nol_lookup_async_helper(msg, route, NULL);
}

static int ki_nol_lookup_async(sip_msg_t *msg, str *cbname)
{
	if(cbname == NULL || cbname->s == NULL || cbname->len <= 0) {
		LM_ERR("nol: KSR.nol.lookup_async() needs the name of a callback\n");
		return -1;
	}
	return nol_lookup_async_helper(msg, -1, cbname);
}

/* ---- nol_strip_inbound() ------------------------------------------------------------------ */

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

/* ---- the nol process ---------------------------------------------------------------------- */

/* Makes the decision the current one, resumes its transaction (the resume route runs here),
 * and frees the request. */
static void resume(nol_req_t *req)
{
	sr_kemi_eng_t *keng = sr_kemi_eng_get();
	nol_last.resuming = 1;
	nol_last.tindex = req->tindex;
	nol_last.tlabel = req->tlabel;
	count_decision();
	if(keng != NULL && req->cbname.len > 0) {
		if(tmb.t_continue_cb(req->tindex, req->tlabel, &req->cbname, NULL) < 0)
			LM_WARN("nol: transaction [%u:%u] not resumed (gone)\n", req->tindex,
					req->tlabel);
	} else if(req->route >= 0 && main_rt.rlist[req->route] != NULL) {
		if(tmb.t_continue(req->tindex, req->tlabel, main_rt.rlist[req->route]) < 0)
			LM_WARN("nol: transaction [%u:%u] not resumed (gone)\n", req->tindex,
					req->tlabel);
	}
	last_reset();
	shm_free(req);
}

static void resume_fail_open(nol_req_t *req, const char *reason)
{
	last_fail_open(NULL, reason);
	resume(req);
}

/* A request from a SIP worker: start its lookup (its decision comes through the event fd), or
 * resume it at once, failed open, when there is nothing to ask. */
static void start_lookup(nol_req_t *req)
{
	nol_call call;
	nol_status st;
	if(req->fail) {
		resume_fail_open(req, req->fail);
		return;
	}
	if(nol_cli == NULL) {
		resume_fail_open(req, "not_configured");
		return;
	}
	memset(&call, 0, sizeof(call));
	call.number = req->number;
	call.context = "inbound_voice";
	call.to = req->to;
	call.verstat = req->verstat;
	call.attestation = req->attestation;
	st = nol_lookup_start(nol_cli, &call, (uint64_t)(uintptr_t)req);
	if(st != NOL_STATUS_OK) {
		LM_WARN("nol: lookup error %s: failing open\n", nol_status_str(st));
		resume_fail_open(req, "internal");
	}
}

static void drain_requests(void)
{
	nol_req_t *reqs[64];
	ssize_t n;
	size_t i;
	for(;;) {
		n = read(nol_pipe[0], reqs, sizeof(reqs));
		if(n < 0 && errno == EINTR)
			continue;
		if(n <= 0)
			return;
		/* a whole number of pointers: each was written whole (8 bytes, atomic) */
		for(i = 0; i < (size_t)n / sizeof(reqs[0]); i++)
			start_lookup(reqs[i]);
		if((size_t)n < sizeof(reqs))
			return;
	}
}

static void drain_decisions(void)
{
	uint64_t user_data;
	nol_result *res;
	nol_status st;
	nol_req_t *req;
	for(;;) {
		res = NULL;
		user_data = 0;
		st = nol_client_next(nol_cli, &user_data, &res);
		if(st == NOL_STATUS_WOULD_BLOCK)
			return;
		req = (nol_req_t *)(uintptr_t)user_data;
		if(st != NOL_STATUS_OK || res == NULL) {
			LM_ERR("nol: next decision: %s\n", nol_error_text(st));
			if(res)
				nol_result_free(res);
			if(req == NULL)
				return;
			resume_fail_open(req, "internal");
			continue;
		}
		last_from_result(res);
		nol_result_free(res);
		resume(req);
	}
}

static void nol_process_main(void)
{
	struct pollfd fds[2];
	int efd = -1, nfds = 1, r;

	close(nol_pipe[1]);
	nol_pipe[1] = -1;
	nol_cli_tried = 1;
	if(make_client_sized(&nol_cli, NOL_PROCESS_MAX_IN_FLIGHT) < 0) {
		nol_cli = NULL; /* every call fails open (not_configured) */
	} else if(nol_client_event_fd(nol_cli, &efd) != NOL_STATUS_OK || efd < 0) {
		LM_ERR("nol: no event fd from libnol: failing open on every call\n");
		nol_client_free(nol_cli);
		nol_cli = NULL;
	}
	LM_INFO("nol: the nol process holds the instance's client (%s)\n",
			nol_cli ? "ready" : "none: failing open");
	fds[0].fd = nol_pipe[0];
	fds[0].events = POLLIN;
	if(nol_cli) {
		fds[1].fd = efd;
		fds[1].events = POLLIN;
		nfds = 2;
	}
	for(;;) {
		fds[0].revents = fds[1].revents = 0;
		r = poll(fds, nfds, -1);
		if(r < 0) {
			if(errno == EINTR)
				continue;
			LM_ERR("nol: poll: %s\n", strerror(errno));
			ksr_exit(-1);
		}
		cfg_update();
		if(nfds == 2 && fds[1].revents)
			drain_decisions();
		if(fds[0].revents)
			drain_requests();
	}
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

/* Whether the current decision belongs to msg: in the nol process, while its transaction is
 * resumed (msg is then tm's copy of the INVITE); else, the message nol_lookup() ran for. */
static int decision_is_for(struct sip_msg *msg)
{
	tm_cell_t *t;
	if(nol_last.resuming) {
		if(!nol_tm_loaded)
			return 0;
		t = tmb.t_gett();
		return t != NULL && t != T_UNDEFINED && t->hash_index == nol_last.tindex
			   && t->label == nol_last.tlabel;
	}
	return nol_last.msg_id == msg->id && nol_last.msg_pid == msg->pid;
}

static int pv_get_nol(struct sip_msg *msg, pv_param_t *param, pv_value_t *res)
{
	int k;
	if(msg == NULL || param == NULL)
		return -1;
	k = param->pvn.u.isname.name.n;
	if(k < 0 || k >= NK_COUNT)
		return pv_get_null(msg, param, res);
	if(!nol_last.valid || !decision_is_for(msg))
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
	{"nol_lookup_async", (cmd_function)w_nol_lookup_async, 1, fixup_lookup_async,
		fixup_free_spve_null, REQUEST_ROUTE},
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
	{ str_init("nol"), str_init("lookup_async"),
		SR_KEMIP_INT, ki_nol_lookup_async,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
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
