//! Text made safe for where hosts put it: a caller name shown on a phone, a SIP header or a
//! channel variable. The service's strings pass through here once, when a response is read
//! (`model`); the host's own strings (a local contact, the operator's wording) when they
//! enter the policy.

fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        )
}

/// Text safe to show: control characters (CR, LF, NUL, C1, line separators, bidi overrides)
/// become spaces, runs of whitespace one space, no space at either end.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if is_unsafe_char(c) || c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// A value fit for a header or variable token: visible ASCII letters, digits and `_.:-+`,
/// anything else replaced with `_`, at most 128 characters.
pub fn sanitize_token(text: &str) -> String {
    text.chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The inside of a SIP quoted-string: `"` and `\` escaped.
pub fn quote_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Cuts a sanitized name so that its quoted-string form fits `max` bytes, on a character
/// boundary, never between a `\` and what it escapes, and without a trailing space.
pub fn truncate_quoted(name: &mut String, max: usize) {
    let mut used = 0;
    let mut cut = name.len();
    for (i, c) in name.char_indices() {
        let width = c.len_utf8() + usize::from(c == '"' || c == '\\');
        if used + width > max {
            cut = i;
            break;
        }
        used += width;
    }
    name.truncate(cut);
    let trimmed = name.trim_end().len();
    name.truncate(trimmed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans() {
        assert_eq!(sanitize(" a\r\n\u{202E}b  c "), "a b c");
        assert_eq!(sanitize_token("ring twice!"), "ring_twice_");
        assert_eq!(quote_escape("a\"b\\"), "a\\\"b\\\\");
        let mut s = "ééé".to_string();
        truncate_quoted(&mut s, 5);
        assert_eq!(s, "éé");
    }
}
