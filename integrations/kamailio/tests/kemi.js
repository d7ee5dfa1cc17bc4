// Test only: the redirect server of integrations/kamailio/kamailio.cfg through KEMI.
function ksr_request_route() {
	if (KSR.is_method("OPTIONS")) {
		KSR.sl.sl_send_reply(200, "OK");
		return;
	}
	if (KSR.is_method("ACK")) {
		KSR.tm.t_check_trans();
		return;
	}
	KSR.nol.strip_inbound();
	if (KSR.hdr.is_present("X-Kemi-Blocking") > 0) {
		// the blocking form: this worker waits for the decision, then replies statelessly
		var rc = KSR.nol.lookup();
		answer(rc, false);
		return;
	}
	// the non-blocking form: creates the transaction (a retransmission stops here), suspends
	// it and returns; nol_decided() runs with the decision, in the nol process
	KSR.nol.lookup_async("nol_decided");
}

function nol_decided() {
	answer(KSR.pv.get("$nol(failed_open)") == 1 ? 2 : 1, true);
}

function answer(rc, stateful) {
	KSR.hdr.append_to_reply(KSR.pv.get("$nol(headers)"));
	KSR.hdr.append_to_reply("X-Kemi-Lookup: " + rc + " " + KSR.pv.get("$nol(outcome)") + "\r\n");
	KSR.hdr.append_to_reply("X-Kemi-Display: " + KSR.pv.get("$nol(display_line)") + "\r\n");
	var name = KSR.pv.get("$nol(display_name)");
	if (name !== null) {
		KSR.hdr.append_to_reply("X-NumbersOnline-Name: \"" + name + "\"\r\n");
	}
	var code = KSR.pv.get("$nol(code)");
	var reason = KSR.pv.get("$nol(reason)");
	if (code == 302) {
		KSR.pv.sets("$ru", KSR.pv.get("$nol(contact)"));
		reason = "Moved Temporarily";
	}
	if (stateful) {
		KSR.tm.t_reply(code, reason);
	} else {
		KSR.sl.sl_send_reply(code, reason);
	}
}
