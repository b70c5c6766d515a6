-- A user's email is verified once they enter the code or open the link sent to it. Users
-- who signed up before verification existed keep working.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
UPDATE users SET email_verified_at = created_at;

-- One-time secrets sent by email: verification (a 6-digit code and a link token) and
-- password reset (a link token). Only hashes are stored; each works once, until it
-- expires, and a code allows a few wrong tries.
CREATE TABLE account_secrets (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    token_hash bytea NOT NULL UNIQUE,
    code_hash bytea,
    failed_tries integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX account_secrets_live ON account_secrets (user_id, purpose) WHERE used_at IS NULL;

-- What the client said it is when a session began (its User-Agent, shortened).
ALTER TABLE refresh_tokens ADD COLUMN device text NOT NULL DEFAULT '';

-- A deleted account stays as a tombstone (bookings and reviews point at it).
ALTER TABLE users ADD COLUMN deleted_at timestamptz;
