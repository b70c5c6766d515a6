#!/usr/bin/env python3
"""A mobile client's first walk, through a client generated from the document alone
(openapi-python-client): sign up, then as a seeded customer (customer02: the fuzzing runs as customer01) find cleaner01 free at some
hour, book them, and as cleaner01 confirm; the customer then cancels, so that a rerun finds
the hour free again. Every answer is a typed model of the document's, never a dict.

    PYTHONPATH=<folder holding spruce_api_client> python3 tests/api/client_walk.py URL
"""

import datetime
import os
import sys
import uuid

from spruce_api_client import AuthenticatedClient, Client
from spruce_api_client.api.auth import login, signup
from spruce_api_client.api.bookings import cancel_booking, confirm_booking, create_booking
from spruce_api_client.api.cleaners import get_cleaner
from spruce_api_client.api.me import create_address, list_addresses
from spruce_api_client.api.search import search_cleaners
from spruce_api_client.models import (
    Address,
    AddressPage,
    AddressRequest,
    Booking,
    BookingRequest,
    BookingStatus,
    CleanerHitPage,
    CleanerProfile,
    LoginRequest,
    ServiceKind,
    Session,
    SignupRequest,
    SignupRole,
)
from spruce_api_client.types import UNSET

PASSWORD = os.environ.get("E2E_PASSWORD", "spruce-dev-password")


def expect(kind, answer, what):
    if not isinstance(answer, kind):
        sys.exit(f"client walk: {what} answered {answer!r}, not a {kind.__name__}")
    return answer


def signed_in(base, email):
    session = expect(Session, login.sync(client=Client(base_url=base), body=LoginRequest(email=email, password=PASSWORD)),
                     f"logging in as {email}")
    return AuthenticatedClient(base_url=base, token=session.access_token), session


def walk_address(customer, home):
    """The customer's address at cleaner01's home from an earlier walk, else a new one."""
    cursor = UNSET
    while True:
        page = expect(AddressPage, list_addresses.sync(client=customer, limit=100, cursor=cursor), "listing addresses")
        for address in page.items:
            if address.label == "Walk" and (address.lat, address.lng) == (home.lat, home.lng):
                return address
        if not isinstance(page.next_cursor, str):
            break
        cursor = page.next_cursor
    return expect(Address, create_address.sync(client=customer, body=AddressRequest(
        label="Walk", line1="Torstrasse 9", city="Berlin", postal_code="10119", lat=home.lat, lng=home.lng,
        size_m2=55, bedrooms=1, bathrooms=1)), "adding an address")


def main(base):
    anonymous = Client(base_url=base)
    email = f"walk-{uuid.uuid4().hex[:12]}@example.com"
    new = expect(Session, signup.sync(client=anonymous, body=SignupRequest(
        email=email, password=f"walk-{uuid.uuid4().hex}", full_name="Client Walk", role=SignupRole.CUSTOMER)), "signup")
    assert new.user.email == email and not new.user.email_verified, new

    customer, _ = signed_in(base, "customer02@spruce.test")
    cleaner, cleaner_session = signed_in(base, "cleaner01@spruce.test")
    cleaner_id = cleaner_session.user.id
    profile = expect(CleanerProfile, get_cleaner.sync(id=cleaner_id, client=cleaner), "cleaner01's profile")
    home = profile.home
    address = walk_address(customer, home)

    midnight = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    for day in range(2, 16):
        for hour in (9, 11, 14):
            starts_at = midnight + datetime.timedelta(days=day, hours=hour)
            page = expect(CleanerHitPage, search_cleaners.sync(
                client=customer, lat=home.lat, lng=home.lng, radius_km=5, service=ServiceKind.STANDARD,
                starts_at=starts_at, duration_min=240, limit=50), "searching")
            if any(hit.cleaner_id == cleaner_id for hit in page.items):
                break
        else:
            continue
        break
    else:
        sys.exit("client walk: cleaner01 is not free at any hour tried in the coming two weeks")

    booking = expect(Booking, create_booking.sync(client=customer, idempotency_key=str(uuid.uuid4()), body=BookingRequest(
        address_id=address.id, service=ServiceKind.STANDARD, starts_at=starts_at, cleaner_id=cleaner_id,
        payment_token="tok_visa")), "booking cleaner01")
    assert booking.status == BookingStatus.REQUESTED and booking.cleaner_id == cleaner_id, booking
    confirmed = expect(Booking, confirm_booking.sync(id=booking.id, client=cleaner), "confirming")
    assert confirmed.status == BookingStatus.CONFIRMED, confirmed
    cancelled = expect(Booking, cancel_booking.sync(id=booking.id, client=customer), "cancelling")
    assert cancelled.status == BookingStatus.CANCELLED, cancelled
    print(f"client walk: signed up {email}; booked cleaner01 for {starts_at:%Y-%m-%d %H:%M} UTC, confirmed, cancelled")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080")
