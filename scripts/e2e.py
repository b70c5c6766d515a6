#!/usr/bin/env python3
"""The end-to-end suite: the mobile app's journeys against a running Spruce, on the curated
data set (`spruce-core seed`), through the public API only.

    scripts/e2e.py BASE_URL            # make e2e BASE_URL=http://localhost:8080

CD runs it against e2e after each release and promotes only when it passes. The seeded
accounts' password is E2E_PASSWORD (default: the development one; e2e's data set is
seeded with a secret one, docs/deploying.md). Each journey prints `ok <journey>`; the
first failure stops the suite with what was asked and what came back, and exit 1.
Standard library only: it runs on any CD runner with Python 3.
"""

import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

BASE = ""
PASSWORD = os.environ.get("E2E_PASSWORD", "spruce-dev-password")


class Failed(Exception):
    pass


def call(method, path, token=None, body=None, headers=None, expect=200):
    """One request; returns the JSON body (or None). Fails unless the status is `expect`."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{BASE}{path}", data=data, method=method)
    request.add_header("accept", "application/json")
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    except OSError as error:
        raise Failed(f"{method} {path}: {error}") from error
    if status != expect:
        raise Failed(f"{method} {path}: expected {expect}, got {status}: {text[:500]}")
    return json.loads(text) if text.strip() else None


def check(condition, message):
    if not condition:
        raise Failed(message)


def eventually(what, probe, seconds=60):
    """Asks `probe` until it returns something true; returns that."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise Failed(f"{what}: not within {seconds} s")
        time.sleep(1)


def login(email):
    return call("POST", "/v1/auth/login", body={"email": email, "password": PASSWORD})


def signup_gets_an_unverified_account_that_cannot_book_yet(state):
    email = f"e2e-{uuid.uuid4().hex[:12]}@spruce.test"
    password = f"e2e-{uuid.uuid4().hex}"
    session = call("POST", "/v1/auth/signup", expect=201,
                   body={"email": email, "password": password, "full_name": "End To End", "role": "customer"})
    token = session["access_token"]
    me = call("GET", "/v1/me", token)
    check(me["email"] == email and me["email_verified"] is False, f"/v1/me after signup: {me}")
    again = call("POST", "/v1/auth/login", body={"email": email, "password": password})
    check(again["access_token"], "a login after signup")
    address = call("POST", "/v1/me/addresses", token, expect=201, body=flat(52.52, 13.40))
    refused = call("POST", "/v1/bookings", token, expect=403,
                   headers={"idempotency-key": str(uuid.uuid4())},
                   body={"address_id": address["id"], "service": "standard",
                         "starts_at": at(days=7), "payment_token": "tok_visa"})
    check("email_unverified" in json.dumps(refused), f"why the booking was refused: {refused}")


def flat(lat, lng):
    return {"label": "Flat", "line1": "Torstrasse 9", "city": "Berlin", "postal_code": "10119",
            "lat": lat, "lng": lng, "size_m2": 55, "bedrooms": 1, "bathrooms": 1, "has_pets": False}


def at(days=0, minutes=0):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days, minutes=minutes)
    return moment.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def seeded_people_log_in(state):
    state["customer"] = login("customer01@spruce.test")["access_token"]
    cleaner = login("cleaner01@spruce.test")
    state["cleaner"], state["cleaner_id"] = cleaner["access_token"], cleaner["user"]["id"]
    state["admin"] = login("admin@spruce.test")["access_token"]
    profile = call("GET", f"/v1/cleaners/{state['cleaner_id']}", state["cleaner"])
    state["home"], state["ratings"] = profile["home"], profile["rating_count"]


def search_finds_cleaners_near_a_new_address(state):
    home = state["home"]
    address = call("POST", "/v1/me/addresses", state["customer"], expect=201, body=flat(home["lat"], home["lng"]))
    state["address"] = address["id"]
    found = call("GET", f"/v1/search/cleaners?lat={home['lat']}&lng={home['lng']}&radius_km=5&service=standard&limit=5",
                 state["customer"])
    check(found["items"], f"cleaners near cleaner01's home: {found}")
    recommended = call("GET", f"/v1/recommendations?address_id={address['id']}&limit=3", state["customer"])
    check(recommended["items"] and all(item.get("reason") for item in recommended["items"]),
          f"recommendations with reasons: {recommended}")


def a_quote_prices_the_cleaning(state):
    quote = call("POST", "/v1/quotes", state["customer"],
                 body={"address_id": state["address"], "service": "standard", "cleaner_id": state["cleaner_id"]})
    check(quote["price_cents"] > 0 and quote["estimated_duration_min"] > 0, f"the quote: {quote}")


def a_booking_goes_from_request_to_completed_and_reviewed(state):
    customer, cleaner = state["customer"], state["cleaner"]
    # Starts in 20 minutes: a cleaner may start from 30 minutes before.
    booking = call("POST", "/v1/bookings", customer, expect=201,
                   headers={"idempotency-key": str(uuid.uuid4())},
                   body={"address_id": state["address"], "service": "standard", "cleaner_id": state["cleaner_id"],
                         "starts_at": at(minutes=20), "payment_token": "tok_visa"})
    check(booking["status"] == "requested", f"a new booking: {booking}")
    state["booking"] = booking["id"]
    for action, status in (("confirm", "confirmed"), ("start", "in_progress")):
        changed = call("POST", f"/v1/bookings/{booking['id']}/{action}", cleaner)
        check(changed["status"] == status, f"after {action}: {changed}")
    done = call("POST", f"/v1/bookings/{booking['id']}/complete", cleaner, body={"actual_duration_min": 100})
    check(done["status"] == "completed" and done["payment_status"] == "captured", f"after complete: {done}")
    call("POST", f"/v1/bookings/{booking['id']}/review", customer, expect=201,
         body={"rating": 5, "comment": "The end-to-end suite was pleased."})
    profile = call("GET", f"/v1/cleaners/{state['cleaner_id']}", customer)
    check(profile["rating_count"] == state["ratings"] + 1, f"rating_count after the review: {profile}")
    mine = call("GET", "/v1/bookings?status=completed&limit=50", customer)
    check(any(item["id"] == booking["id"] for item in mine["items"]), "the booking among the customer's completed ones")


def a_declined_card_books_nothing(state):
    call("POST", "/v1/bookings", state["customer"], expect=402,
         headers={"idempotency-key": str(uuid.uuid4())},
         body={"address_id": state["address"], "service": "standard", "cleaner_id": state["cleaner_id"],
               "starts_at": at(days=9), "payment_token": "tok_chargeDeclined"})


def both_sides_are_notified(state):
    def kinds(token):
        page = call("GET", "/v1/me/notifications?limit=50", token)
        return {n["kind"] for n in page["items"] if n["created_at"] >= state["started"]}
    wanted = {"customer": {"booking.confirmed", "booking.completed"}, "cleaner": {"review.created"}}
    for who, expected in wanted.items():
        eventually(f"the {who}'s notifications {sorted(expected)}", lambda: expected <= kinds(state[who]))


def an_admin_runs_a_job_and_sees_its_run(state):
    jobs = call("GET", "/v1/admin/jobs", state["admin"])
    names = [job["name"] for job in jobs["items"]]
    check("expire-unconfirmed" in names, f"the scheduler's jobs: {names}")
    call("POST", "/v1/admin/jobs/expire-unconfirmed/run", state["admin"], expect=202)
    eventually("the job's manual run", lambda: call(
        "GET", "/v1/admin/jobs/expire-unconfirmed/runs?limit=5", state["admin"])["items"])
    call("GET", "/v1/admin/jobs", state["customer"], expect=403)


JOURNEYS = [
    signup_gets_an_unverified_account_that_cannot_book_yet,
    seeded_people_log_in,
    search_finds_cleaners_near_a_new_address,
    a_quote_prices_the_cleaning,
    a_booking_goes_from_request_to_completed_and_reviewed,
    a_declined_card_books_nothing,
    both_sides_are_notified,
    an_admin_runs_a_job_and_sees_its_run,
]


def main():
    global BASE
    if len(sys.argv) != 2 or not sys.argv[1].startswith(("http://", "https://")):
        sys.exit("usage: scripts/e2e.py BASE_URL (http:// or https://)")
    BASE = sys.argv[1].rstrip("/")
    state = {"started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")}
    for journey in JOURNEYS:
        name = journey.__name__.replace("_", " ")
        try:
            journey(state)
        except (Failed, KeyError, TypeError) as error:
            print(f"FAILED {name}: {error!r}", file=sys.stderr)
            sys.exit(1)
        print(f"ok {name}", flush=True)
    print(f"e2e: {len(JOURNEYS)} journeys passed against {BASE}")


if __name__ == "__main__":
    main()
