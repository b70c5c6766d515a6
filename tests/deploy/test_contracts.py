"""The events' AsyncAPI document (docs/asyncapi.yaml) against the code that publishes and
consumes them: every routing key core publishes has its channel and no channel is
invented; each message's payload is the Envelope field and protobuf message
proto/spruce/events/v1/events.proto declares, field for field; every channel has a
consumer whose bindings reach it; and the headers and content type are the relay's.
Run by `make check`; scripts/contract-check.sh validates the document itself."""

import pathlib
import re
import unittest

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "asyncapi.yaml"
EVENTS_PROTO = ROOT / "proto" / "spruce" / "events" / "v1" / "events.proto"
ROUTING_KEY = re.compile(r'"((?:user|cleaner|booking|payment|review)\.[a-z_]+)"')


def rust_sources(folder):
    """The crate's code, its tests left out."""
    for path in sorted((ROOT / folder).rglob("*.rs")):
        if path.name.endswith("_tests.rs") or path.name == "tests.rs":
            continue
        text = path.read_text()
        yield path, re.split(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)[0]


def proto_messages():
    """Each message of events.proto with its fields' names, and the Envelope's oneof."""
    text = EVENTS_PROTO.read_text()
    messages = {}
    for name, body in re.findall(r"^message (\w+) \{(.*?)^\}", text, re.S | re.M):
        messages[name] = re.findall(r"^\s+(?:repeated\s+)?[\w.]+\s+(\w+)\s*=\s*\d+;", body, re.M)
    oneof = re.search(r"oneof payload \{(.*?)\}", text, re.S).group(1)
    payloads = dict(
        (field, message) for message, field in re.findall(r"^\s+(\w+)\s+(\w+)\s*=\s*\d+;", oneof, re.M)
    )
    return messages, payloads


def all_bindings():
    """The routing-key patterns each consuming service binds, from its event handlers."""
    bindings = {}
    for service in ("search", "scheduler"):
        found = []
        for _, code in rust_sources(f"crates/{service}/src"):
            for block in re.findall(r"fn routing_keys\(&self\)[^{]*\{(.*?)\n    \}", code, re.S):
                found += re.findall(r'"([^"]+)"', block)
        bindings[service] = found
    return bindings


def consumer_bindings():
    """The patterns of the services' handlers that act on events: the analytics archive's
    `#` (every event, archived as it is) is left out, and the document says it apart."""
    return {service: [p for p in patterns if p != "#"] for service, patterns in all_bindings().items()}


def matches(pattern, key):
    """Whether a topic binding pattern (`*` one word, `#` any) matches `key`."""
    regex = "^" + re.escape(pattern).replace(r"\*", r"[^.]+").replace(r"\#", r".*") + "$"
    return re.match(regex, key) is not None


class AsyncApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.document = yaml.safe_load(DOCUMENT.read_text())
        cls.channels = {
            channel["address"]: (name, channel) for name, channel in cls.document["channels"].items()
        }

    def test_every_published_routing_key_has_its_channel_and_none_is_invented(self):
        published = set()
        for _, code in rust_sources("crates/core/src"):
            published |= set(ROUTING_KEY.findall(code))
        self.assertTrue(published, "core's routing keys were found")
        self.assertEqual(set(self.channels), published)

    def test_each_message_is_the_envelope_field_and_proto_message_field_for_field(self):
        messages, payloads = proto_messages()
        schemas = self.document["components"]["schemas"]
        self.assertEqual(
            set(schemas["Envelope"]["properties"]),
            {field for field in messages["Envelope"] if field not in payloads},
        )
        for address, (name, channel) in self.channels.items():
            with self.subTest(address):
                message = self.document["components"]["messages"][name]
                self.assertEqual(message["name"], address)
                envelope, specific = message["payload"]["allOf"]
                self.assertEqual(envelope["$ref"], "#/components/schemas/Envelope")
                self.assertEqual(specific["properties"]["type"]["const"], address)
                (field,) = specific["required"]
                self.assertIn(field, payloads, "a field of the Envelope's payload")
                proto_message = payloads[field]
                schema_ref = specific["properties"][field]["$ref"]
                self.assertEqual(schema_ref, f"#/components/schemas/{proto_message}")
                self.assertEqual(
                    list(schemas[proto_message]["properties"]), messages[proto_message]
                )

    def test_every_channel_is_consumed_by_the_services_its_description_names(self):
        bindings = consumer_bindings()
        self.assertTrue(all(bindings.values()), bindings)
        for address, (_, channel) in self.channels.items():
            with self.subTest(address):
                consumers = {
                    service
                    for service, patterns in bindings.items()
                    if any(matches(pattern, address) for pattern in patterns)
                }
                self.assertTrue(consumers, "someone consumes it")
                named = set(re.search(r"Consumed by (.*)\.$", channel["description"]).group(1).split(" and "))
                self.assertEqual(named, consumers)

    def test_every_event_is_archived_and_the_document_says_so(self):
        self.assertIn("#", all_bindings()["scheduler"], "the scheduler's analytics archive takes every event")
        self.assertIn("analytics archive", self.document["info"]["description"])

    def test_headers_and_content_type_are_the_relays(self):
        outbox = (ROOT / "crates/bus/src/outbox.rs").read_text()
        bus = (ROOT / "crates/bus/src/lib.rs").read_text()
        content_type = re.search(r'CONTENT_TYPE: &str = "([^"]+)"', bus).group(1)
        self.assertEqual(self.document["defaultContentType"], content_type)
        headers = self.document["components"]["schemas"]["Headers"]
        self.assertIn("traceparent", headers["required"])
        self.assertIn("traceparent_into_amqp", outbox)
        for name in ("with_message_id", "with_type", "with_delivery_mode(2)"):
            self.assertIn(name, outbox)
        for message in self.document["components"]["messages"].values():
            self.assertEqual(message["contentType"], content_type)
            self.assertEqual(message["headers"]["$ref"], "#/components/schemas/Headers")


if __name__ == "__main__":
    unittest.main()
