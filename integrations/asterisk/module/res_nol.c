/*
 * res_nol: numbers.online caller intelligence for Asterisk, on libnol's C ABI.
 *
 * Dialplan:
 *   NolLookup([number[,verstat[,attestation[,to]]]])      application
 *   ${NOL_LOOKUP([number[,verstat[,attestation[,to]]]])}  function: the action, same variables
 * Each looks up the caller (default: CALLERID(num)) and sets the channel variables libnol's
 * Decision::asterisk_variables() names: NOL_ACTION, NOL_RISK, NOL_LABEL, NOL_RECEIPT,
 * NOL_VERIFIED, NOL_FAIL_OPEN, NOL_SIP_CODE, NOL_SIP_CONTACT; and CALLERID(name) only when
 * nol.conf says `callerid_name = yes` and libnol gives a name. verstat, attestation and the
 * receiver's number default to the channel variables NOL_VERSTAT, NOL_ATTESTATION, NOL_TO.
 *
 * The lookup runs on the channel's own dialplan thread and blocks it for at most the budget
 * (budget_ms, 400 ms by default): libnol fails open within it. Nothing else ever waits.
 *
 * One libnol client per Asterisk process, held in an ao2 global: a lookup takes a reference,
 * `module reload` swaps in a client made from the re-read nol.conf (lookups in progress finish
 * on the old one), unload drops it.
 *
 * nol.conf, [general]: every libnol setting by its name (api_key, base_url, budget_ms, ...),
 * handed to nol_config_set unchecked here: every range lives once, in nol-core. Two names are
 * the module's own: `callerid_name` (yes/no) and `public_key_file` (a PEM file, passed on as
 * public_key_pem). What nol.conf leaves unset comes from the environment
 * (NUMBERS_ONLINE_API_KEY, NOL_BASE_URL, NOL_PUBLIC_KEY).
 *
 * CLI: `nol show stats`, `nol lookup NUMBER [VERSTAT [ATTESTATION]]`.
 */

#include "asterisk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asterisk/module.h"
#include "asterisk/pbx.h"
#include "asterisk/channel.h"
#include "asterisk/config.h"
#include "asterisk/cli.h"
#include "asterisk/app.h"
#include "asterisk/logger.h"
#include "asterisk/astobj2.h"
#include "asterisk/utils.h"
#include "asterisk/strings.h"

#include <nol.h>

#define CONFIG_FILE "nol.conf"
#define FALLBACK_ACTION "allow_with_default_policy"

static const char app_name[] = "NolLookup";

/* What a lookup needs: the client and the module's own options. Immutable once published. */
struct nol_holder {
	nol_client *client; /* NULL: nol.conf unusable; lookups fail open as not_configured */
	int set_callerid_name;
	char error[256];    /* why there is no client */
};

static AO2_GLOBAL_OBJ_STATIC(nol_global);

static void holder_destroy(void *obj)
{
	struct nol_holder *h = obj;
	/* Never waits for a request out on a hanging service. */
	nol_client_free(h->client);
}

static int is_true(const char *v)
{
	return ast_true(v);
}

/* Reads a whole file (the PEM). NULL on failure. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (!f) {
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < 1024 * 1024 && fseek(f, 0, SEEK_SET) == 0) {
		buf = ast_malloc(n + 1);
		if (buf && fread(buf, 1, n, f) != (size_t) n) {
			ast_free(buf);
			buf = NULL;
		} else if (buf) {
			buf[n] = '\0';
		}
	}
	fclose(f);
	return buf;
}

/* Makes a holder from nol.conf. Returns NULL only when unchanged (reload) or out of memory;
 * a holder without a client when the configuration is unusable (its error says why). */
static struct nol_holder *holder_from_config(int reload, int *unchanged)
{
	struct ast_flags flags = { reload ? CONFIG_FLAG_FILEUNCHANGED : 0 };
	struct ast_config *cfg;
	struct ast_variable *v;
	struct nol_holder *h;
	nol_config *config = NULL;
	nol_status st;

	*unchanged = 0;
	cfg = ast_config_load(CONFIG_FILE, flags);
	if (cfg == CONFIG_STATUS_FILEUNCHANGED) {
		*unchanged = 1;
		return NULL;
	}
	h = ao2_alloc_options(sizeof(*h), holder_destroy, AO2_ALLOC_OPT_LOCK_NOLOCK);
	if (!h) {
		if (cfg && cfg != CONFIG_STATUS_FILEINVALID) {
			ast_config_destroy(cfg);
		}
		return NULL;
	}
	if (cfg == CONFIG_STATUS_FILEINVALID) {
		snprintf(h->error, sizeof(h->error), "%s is not a valid configuration file", CONFIG_FILE);
		return h;
	}
	if (!cfg) {
		ast_log(LOG_NOTICE, "%s not found: libnol takes its settings from the environment\n", CONFIG_FILE);
	}
	st = nol_config_new(&config);
	for (v = cfg ? ast_variable_browse(cfg, "general") : NULL; !st && v; v = v->next) {
		if (!strcasecmp(v->name, "callerid_name")) {
			h->set_callerid_name = is_true(v->value);
		} else if (!strcasecmp(v->name, "public_key_file")) {
			char *pem = read_file(v->value);
			if (!pem) {
				snprintf(h->error, sizeof(h->error), "%s: public_key_file %s: cannot read it",
					CONFIG_FILE, v->value);
				st = NOL_STATUS_INVALID_ARGUMENT;
				break;
			}
			st = nol_config_set(config, "public_key_pem", pem);
			ast_free(pem);
			if (st) {
				snprintf(h->error, sizeof(h->error), "%s: public_key_file %s: %s", CONFIG_FILE,
					v->value, nol_last_error());
			}
		} else {
			/* Every other name and value goes to libnol as written: it checks them. */
			st = nol_config_set(config, v->name, v->value);
			if (st) {
				snprintf(h->error, sizeof(h->error), "%s line %d: %s: %s", CONFIG_FILE, v->lineno,
					nol_status_str(st), nol_last_error());
			}
		}
	}
	if (cfg) {
		ast_config_destroy(cfg);
	}
	if (!st) {
		st = nol_client_new(config, &h->client);
		if (st) {
			snprintf(h->error, sizeof(h->error), "libnol client: %s: %s", nol_status_str(st), nol_last_error());
			h->client = NULL;
		}
	} else if (!h->error[0]) {
		snprintf(h->error, sizeof(h->error), "libnol: %s", nol_status_str(st));
	}
	nol_config_free(config);
	return h;
}

/* Loads nol.conf and publishes its client. On reload, an unusable file keeps the old client. */
static int apply_config(int reload)
{
	int unchanged;
	struct nol_holder *h = holder_from_config(reload, &unchanged);
	if (unchanged) {
		ast_verb(2, "res_nol: %s unchanged\n", CONFIG_FILE);
		return 0;
	}
	if (!h) {
		return -1;
	}
	if (!h->client) {
		struct nol_holder *old = ao2_global_obj_ref(nol_global);
		ast_log(LOG_ERROR, "res_nol: %s\n", h->error);
		if (reload && old && old->client) {
			ast_log(LOG_ERROR, "res_nol: keeping the configuration loaded before\n");
			ao2_ref(old, -1);
			ao2_ref(h, -1);
			return -1;
		}
		ao2_cleanup(old);
		ast_log(LOG_ERROR, "res_nol: lookups fail open (not_configured) until %s is fixed and reloaded\n",
			CONFIG_FILE);
	} else {
		ast_verb(2, "res_nol: libnol %s client ready (%s, caller name %s)\n", nol_version(),
			reload ? "reloaded" : "loaded", h->set_callerid_name ? "set" : "left alone");
	}
	ao2_global_obj_replace_unref(nol_global, h);
	ao2_ref(h, -1);
	return 0;
}

/* The variables, as nol-core's Decision::asterisk_variables() names and writes them. */
#define NOL_VARS 8
struct nol_vars {
	char *name[NOL_VARS];
	char *value[NOL_VARS];
	size_t n;
	char *caller_name; /* for CALLERID(name), or NULL */
};

static void vars_free(struct nol_vars *vars)
{
	size_t i;
	for (i = 0; i < vars->n; i++) {
		ast_free(vars->name[i]);
		ast_free(vars->value[i]);
	}
	ast_free(vars->caller_name);
	memset(vars, 0, sizeof(*vars));
}

static void vars_push(struct nol_vars *vars, const char *name, const char *value)
{
	if (vars->n < NOL_VARS) {
		vars->name[vars->n] = ast_strdup(name);
		vars->value[vars->n] = ast_strdup(value ? value : "");
		vars->n++;
	}
}

/* Without a decision: what nol-core's fail-open decision gives for the first two names. */
static void vars_failed_open(struct nol_vars *vars, const char *reason)
{
	vars_push(vars, "NOL_ACTION", FALLBACK_ACTION);
	vars_push(vars, "NOL_RISK", "");
	vars_push(vars, "NOL_LABEL", "");
	vars_push(vars, "NOL_RECEIPT", "");
	vars_push(vars, "NOL_VERIFIED", "0");
	vars_push(vars, "NOL_FAIL_OPEN", reason);
	vars_push(vars, "NOL_SIP_CODE", "");
	vars_push(vars, "NOL_SIP_CONTACT", "");
}

static void vars_from_result(struct nol_vars *vars, const nol_result *r)
{
	size_t i, count = 0;

	/* every name and value as nol-core renders them (Decision::asterisk_variables) */
	nol_result_asterisk_variable_count(r, &count);
	for (i = 0; i < count; i++) {
		char *name = NULL, *value = NULL;
		if (nol_result_asterisk_variable(r, i, &name, &value) == NOL_STATUS_OK) {
			vars_push(vars, name, value);
			nol_string_free(name);
			nol_string_free(value);
		}
	}
}

static const char *vars_get(const struct nol_vars *vars, const char *name)
{
	size_t i;
	for (i = 0; i < vars->n; i++) {
		if (vars->name[i] && !strcmp(vars->name[i], name)) {
			return vars->value[i];
		}
	}
	return "";
}

/* The lookup itself: never fails, blocks at most the client's budget. The result, when there
 * is one, is handed back for the CLI (free it with nol_result_free). */
static void lookup(const char *number, const char *verstat, const char *attestation, const char *to,
	struct nol_vars *vars, int *set_callerid_name, nol_result **out)
{
	struct nol_holder *h = ao2_global_obj_ref(nol_global);
	nol_result *r = NULL;
	nol_call call;

	memset(vars, 0, sizeof(*vars));
	*set_callerid_name = h ? h->set_callerid_name : 0;
	if (!h || !h->client) {
		vars_failed_open(vars, "not_configured");
		ao2_cleanup(h);
		return;
	}
	memset(&call, 0, sizeof(call));
	call.number = number ? number : "";
	call.verstat = !ast_strlen_zero(verstat) ? verstat : NULL;
	call.attestation = !ast_strlen_zero(attestation) ? attestation : NULL;
	call.to = !ast_strlen_zero(to) ? to : NULL;
	if (nol_lookup(h->client, &call, &r) != NOL_STATUS_OK) {
		ast_log(LOG_WARNING, "res_nol: lookup: %s\n", nol_last_error());
		vars_failed_open(vars, "not_configured");
	} else {
		char *name = NULL;
		vars_from_result(vars, r);
		if (nol_result_caller_name(r, &name) == NOL_STATUS_OK && name) {
			vars->caller_name = ast_strdup(name);
		}
		nol_string_free(name);
	}
	ao2_ref(h, -1);
	if (out) {
		*out = r;
	} else {
		nol_result_free(r);
	}
}

/* Reads a channel variable into a heap copy (the channel must be locked). */
static char *chan_var(struct ast_channel *chan, const char *name)
{
	const char *v = pbx_builtin_getvar_helper(chan, name);
	return ast_strlen_zero(v) ? NULL : ast_strdup(v);
}

/* The dialplan's lookup: arguments, else the channel's caller and variables. Sets the
 * variables (and CALLERID(name) on opt-in); copies NOL_ACTION into action (may be NULL). */
static void channel_lookup(struct ast_channel *chan, const char *data, char *action, size_t len)
{
	char *parse = ast_strdupa(S_OR(data, ""));
	char *number = NULL, *verstat = NULL, *attestation = NULL, *to = NULL;
	struct nol_vars vars;
	int set_name = 0;
	size_t i;
	AST_DECLARE_APP_ARGS(args,
		AST_APP_ARG(number);
		AST_APP_ARG(verstat);
		AST_APP_ARG(attestation);
		AST_APP_ARG(to);
	);

	AST_STANDARD_APP_ARGS(args, parse);
	number = !ast_strlen_zero(args.number) ? ast_strdup(args.number) : NULL;
	verstat = !ast_strlen_zero(args.verstat) ? ast_strdup(args.verstat) : NULL;
	attestation = !ast_strlen_zero(args.attestation) ? ast_strdup(args.attestation) : NULL;
	to = !ast_strlen_zero(args.to) ? ast_strdup(args.to) : NULL;
	if (chan) {
		ast_channel_lock(chan);
		if (!number) {
			struct ast_party_caller *caller = ast_channel_caller(chan);
			if (caller->id.number.valid && !ast_strlen_zero(caller->id.number.str)) {
				number = ast_strdup(caller->id.number.str);
			}
		}
		if (!verstat) {
			verstat = chan_var(chan, "NOL_VERSTAT");
		}
		if (!attestation) {
			attestation = chan_var(chan, "NOL_ATTESTATION");
		}
		if (!to) {
			to = chan_var(chan, "NOL_TO");
		}
		ast_channel_unlock(chan);
	}

	/* Outside the channel lock: this may take up to the budget. */
	lookup(number ? number : "", verstat, attestation, to, &vars, &set_name, NULL);

	if (chan) {
		for (i = 0; i < vars.n; i++) {
			pbx_builtin_setvar_helper(chan, vars.name[i], vars.value[i]);
		}
		if (set_name && !ast_strlen_zero(vars.caller_name)) {
			ast_set_callerid(chan, NULL, vars.caller_name, NULL);
		}
		ast_verb(3, "res_nol: %s %s: %s risk=%s verified=%s fail_open=%s\n", ast_channel_name(chan),
			S_OR(number, "(none)"), vars_get(&vars, "NOL_ACTION"), vars_get(&vars, "NOL_RISK"),
			vars_get(&vars, "NOL_VERIFIED"), S_OR(vars_get(&vars, "NOL_FAIL_OPEN"), "-"));
	}
	if (action) {
		ast_copy_string(action, vars.n ? vars_get(&vars, "NOL_ACTION") : FALLBACK_ACTION, len);
	}
	vars_free(&vars);
	ast_free(number);
	ast_free(verstat);
	ast_free(attestation);
	ast_free(to);
}

static int nol_app_exec(struct ast_channel *chan, const char *data)
{
	channel_lookup(chan, data, NULL, 0);
	return 0; /* never hangs up the call */
}

static int nol_func_read(struct ast_channel *chan, const char *cmd, char *data, char *buf, size_t len)
{
	channel_lookup(chan, data, buf, len);
	return 0;
}

static struct ast_custom_function nol_function = {
	.name = "NOL_LOOKUP",
	.read = nol_func_read,
};

static char *cli_show_stats(struct ast_cli_entry *e, int cmd, struct ast_cli_args *a)
{
	static const char *reasons[] = { "timeout", "connect", "tls", "http_status", "rate_limited",
		"body_too_large", "unparseable", "unsigned", "bad_signature", "unusable", "circuit_open",
		"busy", "invalid_number", "anonymous", "not_configured" };
	struct nol_holder *h;
	nol_stats s;
	size_t i;

	switch (cmd) {
	case CLI_INIT:
		e->command = "nol show stats";
		e->usage = "Usage: nol show stats\n"
			"       libnol's counters and latency since the module was loaded or reloaded.\n";
		return NULL;
	case CLI_GENERATE:
		return NULL;
	}
	if (a->argc != 3) {
		return CLI_SHOWUSAGE;
	}
	h = ao2_global_obj_ref(nol_global);
	ast_cli(a->fd, "libnol %s\n", nol_version());
	if (!h || !h->client) {
		ast_cli(a->fd, "no client: %s (lookups fail open as not_configured)\n", h ? h->error : "module not loaded");
		ao2_cleanup(h);
		return CLI_SUCCESS;
	}
	ast_cli(a->fd, "caller name:    %s\n", h->set_callerid_name ? "set on a name (callerid_name = yes)" : "left alone");
	memset(&s, 0, sizeof(s));
	if (nol_client_stats(h->client, &s) == NOL_STATUS_OK) {
		ast_cli(a->fd, "lookups:        %" PRIu64 "\n", s.lookups);
		ast_cli(a->fd, "verified:       %" PRIu64 "\n", s.verified);
		ast_cli(a->fd, "cache hits:     %" PRIu64 "\n", s.cache_hits);
		ast_cli(a->fd, "shared flights: %" PRIu64 "\n", s.shared_flights);
		ast_cli(a->fd, "fail open:      %" PRIu64 "\n", s.fail_open);
		for (i = 0; i < ARRAY_LEN(reasons); i++) {
			uint64_t n = 0;
			if (nol_client_fail_open_count(h->client, reasons[i], &n) == NOL_STATUS_OK && n) {
				ast_cli(a->fd, "  %-14s %" PRIu64 "\n", reasons[i], n);
			}
		}
		ast_cli(a->fd, "latency (us):   p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %" PRIu64 "  max %" PRIu64 "\n",
			s.latency_p50_us, s.latency_p90_us, s.latency_p99_us, s.latency_max_us);
		ast_cli(a->fd, "workers:        %u busy of %u\n", s.workers_busy, s.workers);
		ast_cli(a->fd, "breaker:        %s\n", s.circuit_open ? "open" : "closed");
	}
	ao2_ref(h, -1);
	return CLI_SUCCESS;
}

static char *cli_lookup(struct ast_cli_entry *e, int cmd, struct ast_cli_args *a)
{
	struct nol_vars vars;
	nol_result *r = NULL;
	int set_name;
	size_t i;

	switch (cmd) {
	case CLI_INIT:
		e->command = "nol lookup";
		e->usage = "Usage: nol lookup NUMBER [VERSTAT [ATTESTATION]]\n"
			"       Looks a caller up as the dialplan would and prints the decision and its\n"
			"       channel variables (no channel is touched).\n";
		return NULL;
	case CLI_GENERATE:
		return NULL;
	}
	if (a->argc < 3 || a->argc > 5) {
		return CLI_SHOWUSAGE;
	}
	lookup(a->argv[2], a->argc > 3 ? a->argv[3] : NULL, a->argc > 4 ? a->argv[4] : NULL, NULL,
		&vars, &set_name, &r);
	if (r) {
		char *line = NULL;
		const char *json = NULL;
		if (nol_result_display_line(r, &line) == NOL_STATUS_OK) {
			ast_cli(a->fd, "%s\n", line);
			nol_string_free(line);
		}
		for (i = 0; i < vars.n; i++) {
			ast_cli(a->fd, "%s=%s\n", vars.name[i], vars.value[i]);
		}
		if (nol_result_json(r, &json) == NOL_STATUS_OK) {
			ast_cli(a->fd, "%s\n", json);
		}
		nol_result_free(r);
	} else {
		for (i = 0; i < vars.n; i++) {
			ast_cli(a->fd, "%s=%s\n", vars.name[i], vars.value[i]);
		}
	}
	vars_free(&vars);
	return CLI_SUCCESS;
}

static struct ast_cli_entry nol_cli[] = {
	AST_CLI_DEFINE(cli_show_stats, "Show libnol's counters and latency"),
	AST_CLI_DEFINE(cli_lookup, "Look a caller up through libnol"),
};

static int unload_module(void)
{
	int res = 0;
	ast_cli_unregister_multiple(nol_cli, ARRAY_LEN(nol_cli));
	res |= ast_custom_function_unregister(&nol_function);
	res |= ast_unregister_application(app_name);
	ao2_global_obj_release(nol_global);
	return res;
}

static int load_module(void)
{
	/* A bad nol.conf never keeps the module out: NolLookup() must exist so that calls go on
	 * (failing open as not_configured), not hang up on an unknown application. */
	apply_config(0);
	if (ast_register_application_xml(app_name, nol_app_exec)
		|| ast_custom_function_register(&nol_function)
		|| ast_cli_register_multiple(nol_cli, ARRAY_LEN(nol_cli))) {
		unload_module();
		return AST_MODULE_LOAD_DECLINE;
	}
	return AST_MODULE_LOAD_SUCCESS;
}

static int reload_module(void)
{
	return apply_config(1) ? -1 : 0;
}

AST_MODULE_INFO(ASTERISK_GPL_KEY, AST_MODFLAG_LOAD_ORDER, "numbers.online caller intelligence (libnol)",
	.support_level = AST_MODULE_SUPPORT_EXTENDED,
	.load = load_module,
	.unload = unload_module,
	.reload = reload_module,
	.load_pri = AST_MODPRI_DEFAULT,
);
