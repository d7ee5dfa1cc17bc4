-- A stand-in for FreeSWITCH's Lua API, enough to run numbers_online_cnam.lua as FreeSWITCH
-- would: `session` (getVariable/setVariable), `freeswitch.API()` with executeString
-- ("global_getvar NAME") and execute("curl", ARGS) with mod_curl's argument syntax, run by the
-- real curl through io.popen.
--
-- usage: lua5.4 freeswitch_standin.lua SCRIPT BASE_URL TOKEN CALLER [VAR=VALUE...]
-- prints every channel variable the script set, one NAME=VALUE a line.

local script, base, token, caller = arg[1], arg[2], arg[3], arg[4]
local globals = { numbers_online_url = base, numbers_online_token = token }

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local api = {}
function api:executeString(cmd)
  local name = cmd:match("^global_getvar%s+(%S+)")
  return name and globals[name] or "-ERR"
end
function api:execute(app, args)
  assert(app == "curl", "only mod_curl is stood in for")
  local words = {}
  for w in args:gmatch("%S+") do words[#words + 1] = w end
  local cmd = { "curl", "-s", "--max-time", "5" }
  local i, url = 2, words[1]
  while i <= #words do
    local w = words[i]
    if w == "content-type" then
      cmd[#cmd + 1] = "-H " .. q("Content-Type: " .. words[i + 1]); i = i + 2
    elseif w == "append_headers" then
      local name, value = words[i + 1]:match("^([^:]+):(.*)$")
      cmd[#cmd + 1] = "-H " .. q(name .. ": " .. value); i = i + 2
    elseif w == "timeout" then
      cmd[#cmd + 1] = "--max-time " .. q(words[i + 1]); i = i + 2
    elseif w == "post" then
      cmd[#cmd + 1] = "--data-binary " .. q(table.concat(words, " ", i + 1)); break
    else
      i = i + 1
    end
  end
  cmd[#cmd + 1] = q(url)
  local p = io.popen(table.concat(cmd, " "))
  local out = p:read("a")
  p:close()
  return out
end

freeswitch = { API = function() return api end }

local vars = { caller_id_number = caller, destination_number = "+12125550100" }
for i = 5, #arg do
  local k, v = arg[i]:match("^([^=]+)=(.*)$")
  vars[k] = v
end
local set = {}
session = {
  getVariable = function(_, name) return vars[name] end,
  setVariable = function(_, name, value) vars[name] = value; set[#set + 1] = name end,
}

dofile(script)
table.sort(set)
for _, name in ipairs(set) do print(name .. "=" .. tostring(vars[name])) end
