//! The one normalisation of email addresses, for storage, lookup and throttle keys alike:
//! trimmed, Unicode NFKC, lowercased. Two spellings a person would call the same address
//! (`Ann@Example.com`, full-width `Ａｎｎ@example.com`) become one account and one throttle
//! bucket.

use unicode_normalization::UnicodeNormalization as _;

/// Returns `raw` trimmed, NFKC-normalised and lowercased.
pub fn normalize_email(raw: &str) -> String {
    raw.trim().nfkc().collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_address_normalise_alike() {
        assert_eq!(normalize_email("  Ann@Example.COM "), "ann@example.com");
        assert_eq!(
            normalize_email("Ａｎｎ@ｅｘａｍｐｌｅ.com"),
            "ann@example.com"
        );
        // Compatibility forms fold: the ligature 'ﬁ' is "fi".
        assert_eq!(normalize_email("ﬁona@example.com"), "fiona@example.com");
        // The dotted capital I lowercases the way Rust does, in every service.
        assert_eq!(normalize_email("İ@example.com"), "i\u{307}@example.com");
    }
}
