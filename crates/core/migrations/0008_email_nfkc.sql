-- Emails are stored in one normal form: trimmed, Unicode NFKC, lowercased
-- (spruce_platform::email::normalize_email). Earlier signups were trimmed and lowercased but
-- not NFKC-normalised; bring those few into the same form so that lookups, which now
-- normalise the same way, find them. Two accounts that only differ in such a spelling would
-- collide on users_email_key and stop this migration: an operator merges them first.
UPDATE users
SET email = lower(normalize(email, NFKC))
WHERE email IS NOT NFKC NORMALIZED;
