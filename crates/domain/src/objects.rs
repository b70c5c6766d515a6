//! Where the services keep a user's files in object storage, in one place: the gateway
//! writes them, core records which photo is a cleaner's, and the scheduler removes them all
//! when the account is deleted.

use std::fmt::Display;

/// The folder of every profile photo `owner` uploaded.
pub fn photos_of(owner: impl Display) -> String {
    format!("photos/{owner}")
}

/// The key of `owner`'s photo whose content digest is `digest` (see [`is_photo_digest`]).
pub fn photo_key(owner: impl Display, digest: &str) -> String {
    format!("photos/{owner}/{digest}.jpg")
}

/// How long a photo digest is: 32 lowercase hex digits (the first half of a SHA-256).
pub const PHOTO_DIGEST_LENGTH: usize = 32;

/// Whether `digest` names a photo: [`PHOTO_DIGEST_LENGTH`] lowercase hex digits.
pub fn is_photo_digest(digest: &str) -> bool {
    digest.len() == PHOTO_DIGEST_LENGTH
        && digest
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// The folder of `owner`'s identity documents.
pub fn documents_of(owner: impl Display) -> String {
    format!("documents/{owner}")
}

/// The key of `owner`'s document of `kind`; a new upload of a kind replaces the old one.
pub fn document_key(owner: impl Display, kind: DocumentKind) -> String {
    format!("documents/{owner}/{}", kind.as_str())
}

/// The folders that hold `owner`'s files, all removed with the account.
pub fn folders_of(owner: impl Display + Copy) -> [String; 2] {
    [photos_of(owner), documents_of(owner)]
}

/// A kind of identity document a cleaner hands in for vetting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    IdCard,
    Passport,
    DrivingLicence,
    ProofOfAddress,
    RightToWork,
}

impl DocumentKind {
    /// Every kind, as the API names them.
    pub const ALL: [DocumentKind; 5] = [
        DocumentKind::IdCard,
        DocumentKind::Passport,
        DocumentKind::DrivingLicence,
        DocumentKind::ProofOfAddress,
        DocumentKind::RightToWork,
    ];

    /// The API's name, e.g. `id_card`.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::IdCard => "id_card",
            DocumentKind::Passport => "passport",
            DocumentKind::DrivingLicence => "driving_licence",
            DocumentKind::ProofOfAddress => "proof_of_address",
            DocumentKind::RightToWork => "right_to_work",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<DocumentKind> {
        DocumentKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_digest_is_32_lowercase_hex_digits() {
        assert!(is_photo_digest("0123456789abcdef0123456789abcdef"));
        assert!(!is_photo_digest("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_photo_digest("0123456789abcdef"));
        assert!(!is_photo_digest("../../../../etc/passwd/abcdef012345"));
    }

    #[test]
    fn keys_sit_in_the_owner_s_folders() {
        let [photos, documents] = folders_of("u1");
        assert!(photo_key("u1", "ab").starts_with(&format!("{photos}/")));
        assert!(document_key("u1", DocumentKind::Passport).starts_with(&format!("{documents}/")));
        for kind in DocumentKind::ALL {
            assert_eq!(DocumentKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(DocumentKind::parse("selfie"), None);
    }
}
