-- What a cleaner offers, where and when. One row per cleaner user.
CREATE TABLE cleaner_profiles (
    cleaner_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    bio text NOT NULL,
    hourly_rate_cents bigint NOT NULL CHECK (hourly_rate_cents > 0),
    currency text NOT NULL,
    services text[] NOT NULL,
    home_lat double precision NOT NULL CHECK (home_lat BETWEEN -90 AND 90),
    home_lng double precision NOT NULL CHECK (home_lng BETWEEN -180 AND 180),
    service_radius_km double precision NOT NULL CHECK (service_radius_km > 0),
    -- [{weekday, start, end}] in the cleaner's time zone; validated by the application.
    weekly_availability jsonb NOT NULL,
    timezone text NOT NULL,
    rating_sum bigint NOT NULL DEFAULT 0,
    rating_count integer NOT NULL DEFAULT 0,
    version bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE addresses (
    id uuid PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label text NOT NULL,
    line1 text NOT NULL,
    city text NOT NULL,
    postal_code text NOT NULL,
    lat double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng double precision NOT NULL CHECK (lng BETWEEN -180 AND 180),
    size_m2 integer NOT NULL CHECK (size_m2 > 0),
    bedrooms integer NOT NULL CHECK (bedrooms >= 0),
    bathrooms integer NOT NULL CHECK (bathrooms >= 0),
    has_pets boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX addresses_by_customer ON addresses (customer_id, created_at, id);
