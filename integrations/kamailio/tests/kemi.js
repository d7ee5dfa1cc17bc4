// Test only: the redirect server of integrations/kamailio/kamailio.cfg through KEMI.
function ksr_request_route() {
	if (KSR.is_method("OPTIONS")) {
		KSR.sl.sl_send_reply(200, "OK");
		return;
	}
	if (KSR.is_method("ACK")) {
		return;
	}
	KSR.nol.strip_inbound();
	var rc = KSR.nol.lookup();
	KSR.hdr.append_to_reply(KSR.pv.get("$nol(headers)"));
	KSR.hdr.append_to_reply("X-Kemi-Lookup: " + rc + " " + KSR.pv.get("$nol(outcome)") + "\r\n");
	KSR.hdr.append_to_reply("X-Kemi-Display: " + KSR.pv.get("$nol(display_line)") + "\r\n");
	var name = KSR.pv.get("$nol(display_name)");
	if (name !== null) {
		KSR.hdr.append_to_reply("X-NumbersOnline-Name: \"" + name + "\"\r\n");
	}
	var code = KSR.pv.get("$nol(code)");
	if (code == 302) {
		KSR.pv.sets("$ru", KSR.pv.get("$nol(contact)"));
		KSR.sl.sl_send_reply(302, "Moved Temporarily");
		return;
	}
	KSR.sl.sl_send_reply(code, KSR.pv.get("$nol(reason)"));
}
