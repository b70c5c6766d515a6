-- One review per completed booking, by its customer.
CREATE TABLE reviews (
    booking_id uuid PRIMARY KEY REFERENCES bookings (id),
    cleaner_id uuid NOT NULL REFERENCES users (id),
    customer_id uuid NOT NULL REFERENCES users (id),
    rating smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX reviews_by_cleaner ON reviews (cleaner_id, created_at DESC, booking_id DESC);
