-- A booking's address belongs to the booking's customer, enforced by one foreign key over
-- both columns instead of two separate ones: the database now refuses a booking at another
-- customer's address, and an insert runs one foreign-key check instead of two (the check on
-- users also locked the customer's row for every booking). The customer still exists
-- through the address's own key to users.
ALTER TABLE addresses ADD CONSTRAINT addresses_id_customer UNIQUE (id, customer_id);

ALTER TABLE bookings
    DROP CONSTRAINT bookings_customer_id_fkey,
    DROP CONSTRAINT bookings_address_id_fkey,
    ADD CONSTRAINT bookings_address_of_customer
        FOREIGN KEY (address_id, customer_id) REFERENCES addresses (id, customer_id);
