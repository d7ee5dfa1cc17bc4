#!/bin/sh
# An OpenSIPS cfg preprocessor (opensips -p): reads the cfg on stdin and replaces every
# ${NOL_NAME} or ${NOL_NAME:-default} with the environment variable NOL_NAME when it is set and
# not empty, else with the default (else nothing). Only NOL_* names are replaced: the API key
# (NUMBERS_ONLINE_API_KEY) never enters the cfg; the module reads it from the environment.
# A value's " and \ (and CR, LF) are dropped, so a value cannot end a quoted string and add cfg
# of its own.
#   opensips -f integrations/opensips/opensips.cfg -p integrations/opensips/cfg-env.sh
exec awk '
{
  line = $0; out = "";
  while (match(line, /\$\{NOL_[A-Z0-9_]+(:-[^}]*)?\}/)) {
    tok = substr(line, RSTART + 2, RLENGTH - 3);
    name = tok; def = "";
    i = index(tok, ":-");
    if (i > 0) { name = substr(tok, 1, i - 1); def = substr(tok, i + 2); }
    val = (name in ENVIRON && ENVIRON[name] != "") ? ENVIRON[name] : def;
    gsub(/[\\"\r\n]/, "", val);
    out = out substr(line, 1, RSTART - 1) val;
    line = substr(line, RSTART + RLENGTH);
  }
  print out line;
}'
