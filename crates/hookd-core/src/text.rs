//! The stored form of what a receiver sends back: response bodies and headers are the
//! receiver's data, arbitrary bytes, and must be kept readably and safely whatever they hold.
//!
//! The rule (documented in `docs/security.md`, "Stored responses"):
//! - text that is valid UTF-8 without NUL characters is kept exactly as received;
//! - every NUL byte, and every byte that is not part of valid UTF-8, becomes the four characters
//!   `\xNN` (its value in lowercase hex), the way Python's `backslashreplace` shows them;
//! - header values longer than [`HEADER_VALUE_CAP`] bytes are cut at a character boundary and end
//!   with `…`, and at most [`HEADERS_CAP`] response headers are kept.
//!
//! The result is always valid UTF-8 free of NUL, which every backend stores (PostgreSQL `text` and
//! `jsonb` refuse NUL). It is lossless for all other text; a body that itself contains the
//! characters `\x00` reads the same as one with a NUL byte, which is the one ambiguity accepted
//! for readability.

use std::borrow::Cow;

/// Longest response header value kept, in bytes.
pub const HEADER_VALUE_CAP: usize = 4096;
/// Most response headers kept per attempt.
pub const HEADERS_CAP: usize = 100;

/// Receiver bytes as storable text (see the module docs).
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        push_without_nul(&mut out, chunk.valid());
        for b in chunk.invalid() {
            out.push_str("\\x");
            push_hex(&mut out, *b);
        }
    }
    out
}

/// `bytes` as lowercase hex, two characters each (digests and keys as they are stored).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        push_hex(&mut out, *b);
    }
    out
}

fn push_hex(out: &mut String, b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(DIGITS[usize::from(b >> 4)]));
    out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
}

/// `text` with every NUL written as `\x00`; borrowed when there is none.
pub fn without_nul(text: &str) -> Cow<'_, str> {
    if !text.contains('\0') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    push_without_nul(&mut out, text);
    Cow::Owned(out)
}

fn push_without_nul(out: &mut String, text: &str) {
    let mut parts = text.split('\0');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for part in parts {
        out.push_str("\\x00");
        out.push_str(part);
    }
}

/// A header value as stored: escaped like a body, and cut to [`HEADER_VALUE_CAP`] bytes.
pub fn header_value(bytes: &[u8]) -> String {
    let mut text = escape_bytes(bytes);
    if text.len() > HEADER_VALUE_CAP {
        let mut cut = HEADER_VALUE_CAP;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// A whole set of response headers as stored: each name and value made safe, at most
/// [`HEADERS_CAP`] of them.
pub fn headers<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .take(HEADERS_CAP)
        .map(|(name, value)| (header_value(name), header_value(value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_is_kept_exactly() {
        for text in ["", "ok", "{\"a\": \"é ✓ 𝄞\"}", "line\nbreak\ttab"] {
            assert_eq!(escape_bytes(text.as_bytes()), text);
            assert!(matches!(without_nul(text), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn nul_and_invalid_bytes_are_escaped_as_hex() {
        assert_eq!(escape_bytes(b"ok\0bad"), "ok\\x00bad");
        assert_eq!(escape_bytes(b"a\xffb\xc3"), "a\\xffb\\xc3");
        // A lone surrogate encoded as UTF-8 (CESU style) is invalid UTF-8: each byte escaped.
        assert_eq!(escape_bytes(b"\xed\xa0\x80x"), "\\xed\\xa0\\x80x");
        assert_eq!(without_nul("\0\0"), "\\x00\\x00");
        let out = escape_bytes(b"\0\xfe\xff");
        assert!(!out.contains('\0'));
    }

    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        assert_eq!(hex(b""), "");
        assert_eq!(hex(&[0x00, 0x0f, 0x10, 0xa5, 0xff]), "000f10a5ff");
        let every: Vec<u8> = (0..=255).collect();
        let expected: String = every.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&every), expected);
    }

    #[test]
    fn long_header_values_are_cut_at_a_character_boundary() {
        let long = "é".repeat(HEADER_VALUE_CAP);
        let cut = header_value(long.as_bytes());
        assert!(cut.len() <= HEADER_VALUE_CAP + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(header_value(b"short"), "short");
    }

    #[test]
    fn at_most_the_cap_of_headers_is_kept() {
        let names: Vec<String> = (0..HEADERS_CAP + 50).map(|i| format!("x-{i}")).collect();
        let pairs = names.iter().map(|n| (n.as_bytes(), b"v\0".as_slice()));
        let kept = headers(pairs);
        assert_eq!(kept.len(), HEADERS_CAP);
        assert_eq!(kept[0], ("x-0".to_string(), "v\\x00".to_string()));
    }
}
