//! Which characters text input may hold. Control characters have no business in a name, an
//! address or a comment (a NUL cannot even be stored in PostgreSQL text); line breaks and
//! tabs are the exception, in free text such as a bio or a review. Invisible format
//! characters (Unicode's category Cf: bidirectional overrides, zero-width spaces and joiners,
//! byte-order marks) are refused everywhere: they make one name look like another, or a
//! review read backwards.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

/// Returns whether `character` is an invisible format character (category Cf).
fn is_format(character: char) -> bool {
    character.general_category() == GeneralCategory::Format
}

/// Returns whether `character` is refused in any text field: a control character other
/// than a line break or a tab, or a format character.
pub fn is_forbidden_character(character: char) -> bool {
    (character.is_control() && !matches!(character, '\n' | '\r' | '\t')) || is_format(character)
}

/// Returns whether `character` is refused in one line of text (a name, a street): any
/// control character, line breaks included, or a format character.
pub fn is_forbidden_in_line(character: char) -> bool {
    character.is_control() || is_format(character)
}

/// A regular expression class (`[^…]`, as JSON Schema's `pattern` reads it) of the
/// characters `refused` does not refuse: each refused range as `\uXXXX` escapes, and each
/// refused character beyond the Basic Multilingual Plane as itself.
pub fn allowed_class(refused: fn(char) -> bool) -> String {
    fn one(character: char) -> String {
        if u32::from(character) <= 0xFFFF {
            format!("\\u{:04x}", u32::from(character))
        } else {
            character.to_string()
        }
    }
    let mut class = String::from("[^");
    let mut push = |from: char, to: char| {
        if u32::from(from) > 0xFFFF {
            // Beyond the BMP a regex without Unicode mode (optic's, a browser's) reads each
            // character as two surrogates, and a range of them as out of order: name each.
            (u32::from(from)..=u32::from(to))
                .filter_map(char::from_u32)
                .for_each(|character| class.push(character));
            return;
        }
        class.push_str(&one(from));
        if to != from {
            class.push('-');
            class.push_str(&one(to));
        }
    };
    let mut start: Option<char> = None;
    let mut last = '\0';
    for character in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
        if refused(character) {
            start.get_or_insert(character);
            last = character;
        } else if let Some(from) = start.take() {
            push(from, last);
        }
    }
    if let Some(from) = start {
        push(from, last);
    }
    class.push(']');
    class
}

/// The message for a field holding a forbidden character.
pub const FORBIDDEN_CHARACTER_MESSAGE: &str =
    "must not contain control characters or invisible formatting characters";

/// `bytes` as lowercase hexadecimal, two digits a byte (digests in keys and names).
pub fn lower_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_written_as_two_lowercase_hex_digits_each() {
        assert_eq!(lower_hex(&[0x00, 0xab, 0x0f, 0xff]), "00ab0fff");
        assert_eq!(lower_hex(&[]), "");
    }

    #[test]
    fn the_allowed_class_names_every_refused_character() {
        let class = allowed_class(is_forbidden_character);
        assert!(
            class.starts_with(
                "[^\\u0000-\\u0008\\u000b-\\u000c\\u000e-\\u001f\\u007f-\\u009f\\u00ad"
            ),
            "{class}"
        );
        assert!(
            class.contains("\\u202a-\\u202e") && class.contains("\\ufeff"),
            "{class}"
        );
        assert!(
            class.contains("\u{e0040}\u{e0041}") && !class.contains("\\u000a"),
            "{class}"
        );
        let line = allowed_class(is_forbidden_in_line);
        assert!(
            line.starts_with("[^\\u0000-\\u001f\\u007f-\\u009f"),
            "{line}"
        );
    }

    #[test]
    fn line_breaks_and_tabs_are_the_only_control_characters_allowed() {
        for allowed in ['a', ' ', 'é', '\n', '\r', '\t', '€', '😀'] {
            assert!(!is_forbidden_character(allowed), "{allowed:?}");
        }
        for refused in ['\0', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}'] {
            assert!(is_forbidden_character(refused), "{refused:?}");
        }
        assert!(is_forbidden_in_line('\n') && !is_forbidden_in_line('a'));
    }

    #[test]
    fn bidi_overrides_and_zero_width_characters_are_refused() {
        // Right-to-left override and isolate, zero-width space, non-joiner and joiner, word
        // joiner, byte-order mark, an invisible tag.
        for refused in [
            '\u{202e}',
            '\u{2067}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{2060}',
            '\u{feff}',
            '\u{e0041}',
        ] {
            assert!(is_forbidden_character(refused), "{refused:?}");
            assert!(is_forbidden_in_line(refused), "{refused:?}");
        }
    }
}
