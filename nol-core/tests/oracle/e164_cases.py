"""Generate E.164 normalization expectations from Google's libphonenumber (Python port).

For every region's (and every non-geographic entity's) example numbers, of every number type,
this writes each number in the ways switches and people write it, and what libphonenumber makes
of it: `phonenumbers.parse(input, region)`, then the E.164 text when
`is_possible_number_with_reason` is IS_POSSIBLE, else null. One JSON object per line on stdout:
{"input": ..., "region": ... | null, "expect": "+..." | null, "valid": bool}.

SIP URIs are not libphonenumber's business: their user part is what the oracle is given.
"""
import json
import sys

import phonenumbers as pn
from phonenumbers import PhoneNumberFormat as F
from phonenumbers import PhoneNumberType as T

TYPES = [T.FIXED_LINE, T.MOBILE, T.TOLL_FREE, T.PREMIUM_RATE, T.SHARED_COST, T.VOIP,
         T.PERSONAL_NUMBER, T.PAGER, T.UAN, T.VOICEMAIL]
FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")


def oracle(text, region):
    try:
        n = pn.parse(text, region)
    except pn.NumberParseException:
        return None
    if pn.is_possible_number_with_reason(n) != pn.ValidationResult.IS_POSSIBLE:
        return None
    return pn.format_number(n, F.E164)


def emit(out, text, region, oracle_text=None, valid=False):
    expect = oracle(text if oracle_text is None else oracle_text, region)
    out.write(json.dumps({"input": text, "region": region, "expect": expect, "valid": valid},
                         ensure_ascii=False) + "\n")


def examples():
    for region in sorted(pn.SUPPORTED_REGIONS):
        for t in TYPES:
            n = pn.example_number_for_type(region, t)
            if n is not None:
                yield region, n
    for cc in sorted(pn.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        n = pn.example_number_for_non_geo_entity(cc)
        if n is not None:
            yield None, n


def main():
    out = sys.stdout
    seen = set()
    for region, n in examples():
        e164 = pn.format_number(n, F.E164)
        if (region, e164) in seen:
            continue
        seen.add((region, e164))
        valid = pn.is_valid_number(n)
        intl = pn.format_number(n, F.INTERNATIONAL)
        rfc = pn.format_number(n, F.RFC3966)
        emit(out, e164, None, valid=valid)
        emit(out, intl, None, valid=valid)
        emit(out, rfc, None, valid=valid)
        emit(out, e164.translate(FULL_WIDTH), None, valid=valid)
        emit(out, f"sip:{e164}@sbc.example.net;user=phone", None, oracle_text=e164, valid=valid)
        emit(out, f"<sip:{e164};verstat=TN-Validation-Passed@sbc.example.net;user=phone>", None,
             oracle_text=e164, valid=valid)
        emit(out, f"tel:{e164};ext=123", None, valid=valid)
        emit(out, "00" + e164[1:], "DE")
        emit(out, "011 " + intl[1:], "US")
        emit(out, "+00" + e164[1:], "FR")
        for origin in ("US", "GB", "DE", "JP"):
            emit(out, pn.format_out_of_country_calling_number(n, origin), origin)
        if region is not None:
            national = pn.format_number(n, F.NATIONAL)
            emit(out, national, region)
            digits = "".join(c for c in national if c.isdigit())
            emit(out, digits, region)
            emit(out, f"sip:{digits}@pbx.example.net", region, oracle_text=digits)
            emit(out, pn.national_significant_number(n), region)
            # A number with its country code but no plus, as some trunks send it.
            emit(out, e164[1:], region)
            # The UK's "(0)" habit, applied everywhere.
            cc = str(n.country_code)
            emit(out, f"+{cc} (0) {pn.national_significant_number(n)}", None)
    # Hand-picked inputs that the phonenumber crate gets wrong (see the e164 module).
    for text, region in [("+78001234567", None), ("+37080012345", None),
                         ("+3758011234567", None), ("011 55 11 2345 6789", "US"),
                         ("011 39 02 1234 5678", "US"), ("+44 (0) 20 7183 8750", None),
                         ("+1 415 555 1212 ext. 7", None), ("hello", "US"), ("12", "US"),
                         ("+", None), ("+999 123 456", None), ("0", "GB")]:
        emit(out, text, region)


if __name__ == "__main__":
    main()
