//! Which characters text input may hold. Control characters have no business in a name, an
//! address or a comment (a NUL cannot even be stored in PostgreSQL text); line breaks and
//! tabs are the exception, in free text such as a bio or a review.

/// Returns whether `character` is refused in any text field: a control character other
/// than a line break or a tab.
pub fn is_forbidden_control(character: char) -> bool {
    character.is_control() && !matches!(character, '\n' | '\r' | '\t')
}

/// The message for a field holding a forbidden control character.
pub const CONTROL_CHARACTER_MESSAGE: &str = "must not contain control characters";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_tabs_are_the_only_control_characters_allowed() {
        for allowed in ['a', ' ', 'é', '\n', '\r', '\t'] {
            assert!(!is_forbidden_control(allowed), "{allowed:?}");
        }
        for refused in ['\0', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}'] {
            assert!(is_forbidden_control(refused), "{refused:?}");
        }
    }
}
