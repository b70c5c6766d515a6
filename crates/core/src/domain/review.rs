//! Reviews: a rating from 1 to 5 and an optional comment.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{FieldError, Validator};

/// A valid review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewInput {
    pub rating: u8,
    pub comment: String,
}

impl ReviewInput {
    const MAX_COMMENT: usize = 2_000;

    /// Accepts ratings 1 to 5 and comments up to 2,000 characters.
    ///
    /// # Errors
    /// One [`FieldError`] per broken rule.
    pub fn parse(rating: u32, comment: &str) -> Result<Self, Vec<FieldError>> {
        let mut validator = Validator::default();
        validator.check((1..=5).contains(&rating), "rating", || {
            "must be a whole number from 1 to 5".to_owned()
        });
        let comment = validator.free_text("comment", comment, Self::MAX_COMMENT);
        let review = u8::try_from(rating)
            .ok()
            .map(|rating| ReviewInput { rating, comment });
        validator.finish(review)
    }
}

/// A stored review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub booking_id: Uuid,
    pub cleaner_id: Uuid,
    pub customer_name: String,
    pub rating: u8,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_are_one_to_five() {
        assert!(ReviewInput::parse(0, "").is_err());
        assert!(ReviewInput::parse(6, "").is_err());
        assert_eq!(
            ReviewInput::parse(5, "  Spotless ").unwrap().comment,
            "Spotless"
        );
        assert!(ReviewInput::parse(3, &"x".repeat(2_001)).is_err());
    }
}
