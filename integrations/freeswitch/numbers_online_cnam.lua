-- numbers.online caller name and risk for FreeSWITCH, through `nol serve` (conf/scripts/).
--
-- In the inbound dialplan, early:
--   <action application="lua" data="numbers_online_cnam.lua"/>
-- then route on ${nol_action} / ${nol_risk}. Set in vars.xml (never hardcoded here):
--   <X-PRE-PROCESS cmd="set" data="numbers_online_token=YOUR_LOCAL_NOL_SERVE_TOKEN"/>
--   <X-PRE-PROCESS cmd="set" data="numbers_online_url=http://127.0.0.1:8088"/>
--
-- It asks nol serve's JSON lookup (POST /api/v1/inbound/lookup with a Bearer header) through
-- mod_curl, passing the STIR/SHAKEN verstat and attestation when the call has them. nol serve
-- verifies the signed answer, caches it, applies your risk tag, and fails open within its
-- budget. This script fails open too: on any error it sets nol_action to
-- allow_with_default_policy and leaves the caller name alone. It logs no token.

local api = freeswitch.API()

local function var(name)
  local v = session:getVariable(name)
  if v == nil or v == "" or v == "_undef_" then return nil end
  return v
end

local function global(name)
  local v = api:executeString("global_getvar " .. name)
  if v == nil or v == "" or v:match("^%-ERR") then return nil end
  return (v:gsub("%s+$", ""))
end

-- A JSON string with only what a phone number and a STIR value hold: no quotes, backslashes,
-- controls or spaces (mod_curl splits its arguments on spaces).
local function jstr(s)
  return '"' .. tostring(s):gsub('[%c%s"\\]', "") .. '"'
end

-- One field of nol serve's answer (the first with that name; the top-level fields come
-- first or agree with the nested decision): a string with its JSON escapes decoded, a number
-- as text, or nil for null and absent.
local function field(body, name)
  local at = body:find('"' .. name .. '":', 1, true)
  if at == nil then return nil end
  local i = at + #name + 3
  local first = body:sub(i, i)
  if first ~= '"' then
    return body:match("^%-?[%d%.]+", i)
  end
  local out, j = {}, i + 1
  while j <= #body do
    local c = body:sub(j, j)
    if c == '"' then break end
    if c == "\\" then
      local e = body:sub(j + 1, j + 1)
      if e == "u" then
        local cp = tonumber(body:sub(j + 2, j + 5), 16) or 32
        if cp < 0x20 then out[#out + 1] = " "
        elseif cp >= 0xD800 and cp <= 0xDFFF then out[#out + 1] = "?"
        else out[#out + 1] = utf8.char(cp) end
        j = j + 6
      else
        local map = { n = " ", r = " ", t = " ", b = " ", f = " " }
        out[#out + 1] = map[e] or e
        j = j + 2
      end
    else
      out[#out + 1] = c
      j = j + 1
    end
  end
  -- nol serve already sanitizes; a belt for a channel variable all the same.
  return (table.concat(out):gsub("%c", " "))
end

local function fail_open(reason)
  session:setVariable("nol_action", "allow_with_default_policy")
  session:setVariable("nol_fail_open", reason)
end

local number = var("caller_id_number")
local token = global("numbers_online_token")
local base = global("numbers_online_url") or "http://127.0.0.1:8088"
if number == nil or token == nil then
  fail_open(number == nil and "anonymous" or "not_configured")
  return
end

local body = "{" .. '"number":' .. jstr(number)
local verstat = var("sip_h_P-Asserted-Identity") or var("sip_verstat")
if verstat ~= nil then body = body .. ',"verstat":' .. jstr(verstat) end
local attestation = var("sip_h_Identity") and var("sip_h_Identity"):match("attest=([ABC])")
if attestation ~= nil then body = body .. ',"attestation":' .. jstr(attestation) end
local to = var("destination_number")
if to ~= nil then body = body .. ',"to":' .. jstr(to) end
body = body .. "}"

-- mod_curl: curl URL [content-type T] [append_headers NAME:VALUE] [timeout S] post DATA
-- (X-API-Key rather than "Authorization: Bearer": mod_curl splits arguments on spaces).
local reply = api:execute("curl", base .. "/api/v1/inbound/lookup"
  .. " content-type application/json"
  .. " append_headers X-API-Key:" .. token
  .. " timeout 2 post " .. body)

if reply == nil or reply == "" or not reply:match('"recommended_action"') then
  fail_open("unavailable")
  return
end

local action = field(reply, "recommended_action") or "allow_with_default_policy"
local name = field(reply, "caller_name")
session:setVariable("nol_action", action)
session:setVariable("nol_risk", field(reply, "risk_score") or "")
session:setVariable("nol_receipt", field(reply, "receipt_id") or "")
session:setVariable("nol_fail_open", field(reply, "fail_open") or "")
if name ~= nil and name ~= "" then
  -- Shown only on a verified hit; otherwise the raw number stays. Nothing invented.
  session:setVariable("effective_caller_id_name", name)
end
