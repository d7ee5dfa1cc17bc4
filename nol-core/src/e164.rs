//! E.164 normalization of the calling number as a switch hands it over.
//!
//! Parsing follows Google's libphonenumber (`PhoneNumberUtil.parse` followed by
//! `isPossibleNumberWithReason == IS_POSSIBLE` and `format(E164)`), step by step, on the
//! metadata that ships inside the `phonenumber` crate. libnol does not call the crate's own
//! parser: it changes the digits of valid numbers (it strips a national prefix after a country
//! code without checking that the result is still a viable number, strips it twice, and keeps the
//! `(0)` of `+44 (0) 20 …`). Those mistakes are mended here, in libnol's own layer, and the
//! result is tested against libphonenumber's Python port on every region's example numbers.
//!
//! On top of libphonenumber, this module reads what SIP switches hand over: `tel:` URIs, the
//! user part of `sip:`/`sips:` URIs (percent-decoded), whole `name-addr` header values, and
//! the ways switches write an anonymous caller.

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

/// Longest input accepted (libphonenumber's `MAX_INPUT_STRING_LENGTH`).
const MAX_INPUT_LEN: usize = 250;
const MIN_LENGTH_FOR_NSN: usize = 2;
const MAX_LENGTH_FOR_NSN: usize = 17;

/// A normalized telephone number: `+` followed by the country code and the national
/// significant number, digits only. Parsing its text again gives it back unchanged.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164 {
    text: String,
    country_code: u16,
}

impl E164 {
    /// Parses what a switch knows of the calling number.
    ///
    /// `default_country` is an ISO 3166 region code (`"US"`, `"GB"`) used for numbers written
    /// in national form; `None` accepts only international forms.
    pub fn parse(input: &str, default_country: Option<&str>) -> Result<Caller, E164Error> {
        parse(input, default_country)
    }

    /// The `+`-prefixed digits.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The country calling code (`1`, `44`, ...).
    pub fn country_code(&self) -> u16 {
        self.country_code
    }

    /// The national significant number: the digits after the country code.
    pub fn national_number(&self) -> &str {
        let cc_len = digit_count(self.country_code);
        &self.text[1 + cc_len..]
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.text)
    }
}

impl AsRef<str> for E164 {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// What a calling-number field holds: a number, or a caller who withheld it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    Number(E164),
    /// `anonymous`, `restricted`, `unavailable`, an empty user part, ...: not an error and not a
    /// number. There is nothing to look up.
    Anonymous,
}

impl Caller {
    pub fn number(&self) -> Option<&E164> {
        match self {
            Caller::Number(n) => Some(n),
            Caller::Anonymous => None,
        }
    }
}

/// Why an input is not a possible number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum E164Error {
    /// The default country is not an ISO 3166 region libphonenumber knows.
    UnknownRegion(String),
    /// Not a telephone number at all (letters, too few digits, an invalid `phone-context`).
    NotANumber,
    /// A national-form number with no default country to read it in.
    MissingCountry,
    /// The digits after `+` or an international prefix start no known country code.
    InvalidCountryCode,
    /// Too few digits for any number of its country.
    TooShort,
    /// Too many digits for any number of its country.
    TooLong,
    /// A length that no number of its country has, or only a local (area-code-less) length.
    InvalidLength,
    /// libphonenumber reads the result back as another number: no single number is meant.
    Ambiguous,
}

impl fmt::Display for E164Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            E164Error::UnknownRegion(r) => write!(f, "unknown default country {r:?}"),
            E164Error::NotANumber => f.write_str("not a telephone number"),
            E164Error::MissingCountry => f.write_str("national number without a default country"),
            E164Error::InvalidCountryCode => f.write_str("invalid country code"),
            E164Error::TooShort => f.write_str("too short"),
            E164Error::TooLong => f.write_str("too long"),
            E164Error::InvalidLength => f.write_str("invalid length for its country"),
            E164Error::Ambiguous => f.write_str("ambiguous: reads back as another number"),
        }
    }
}

impl std::error::Error for E164Error {}

/// Compiles every region's patterns now rather than when a number of that region is first
/// seen.
///
/// The numbering tables are static data prepared at build time (build.rs, from the metadata in
/// the `phonenumber` crate); a region's patterns are compiled the first time a number of that
/// region is parsed, so a process that sees a few countries holds a few countries' patterns. A
/// host that forks its workers calls this before forking, so that the workers share every table
/// and none compiles its own (all of them: about half a second and 90 MB).
pub fn warm_up() {
    let _ = syntax();
    let _ = phone_context();
    for i in 0..REGION_COUNT {
        let _ = region_at(i).types();
    }
}

/// What a client compiles when it is made (hosts may call it too): the patterns every parse
/// uses and the default country's region, so that reading a number of that country pays no
/// one-time cost.
pub fn warm_up_for(default_country: Option<&str>) {
    let _ = syntax();
    if let Some(id) = default_country {
        let _ = region(id.trim());
    }
}

// ---------------------------------------------------------------------------------------------
// Tables prepared at build time (build.rs), compiled region by region on first use.

mod numbering {
    /// A number type's pattern, squeezed and anchored at both ends, and its possible lengths.
    pub(super) struct DescData {
        pub(super) pattern: &'static str,
        pub(super) lengths: &'static [usize],
    }

    /// One region's metadata as libnol's parser reads it (see build.rs).
    pub(super) struct RegionData {
        pub(super) country_code: u16,
        pub(super) general: DescData,
        pub(super) lengths: &'static [usize],
        pub(super) local_lengths: &'static [usize],
        pub(super) types: &'static [DescData],
        /// Anchored at the start.
        pub(super) national_prefix: Option<&'static str>,
        /// In Java's replacement syntax, as the metadata writes it.
        pub(super) transform: Option<&'static str>,
        /// Anchored at the start.
        pub(super) idd: Option<&'static str>,
    }

    include!(concat!(env!("OUT_DIR"), "/numbering.rs"));
}

use numbering::{DescData, RegionData, BY_CODE, BY_ID, REGIONS, REGION_COUNT};

struct Desc {
    /// Anchored at both ends: libphonenumber's `matchNationalNumber(.., false)`.
    full: Regex,
    lengths: &'static [usize],
}

struct Region {
    country_code: u16,
    general: Desc,
    /// Possible lengths of the whole region (union of its number types).
    lengths: &'static [usize],
    local_lengths: &'static [usize],
    /// The number types, compiled when a validity check first needs them.
    types: OnceLock<Vec<Desc>>,
    types_data: &'static [DescData],
    /// `nationalPrefixForParsing`, anchored at the start (`lookingAt`).
    national_prefix: Option<Regex>,
    /// `nationalPrefixTransformRule` in the `regex` crate's replacement syntax.
    transform: Option<String>,
    /// International (IDD) prefix, anchored at the start.
    idd: Option<Regex>,
}

impl Region {
    fn types(&self) -> &[Desc] {
        self.types
            .get_or_init(|| self.types_data.iter().map(compile_desc).collect())
    }
}

/// build.rs keeps only the patterns that the same `regex` crate compiles.
fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a pattern build.rs compiled")
}

fn compile_desc(d: &'static DescData) -> Desc {
    Desc {
        full: compile(d.pattern),
        lengths: d.lengths,
    }
}

fn compile_region(d: &'static RegionData) -> Region {
    Region {
        country_code: d.country_code,
        general: compile_desc(&d.general),
        lengths: d.lengths,
        local_lengths: d.local_lengths,
        types: OnceLock::new(),
        types_data: d.types,
        national_prefix: d.national_prefix.map(compile),
        transform: d.transform.map(java_replacement_to_rust),
        idd: d.idd.map(compile),
    }
}

fn region_at(index: usize) -> &'static Region {
    static COMPILED: [OnceLock<Region>; REGION_COUNT] = [const { OnceLock::new() }; REGION_COUNT];
    COMPILED[index].get_or_init(|| compile_region(&REGIONS[index]))
}

/// A geographic region by its ISO 3166 id, in any case (non-geographic entities have none).
fn region(id: &str) -> Option<&'static Region> {
    let wanted = id.bytes().map(|b| b.to_ascii_uppercase());
    BY_ID
        .binary_search_by(|(k, _)| k.bytes().cmp(wanted.clone()))
        .ok()
        .map(|i| region_at(usize::from(BY_ID[i].1)))
}

/// The indices in `REGIONS` of a country calling code's regions, main country first.
fn regions_of_code(code: u16) -> Option<std::ops::Range<usize>> {
    BY_CODE
        .binary_search_by_key(&code, |&(c, _, _)| c)
        .ok()
        .map(|i| usize::from(BY_CODE[i].1)..usize::from(BY_CODE[i].2))
}

/// libphonenumber's `getMetadataForRegionOrCallingCode(cc, getRegionCodeForCountryCode(cc))`.
fn region_for_code(code: u16) -> Option<&'static Region> {
    regions_of_code(code).map(|r| region_at(r.start))
}

/// `$1` in Java's replacement syntax is `${1}` in the regex crate's (where `$1a` would name a
/// group `1a`).
fn java_replacement_to_rust(rule: &str) -> String {
    let mut out = String::with_capacity(rule.len() + 4);
    let mut chars = rule.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            // Metadata rules have fewer than ten groups: a group number is one digit.
            match chars.peek().copied().filter(char::is_ascii_digit) {
                Some(d) => {
                    chars.next();
                    out.push_str("${");
                    out.push(d);
                    out.push('}');
                }
                None => out.push_str("$$"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

const PUNCTUATION: &str = r"\-x\x{2010}-\x{2015}\x{2212}\x{30FC}\x{FF0D}-\x{FF0F} \x{A0}\x{AD}\x{200B}\x{2060}\x{3000}()\x{FF08}\x{FF09}\x{FF3B}\x{FF3D}.\[\]/~\x{2053}\x{223C}\x{FF5E}";

// The extension forms libphonenumber reads while parsing, in a smaller pattern: RFC 3966
// `;ext=`, the words and their abbreviations, and the single-character markers.
const EXTENSION: &str = r"(?i)(?:;ext=|[ \x{A0}\t,]*(?:e?xt(?:ensi(?:o\x{301}?|\x{F3}))?n?|\x{FF45}?\x{FF58}\x{FF54}\x{FF4E}?|доб|anexo|[x\x{FF58}#\x{FF03}~\x{FF5E}]|int|\x{FF49}\x{FF4E}\x{FF54})[:\.\x{FF0E}]?[ \x{A0}\t,-]*)(\p{Nd}{1,20})#?$";

/// Patterns of libnol's own, read on every parse.
struct Syntax {
    viable: Regex,
    extension: Regex,
}

fn syntax() -> &'static Syntax {
    static SYNTAX: OnceLock<Syntax> = OnceLock::new();
    SYNTAX.get_or_init(|| {
        let viable = format!(
            r"(?i)^(?:\p{{Nd}}{{2}}|[+\x{{FF0B}}]*(?:[{p}*]*\p{{Nd}}){{3,}}[{p}*A-Za-z\p{{Nd}}]*)(?:{ext})?$",
            p = PUNCTUATION,
            ext = EXTENSION.trim_start_matches("(?i)").trim_end_matches('$'),
        );
        Syntax {
            viable: Regex::new(&viable).expect("static pattern"),
            extension: Regex::new(EXTENSION).expect("static pattern"),
        }
    })
}

/// Patterns read only for a `phone-context` parameter.
struct PhoneContext {
    global_number_digits: Regex,
    domain_name: Regex,
}

fn phone_context() -> &'static PhoneContext {
    static PHONE_CONTEXT: OnceLock<PhoneContext> = OnceLock::new();
    PHONE_CONTEXT.get_or_init(|| PhoneContext {
        global_number_digits: Regex::new(r"^\+(?:[\-\.\(\)]?\p{Nd}[\-\.\(\)]?)*\p{Nd}(?:[\-\.\(\)]?\p{Nd}[\-\.\(\)]?)*$|^\+[\-\.\(\)]?\p{Nd}[\-\.\(\)]?$")
            .expect("static pattern"),
        domain_name: Regex::new(r"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*(?:[a-zA-Z]|[a-zA-Z][a-zA-Z0-9\-]*[a-zA-Z0-9])\.?$")
            .expect("static pattern"),
    })
}

// ---------------------------------------------------------------------------------------------
// What switches write before the number itself.

/// Ways switches write a caller who withheld the number (compared case-insensitively).
const ANONYMOUS: &[&str] = &[
    "anonymous",
    "anonymous.invalid",
    "restricted",
    "unavailable",
    "private",
    "withheld",
    "unknown",
];

fn is_anonymous_word(s: &str) -> bool {
    let s = s.trim().trim_matches('"').trim();
    s.is_empty() || ANONYMOUS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A tel URI's subscriber part keeps the parameters libphonenumber reads (`phone-context`,
/// `ext`, `isub`) and drops the rest (`npdi`, `rn`, `cic`, `verstat`, ...).
fn tel_subscriber(subscriber: &str) -> Extracted {
    let mut parts = subscriber.split(';');
    let number = parts.next().unwrap_or("");
    if is_anonymous_word(number) {
        return Extracted::Anonymous;
    }
    let mut out = format!("tel:{number}");
    for param in parts {
        let name = param.split('=').next().unwrap_or("");
        if ["phone-context", "ext", "isub"]
            .iter()
            .any(|k| name.eq_ignore_ascii_case(k))
        {
            out.push(';');
            out.push_str(&name.to_ascii_lowercase());
            out.push_str(&param[name.len()..]);
        }
    }
    Extracted::Number(out)
}

enum Extracted {
    Anonymous,
    Number(String),
}

/// Reduces a header value, SIP URI or tel URI to what libphonenumber parses.
fn extract(input: &str) -> Extracted {
    let mut s = input.trim();
    // A whole name-addr: `"Alice" <sip:+1415...@host>;tag=...`.
    if let Some(open) = s.find('<') {
        if let Some(close) = s[open..].find('>') {
            s = s[open + 1..open + close].trim();
        }
    }
    let lower_prefix = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    if lower_prefix("sip:") || lower_prefix("sips:") {
        let rest = &s[s.find(':').map_or(0, |i| i + 1)..];
        let user = match rest.rfind('@') {
            Some(at) => &rest[..at],
            // No host: treat what precedes any URI parameter or header as the user.
            None => rest.split([';', '?']).next().unwrap_or(""),
        };
        // The user part of a SIP URI is a telephone-subscriber (RFC 3261 19.1.1), so its
        // parameters are tel URI parameters.
        return tel_subscriber(&percent_decode(user));
    }
    if lower_prefix("tel:") {
        return tel_subscriber(s.get(4..).unwrap_or(""));
    }
    if is_anonymous_word(s) {
        return Extracted::Anonymous;
    }
    Extracted::Number(s.to_string())
}

// ---------------------------------------------------------------------------------------------
// libphonenumber's parse, step by step.

/// Decimal digits of the scripts libphonenumber normalizes (Unicode `Nd`), by their zero.
const DIGIT_ZEROS: &[u32] = &[
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0,
    0x11730, 0x118E0, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E950,
];

fn digit_value(c: char) -> Option<u8> {
    if c.is_ascii_digit() {
        return Some(c as u8 - b'0');
    }
    let cp = c as u32;
    DIGIT_ZEROS
        .iter()
        .find(|&&z| cp >= z && cp < z + 10)
        .map(|&z| (cp - z) as u8)
}

fn normalize_digits_only(s: &str) -> String {
    s.chars()
        .filter_map(digit_value)
        .map(|d| (b'0' + d) as char)
        .collect()
}

/// libphonenumber's `normalize`: vanity numbers (three or more letters) have their letters
/// mapped to keypad digits; otherwise only the digits are kept.
fn normalize(s: &str) -> String {
    if s.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 3 {
        s.chars()
            .filter_map(|c| {
                if let Some(d) = digit_value(c) {
                    return Some((b'0' + d) as char);
                }
                let k = match c.to_ascii_uppercase() {
                    'A' | 'B' | 'C' => '2',
                    'D' | 'E' | 'F' => '3',
                    'G' | 'H' | 'I' => '4',
                    'J' | 'K' | 'L' => '5',
                    'M' | 'N' | 'O' => '6',
                    'P' | 'Q' | 'R' | 'S' => '7',
                    'T' | 'U' | 'V' => '8',
                    'W' | 'X' | 'Y' | 'Z' => '9',
                    _ => return None,
                };
                Some(k)
            })
            .collect()
    } else {
        normalize_digits_only(s)
    }
}

fn is_valid_start(c: char) -> bool {
    c == '+' || c == '\u{FF0B}' || digit_value(c).is_some()
}

/// libphonenumber's `extractPossibleNumber`.
fn extract_possible_number(s: &str) -> &str {
    let Some(start) = s
        .char_indices()
        .find(|&(_, c)| is_valid_start(c))
        .map(|(i, _)| i)
    else {
        return "";
    };
    let mut s = &s[start..];
    // Trailing characters that are neither numbers nor letters, except '#'.
    let end = s
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_alphanumeric() || c == '#')
        .map_or(0, |(i, c)| i + c.len_utf8());
    s = &s[..end];
    // A second number after `/` or `\` followed by optional spaces and `x`.
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'/' || b == b'\\' {
            let rest = s[i + 1..].trim_start_matches(' ');
            if rest.starts_with('x') {
                return &s[..i];
            }
        }
    }
    s
}

fn extract_phone_context(s: &str) -> Option<&str> {
    const KEY: &str = ";phone-context=";
    let at = s.find(KEY)?;
    let from = at + KEY.len();
    let rest = &s[from..];
    Some(match rest.find(';') {
        Some(end) => &rest[..end],
        None => rest,
    })
}

/// libphonenumber's `buildNationalNumberForParsing`.
fn build_national_number_for_parsing(s: &str) -> Result<String, E164Error> {
    let mut national = String::new();
    match extract_phone_context(s) {
        Some(ctx) => {
            let pc = phone_context();
            let valid = !ctx.is_empty()
                && (pc.global_number_digits.is_match(ctx) || pc.domain_name.is_match(ctx));
            if !valid {
                return Err(E164Error::NotANumber);
            }
            if ctx.starts_with('+') {
                national.push_str(ctx);
            }
            let ctx_at = s.find(";phone-context=").unwrap_or(s.len());
            let start = s.find("tel:").map_or(0, |i| i + 4);
            if start <= ctx_at {
                national.push_str(&s[start..ctx_at]);
            }
        }
        None => national.push_str(extract_possible_number(s)),
    }
    if let Some(isub) = national.find(";isub=") {
        if isub > 0 {
            national.truncate(isub);
        }
    }
    Ok(national)
}

fn matches_full(desc: &Desc, number: &str) -> bool {
    desc.full.is_match(number)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Length {
    Possible,
    LocalOnly,
    TooShort,
    TooLong,
    Invalid,
}

/// libphonenumber's `testNumberLength(number, metadata, UNKNOWN)`.
fn test_number_length(number: &str, region: &Region) -> Length {
    let lengths = &region.lengths;
    let (Some(&min), Some(&max)) = (lengths.first(), lengths.last()) else {
        return Length::Invalid;
    };
    let n = number.len();
    if region.local_lengths.contains(&n) {
        return Length::LocalOnly;
    }
    if n == min {
        Length::Possible
    } else if n < min {
        Length::TooShort
    } else if n > max {
        Length::TooLong
    } else if lengths[1..].contains(&n) {
        Length::Possible
    } else {
        Length::Invalid
    }
}

/// libphonenumber's `maybeStripNationalPrefixAndCarrierCode`, returning the new national
/// number when a prefix was stripped or transformed.
fn strip_national_prefix(number: &str, region: &Region) -> Option<String> {
    let re = region.national_prefix.as_ref()?;
    if number.is_empty() {
        return None;
    }
    let caps = re.captures(number)?;
    let whole = caps.get(0)?;
    let viable_original = matches_full(&region.general, number);
    let last_group = caps.len() - 1;
    let last_matched = last_group > 0 && caps.get(last_group).is_some();
    match &region.transform {
        Some(rule) if last_matched => {
            let mut transformed = String::new();
            caps.expand(rule, &mut transformed);
            transformed.push_str(&number[whole.end()..]);
            if viable_original && !matches_full(&region.general, &transformed) {
                return None;
            }
            Some(transformed)
        }
        _ => {
            let rest = &number[whole.end()..];
            if viable_original && !matches_full(&region.general, rest) {
                return None;
            }
            Some(rest.to_string())
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Plus,
    Idd,
    Default,
}

/// libphonenumber's `maybeStripInternationalPrefixAndNormalize`.
fn strip_international_prefix(number: &str, idd: Option<&Regex>) -> (String, Source) {
    let plus_end = number
        .char_indices()
        .find(|&(_, c)| c != '+' && c != '\u{FF0B}')
        .map_or(number.len(), |(i, _)| i);
    if plus_end > 0 {
        return (normalize(&number[plus_end..]), Source::Plus);
    }
    let normalized = normalize(number);
    if let Some(idd) = idd {
        if let Some(m) = idd.find(&normalized) {
            // The digit after an IDD is never 0: such a match is not an IDD.
            let next = normalized[m.end()..].chars().next();
            if next != Some('0') {
                return (normalized[m.end()..].to_string(), Source::Idd);
            }
        }
    }
    (normalized, Source::Default)
}

/// libphonenumber's `extractCountryCode`.
fn extract_country_code(full: &str) -> Option<(u16, String)> {
    if full.is_empty() || full.starts_with('0') {
        return None;
    }
    for len in 1..=full.len().min(3) {
        let code: u16 = full[..len].parse().ok()?;
        if regions_of_code(code).is_some() {
            return Some((code, full[len..].to_string()));
        }
    }
    None
}

/// libphonenumber's `maybeExtractCountryCode`: `Ok(None)` when the number carries no country
/// code of its own.
fn extract_country(
    number: &str,
    default: Option<&Region>,
) -> Result<Option<(u16, String, Source)>, E164Error> {
    if number.is_empty() {
        return Ok(None);
    }
    let (full, source) = strip_international_prefix(number, default.and_then(|r| r.idd.as_ref()));
    if source != Source::Default {
        if full.len() <= MIN_LENGTH_FOR_NSN {
            return Err(E164Error::TooShort);
        }
        return match extract_country_code(&full) {
            Some((code, national)) => Ok(Some((code, national, source))),
            None => Err(E164Error::InvalidCountryCode),
        };
    }
    if let Some(region) = default {
        let cc = region.country_code.to_string();
        if let Some(potential) = full.strip_prefix(cc.as_str()) {
            let potential =
                strip_national_prefix(potential, region).unwrap_or_else(|| potential.to_string());
            if (!matches_full(&region.general, &full) && matches_full(&region.general, &potential))
                || test_number_length(&full, region) == Length::TooLong
            {
                return Ok(Some((region.country_code, potential, Source::Default)));
            }
        }
    }
    Ok(None)
}

/// A number is valid when some number type of a region of its code matches it.
fn is_valid(code: u16, national: &str) -> bool {
    regions_of_code(code).is_some_and(|mut ids| {
        ids.any(|i| {
            let r = region_at(i);
            matches_full(&r.general, national)
                && r.types()
                    .iter()
                    .any(|d| d.lengths.contains(&national.len()) && matches_full(d, national))
        })
    })
}

fn parse(input: &str, default_country: Option<&str>) -> Result<Caller, E164Error> {
    let caller = parse_once(input, default_country)?;
    // libphonenumber reads a few odd national inputs into E.164 text that it then reads back
    // differently (`0032000000` in BR gives `+55032000000`, which gives `+5532000000`). Such a
    // number is ambiguous: refusing it is the only answer that never looks up the wrong number.
    if let Caller::Number(n) = &caller {
        if n.as_str() != input && parse_once(n.as_str(), None).as_ref() != Ok(&caller) {
            return Err(E164Error::Ambiguous);
        }
    }
    Ok(caller)
}

fn parse_once(input: &str, default_country: Option<&str>) -> Result<Caller, E164Error> {
    let default = match default_country.map(str::trim).filter(|c| !c.is_empty()) {
        Some(id) => match region(id) {
            Some(r) => Some(r),
            _ => return Err(E164Error::UnknownRegion(id.to_string())),
        },
        None => None,
    };
    if input.len() > MAX_INPUT_LEN {
        return Err(E164Error::TooLong);
    }
    let candidate = match extract(input) {
        Extracted::Anonymous => return Ok(Caller::Anonymous),
        Extracted::Number(s) => s,
    };

    let mut national = build_national_number_for_parsing(&candidate)?;
    let syntax = syntax();
    if national.chars().count() < 2 || !syntax.viable.is_match(&national) {
        return Err(E164Error::NotANumber);
    }
    let starts_with_plus = national.starts_with(['+', '\u{FF0B}']);
    if default.is_none() && !starts_with_plus {
        return Err(E164Error::MissingCountry);
    }
    if let Some(m) = syntax.extension.find(&national) {
        if syntax.viable.is_match(&national[..m.start()]) {
            national.truncate(m.start());
        }
    }

    let extracted = match extract_country(&national, default) {
        Err(E164Error::InvalidCountryCode) if starts_with_plus => {
            // `+` followed by an IDD (`+00 44 …`, `+011 …`): libphonenumber tries again
            // without the plus signs.
            let rest = national.trim_start_matches(['+', '\u{FF0B}']);
            match extract_country(rest, default)? {
                Some(found) => Some(found),
                None => return Err(E164Error::InvalidCountryCode),
            }
        }
        other => other?,
    };

    let (code, mut nsn, source, region) = match extracted {
        Some((code, nsn, source)) => (code, nsn, source, region_for_code(code)),
        None => {
            let region = default.ok_or(E164Error::MissingCountry)?;
            (
                region.country_code,
                normalize(&national),
                Source::Default,
                Some(region),
            )
        }
    };
    if nsn.len() < MIN_LENGTH_FOR_NSN {
        return Err(E164Error::TooShort);
    }
    if let Some(region) = region {
        if let Some(potential) = strip_national_prefix(&nsn, region) {
            if !matches!(
                test_number_length(&potential, region),
                Length::TooShort | Length::LocalOnly | Length::Invalid
            ) {
                nsn = potential;
            }
        }
    }
    if nsn.len() < MIN_LENGTH_FOR_NSN {
        return Err(E164Error::TooShort);
    }
    if nsn.len() > MAX_LENGTH_FOR_NSN {
        return Err(E164Error::TooLong);
    }

    // A valid number written `+` and digits is never changed: a caller name shown for a number
    // the caller did not call from is the worst mistake this library could make.
    if source == Source::Plus {
        let digits = normalize_digits_only(&national);
        let cc = code.to_string();
        if let Some(raw_nsn) = digits.strip_prefix(cc.as_str()) {
            if raw_nsn != nsn && is_valid(code, raw_nsn) {
                nsn = raw_nsn.to_string();
            }
        }
    }

    let region = region_for_code(code).ok_or(E164Error::InvalidCountryCode)?;
    match test_number_length(&nsn, region) {
        Length::Possible => {}
        Length::TooShort => return Err(E164Error::TooShort),
        Length::TooLong => return Err(E164Error::TooLong),
        Length::LocalOnly | Length::Invalid => return Err(E164Error::InvalidLength),
    }
    let mut text = String::with_capacity(1 + 3 + nsn.len());
    text.push('+');
    text.push_str(&code.to_string());
    text.push_str(&nsn);
    Ok(Caller::Number(E164 {
        text,
        country_code: code,
    }))
}

fn digit_count(mut n: u16) -> usize {
    let mut count = 1;
    while n >= 10 {
        n /= 10;
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(input: &str, cc: Option<&str>) -> String {
        match E164::parse(input, cc) {
            Ok(Caller::Number(n)) => n.to_string(),
            Ok(Caller::Anonymous) => "anonymous".into(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn plus_e164_is_kept_as_is() {
        assert_eq!(e164("+14155551212", None), "+14155551212");
        assert_eq!(e164("+442071838750", None), "+442071838750");
    }

    #[test]
    fn national_prefix_lookalikes_keep_their_digits() {
        // The phonenumber crate strips these; libphonenumber and libnol do not.
        assert_eq!(e164("+78001234567", None), "+78001234567");
        assert_eq!(e164("+37080012345", None), "+37080012345");
        assert_eq!(e164("+3758011234567", None), "+3758011234567");
    }

    #[test]
    fn international_prefixes() {
        assert_eq!(e164("011 55 11 2345 6789", Some("US")), "+551123456789");
        assert_eq!(e164("011 39 02 1234 5678", Some("US")), "+390212345678");
        assert_eq!(e164("0044 20 7183 8750", Some("DE")), "+442071838750");
        assert_eq!(e164("+44 (0) 20 7183 8750", None), "+442071838750");
    }

    #[test]
    fn national_numbers_need_a_country() {
        assert_eq!(e164("(415) 555-1212", Some("US")), "+14155551212");
        assert_eq!(e164("020 7183 8750", Some("gb")), "+442071838750");
        assert_eq!(
            e164("020 7183 8750", None),
            "error: national number without a default country"
        );
        assert_eq!(
            e164("020 7183 8750", Some("XX")),
            "error: unknown default country \"XX\""
        );
    }

    #[test]
    fn uris_and_header_values() {
        assert_eq!(
            e164("sip:+14155551212@host;user=phone", None),
            "+14155551212"
        );
        assert_eq!(e164("sips:%2B14155551212@host", None), "+14155551212");
        assert_eq!(
            e164(
                "\"Alice\" <sip:+1-415-555-1212@10.0.0.1;user=phone>;tag=x",
                None
            ),
            "+14155551212"
        );
        assert_eq!(e164("tel:+1-415-555-1212", None), "+14155551212");
        assert_eq!(e164("tel:+1-415-555-1212;ext=12", None), "+14155551212");
        assert_eq!(
            e164("tel:415-555-1212;phone-context=+1", None),
            "+14155551212"
        );
        assert_eq!(e164("sip:4155551212@pbx", Some("US")), "+14155551212");
    }

    #[test]
    fn full_width_digits_and_separators() {
        assert_eq!(e164("＋１ ４１５ ５５５ １２１２", None), "+14155551212");
        assert_eq!(e164("+1.415.555.1212", None), "+14155551212");
    }

    #[test]
    fn anonymous_callers() {
        for s in [
            "anonymous",
            "Anonymous",
            "restricted",
            "unavailable",
            "",
            "sip:anonymous@anonymous.invalid",
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1",
            "sip:@host",
            "tel:restricted",
        ] {
            assert_eq!(e164(s, Some("US")), "anonymous", "{s:?}");
        }
    }

    #[test]
    fn junk_is_a_typed_error() {
        assert_eq!(E164::parse("hello", None), Err(E164Error::NotANumber));
        assert_eq!(E164::parse("+1", None), Err(E164Error::NotANumber));
        assert_eq!(
            E164::parse("+999 1234 5678", None),
            Err(E164Error::InvalidCountryCode)
        );
        assert_eq!(E164::parse("+1415", None), Err(E164Error::TooShort));
        assert!(E164::parse("+1415555121234567", None).is_err());
        assert!(E164::parse(&"1".repeat(300), Some("US")).is_err());
    }

    #[test]
    fn output_parses_back_to_itself() {
        for s in [
            "+14155551212",
            "+390212345678",
            "+78001234567",
            "+80012345678",
        ] {
            let once = e164(s, None);
            assert!(once.starts_with('+'), "{s}: {once}");
            assert_eq!(e164(&once, None), once);
        }
    }

    #[test]
    fn results_libphonenumber_reads_back_differently_are_refused() {
        assert_eq!(
            E164::parse("0032000000", Some("BR")),
            Err(E164Error::Ambiguous)
        );
    }

    #[test]
    fn accessors() {
        let Ok(Caller::Number(n)) = E164::parse("+442071838750", None) else {
            panic!("expected a number")
        };
        assert_eq!(n.country_code(), 44);
        assert_eq!(n.national_number(), "2071838750");
        assert_eq!(format!("{n:?}"), "E164(+442071838750)");
    }

    #[test]
    fn warm_up_compiles_every_table() {
        warm_up();
        const { assert!(REGION_COUNT > 240) };
        assert!((0..REGION_COUNT).all(|i| region_at(i).types.get().is_some()));
        assert_eq!(region("us").map(|r| r.country_code), Some(1));
        assert_eq!(region_for_code(44).map(|r| r.country_code), Some(44));
        // The main country of a shared code comes first.
        assert!(std::ptr::eq(
            region_for_code(1).unwrap(),
            region("US").unwrap()
        ));
        assert!(std::ptr::eq(
            region_for_code(7).unwrap(),
            region("RU").unwrap()
        ));
        assert!(region("XX").is_none() && region("001").is_none());
        assert!(regions_of_code(999).is_none());
    }

    #[test]
    fn java_replacement_syntax() {
        assert_eq!(java_replacement_to_rust("9$1"), "9${1}");
        assert_eq!(java_replacement_to_rust("$15$2"), "${1}5${2}");
    }
}
