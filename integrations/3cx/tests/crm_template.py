"""Runs the 3CX CRM template's REST scenario as far as the template says: fill [ServerUrl],
[ApiKey] and [Number] in the request URL, GET it, apply the rule (the `name` path present)
and the variables' paths, and print the CompanyName output (empty on no match).

usage: crm_template.py TEMPLATE SERVER_URL TOKEN NUMBER
"""
import json
import sys
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

template, server, token, number = sys.argv[1:5]
root = ET.parse(template).getroot()
scenario = root.find("Scenarios/Scenario")
request = scenario.find("Request")
assert request.get("RequestType") == "Get" and request.get("ResponseType") == "Json"
url = (request.get("Url")
       .replace("[ServerUrl]", server)
       .replace("[ApiKey]", urllib.parse.quote(token, safe=""))
       .replace("[Number]", urllib.parse.quote(number, safe="")))
try:
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
except Exception as e:  # 3CX: no match, the raw number shows
    print(f"[] error {type(e).__name__}")
    sys.exit(0)
rules = [r.text for r in scenario.findall("Rules/Rule")]
if not all(path in body for path in rules):
    print("[]")
    sys.exit(0)
variables = {v.get("Name"): str(body.get(v.get("Path"), ""))
             for v in scenario.findall("Variables/Variable")}
out = {}
for o in scenario.findall("Outputs/Output"):
    value = o.get("Value")
    for k, v in variables.items():
        value = value.replace(f"[{k}]", v)
    out[o.get("Type")] = value
print(f"[{out.get('CompanyName', '')}]")
