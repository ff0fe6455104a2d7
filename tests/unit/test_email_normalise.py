import contextlib
import copy
import time
from typing import Any

import pytest

from core.exceptions import MappingError
from core.tenants import TenantConfig
from normalisers.email import MAX_TEXT_CHARS, attachment_events, normalise_email
from normalisers.mime import decode_base64url, decode_text
from normalisers.reply import normalize_subject, split_reply
from shards.ids import shard_id
from shards.model import ShardDraft
from streams.models import RawEvent
from tests.fixtures import generic_email, gmail, graph_mail

NORTHWIND = TenantConfig.model_validate({"internalDomains": ["northwind-sales.com"]})
DAN = "dan.ortiz@northwind-sales.com"
JO = "jo.lee@northwind-sales.com"
PRIYA = "priya.raman@fabrikam-logistics.com"


def addresses(data: dict) -> list[str]:
    """The participants' addresses, in order (each is a person object with its role)."""
    return [p["email"] for p in data["participants"]]


def event(envelope: dict[str, Any]) -> RawEvent:
    return RawEvent.model_validate(envelope)


def draft(envelope: dict[str, Any], tenant: TenantConfig = NORTHWIND) -> ShardDraft:
    return normalise_email(event(envelope), tenant)


def refused(envelope: dict[str, Any], match: str) -> None:
    with pytest.raises(MappingError, match=match):
        draft(envelope)


# --- generic ---------------------------------------------------------------------------------


def test_generic_sample_is_mapped_field_by_field() -> None:
    d = draft(generic_email.sample())
    assert d.shard_type == "Email"
    assert d.id == shard_id("t-demo", "generic", "email", "msg-7731")
    assert d.source.entity_type == "email"
    assert d.source.event_id == "evt-email-msg-7731"
    data = d.structured_data
    assert data["messageId"] == "<CAF7731@mail.fabrikam-logistics.com>"
    assert data["providerThreadId"] == "thr-5512"
    assert data["threadId"] == "int-generic-1:thr-5512"  # namespaced by the integration
    assert data["subject"] == "Re: Route Optimization Suite — revised pricing"
    assert data["normalizedSubject"] == "Route Optimization Suite — revised pricing"
    assert data["from"] == {"email": PRIYA, "name": "Priya Raman"}
    assert data["to"] == [{"email": DAN, "name": "Dan Ortiz"}]
    assert data["cc"] == []
    assert data["bcc"] == []
    assert addresses(data) == [PRIYA, DAN]
    assert data["sentAt"] == "2026-11-02T09:14:03Z"
    assert data["direction"] == "inbound"
    assert data["bodyTruncated"] is False
    assert "inReplyTo" not in data
    assert "references" not in data
    assert data["attachments"] == [
        {
            "fileName": "fabrikam-requirements.docx",
            "contentType": (
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            ),
            "size": 48213,
            "blob": {
                "container": "integration-files",
                "path": "t-demo/email/msg-7731/fabrikam-requirements.docx",
                "contentType": (
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                ),
                "size": 48213,
            },
        }
    ]
    assert d.unstructured_data == {
        "text": (
            "Dan, thanks for the revised quote. Our finance team wants to see the three-year "
            "option before Friday."
        ),
        "quotedText": "> On Oct 30, Dan Ortiz wrote: ...",
    }


@pytest.mark.parametrize(
    ("sender", "to", "cc", "direction"),
    [
        (PRIYA, [DAN], [], "inbound"),
        (PRIYA, ["marco.ruiz@fabrikam-logistics.com"], [], "inbound"),
        (DAN, [PRIYA], [], "outbound"),
        (DAN, [JO], [PRIYA], "outbound"),
        (DAN, [JO], [], "internal"),
        ("ops@eu.northwind-sales.com", [JO], [], "internal"),
        (DAN, [], [], "internal"),
    ],
)
def test_direction_follows_internal_domains(
    sender: str, to: list[str], cc: list[str], direction: str
) -> None:
    data = draft(generic_email.email(sender, to, cc=cc)).structured_data
    assert data["direction"] == direction


def test_without_internal_domains_every_sender_is_external() -> None:
    data = draft(generic_email.email(DAN, [JO]), TenantConfig()).structured_data
    assert data["direction"] == "inbound"


def test_without_a_sender_address_direction_is_unknown() -> None:
    envelope = generic_email.email(DAN, [PRIYA])
    envelope["payload"]["from"] = {"email": None, "name": "Mail Delivery System"}
    data = draft(envelope).structured_data
    assert data["from"] == {"email": None, "name": "Mail Delivery System"}
    assert data["direction"] is None
    assert addresses(data) == [PRIYA]


def test_people_are_lower_cased_named_and_deduplicated_across_to_cc_bcc() -> None:
    envelope = generic_email.email(DAN, [])
    envelope["payload"].update(
        to=[
            {"email": "Priya.Raman@Fabrikam-Logistics.com", "name": None},
            {"email": PRIYA, "name": "Priya Raman"},
            '"Marco Ruiz" <MARCO.RUIZ@fabrikam-logistics.com>',
        ],
        cc=[{"email": PRIYA, "name": "P. Raman"}, {"email": JO, "name": "Jo Lee"}],
        bcc=[{"email": "jo.lee@northwind-sales.com"}, {"email": DAN, "name": "Dan"}],
    )
    data = draft(envelope).structured_data
    assert data["to"] == [
        {"email": PRIYA, "name": "Priya Raman"},
        {"email": "marco.ruiz@fabrikam-logistics.com", "name": "Marco Ruiz"},
    ]
    assert data["cc"] == [{"email": JO, "name": "Jo Lee"}]
    assert data["bcc"] == [{"email": DAN, "name": "Dan"}]
    assert addresses(data) == [DAN, PRIYA, "marco.ruiz@fabrikam-logistics.com", JO]


def test_a_recipient_that_is_no_address_keeps_its_name_only() -> None:
    envelope = generic_email.email(DAN, [PRIYA])
    envelope["payload"]["cc"] = [{"email": "/O=EXCHANGELABS/OU=ADMIN/CN=JOLEE", "name": "Jo Lee"}]
    data = draft(envelope).structured_data
    assert data["cc"] == [{"email": None, "name": "Jo Lee"}]
    assert addresses(data) == [DAN, PRIYA]


def test_html_only_generic_body_becomes_clean_text() -> None:
    html = (
        "<html><head><style>p{color:red}</style><script>track()</script></head><body>"
        "<p>Can we move the review to Thursday?</p>"
        '<img src="https://t.example.com/o.gif" width="1" height="1"></body></html>'
    )
    d = draft(generic_email.sample(bodyText=None, bodyHtml=html))
    assert d.unstructured_data == {"text": "Can we move the review to Thursday?"}


def test_plain_text_is_preferred_over_html() -> None:
    d = draft(generic_email.sample(bodyText="Plain wins.", bodyHtml="<p>HTML loses.</p>"))
    assert d.unstructured_data["text"] == "Plain wins."


def test_reply_headers_are_kept_when_the_generic_shape_has_them() -> None:
    data = draft(
        generic_email.sample(inReplyTo="<a@x.com>", references="<z@x.com> <a@x.com>")
    ).structured_data
    assert data["inReplyTo"] == "<a@x.com>"
    assert data["references"] == ["<z@x.com>", "<a@x.com>"]


def test_an_oversized_body_is_cut_and_flagged_not_refused() -> None:
    d = draft(generic_email.sample(bodyText="word " * (MAX_TEXT_CHARS // 4)))
    assert d.structured_data["bodyTruncated"] is True
    assert len(d.unstructured_data["text"]) <= MAX_TEXT_CHARS


def test_a_ten_megabyte_html_bomb_is_cut_and_flagged() -> None:
    html = "<div>" + "<p>offer</p>" * 900_000 + "</div>"
    started = time.perf_counter()
    d = draft(generic_email.sample(bodyText=None, bodyHtml=html))
    assert time.perf_counter() - started < 20
    assert d.structured_data["bodyTruncated"] is True
    assert d.unstructured_data["text"].startswith("offer")


def test_another_provider_in_the_generic_shape_is_read_as_generic() -> None:
    envelope = generic_email.sample()
    envelope["provider"] = "imap"
    assert draft(envelope).structured_data["messageId"] == "<CAF7731@mail.fabrikam-logistics.com>"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"messageId": None}, "messageId"),
        ({"messageId": ""}, "messageId"),
        ({"messageId": {"id": 1}}, "messageId: expected an id"),
        ({"sentAt": "last Tuesday"}, "sentAt: not an ISO 8601"),
        ({"subject": 42}, "subject: expected a string"),
        ({"to": "priya@"}, None),
        ({"to": 42}, "to: expected people"),
        ({"to": [42]}, r"to\[0\]"),
        ({"attachments": {"fileName": "a.pdf"}}, "attachments: not a list"),
        ({"attachments": ["a.pdf"]}, r"attachments\[0\]: not an object"),
        ({"attachments": [{"fileName": "a.pdf", "size": -1}]}, r"attachments\[0\]\.size"),
        (
            {"attachments": [{"fileName": "a.pdf", "blob": {"container": "c"}}]},
            r"attachments\[0\]\.blob: not a blob reference \(path: Field required\)",
        ),
    ],
)
def test_malformed_generic_emails_are_refused_with_the_reason(
    change: dict[str, Any], reason: str | None
) -> None:
    envelope = generic_email.sample(**change)
    if reason is None:  # a bare bad address in a header string is skipped, not fatal
        assert draft(envelope).structured_data["to"] == []
    else:
        refused(envelope, reason)


def test_unknown_payload_shape_is_refused() -> None:
    envelope = generic_email.sample()
    envelope["provider"] = "exchange2010"
    envelope["payload"] = {"ItemId": "AAMk", "Subject": "hi"}
    refused(envelope, "unknown email payload shape for provider 'exchange2010'")


def test_an_event_of_another_data_type_is_refused() -> None:
    envelope = generic_email.sample()
    envelope["dataType"] = "message"
    refused(envelope, "not an email event")


# --- attachments become document events -----------------------------------------------------


def test_attachments_with_a_blob_become_document_events() -> None:
    e = event(generic_email.sample())
    d = normalise_email(e, NORTHWIND)
    (doc,) = attachment_events(e, d)
    assert doc.data_type == "document"
    assert doc.event_type == "integration.data.raw"
    assert (doc.tenant_id, doc.integration_id, doc.provider) == (
        "t-demo",
        "int-generic-1",
        "generic",
    )
    assert doc.external_id == "msg-7731/attachments/0"
    assert doc.event_id.startswith("evt-email-attachment-")
    assert doc.sync_task_id == e.sync_task_id
    assert doc.occurred_at == e.occurred_at
    assert doc.payload == {
        "documentId": "msg-7731/attachments/0",
        "fileName": "fabrikam-requirements.docx",
        "contentType": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "size": 48213,
        "source": "email",
        "owner": {"email": PRIYA},
        "createdAt": "2026-11-02T09:14:03Z",
        "parentEmailShardId": d.id,
    }
    assert doc.blob is not None
    assert doc.blob.path == "t-demo/email/msg-7731/fabrikam-requirements.docx"
    assert RawEvent.model_validate(doc.to_wire()) == doc  # a valid envelope on the wire


def test_document_events_are_the_same_for_the_same_email() -> None:
    def events(envelope: dict[str, Any]) -> list[dict[str, Any]]:
        e = event(envelope)
        return [x.to_wire() for x in attachment_events(e, normalise_email(e, NORTHWIND))]

    first = events(graph_mail.reply())
    assert first == events(graph_mail.reply())
    resynced = graph_mail.reply()
    resynced["eventId"] = "evt-outlook-reply-2"
    assert events(resynced) == first  # a re-sync is not new work for the document agent
    other = generic_email.sample()
    other["externalId"] = "msg-7732"
    assert events(other)[0]["eventId"] != events(generic_email.sample())[0]["eventId"]


def test_attachments_without_a_blob_are_listed_only() -> None:
    attachments = [
        {"fileName": "notes.txt", "contentType": "Text/Plain", "size": 12},
        generic_email.sample()["payload"]["attachments"][0],
    ]
    e = event(generic_email.sample(attachments=attachments))
    d = normalise_email(e, NORTHWIND)
    assert d.structured_data["attachments"][0] == {
        "fileName": "notes.txt",
        "contentType": "text/plain",
        "size": 12,
    }
    (doc,) = attachment_events(e, d)
    assert doc.external_id == "msg-7731/attachments/1"


def test_the_envelope_blob_stands_for_the_attachment_it_names() -> None:
    envelope = generic_email.sample()
    blob = envelope["payload"]["attachments"][0].pop("blob")
    envelope["payload"]["attachments"].insert(0, {"fileName": "other.pdf", "size": 3})
    envelope["blob"] = blob
    attachments = draft(envelope).structured_data["attachments"]
    assert "blob" not in attachments[0]
    assert attachments[1]["blob"]["path"] == blob["path"]


def test_the_envelope_blob_stands_for_a_lone_attachment_of_its_type() -> None:
    envelope = generic_email.sample()
    blob = envelope["payload"]["attachments"][0].pop("blob")
    envelope["blob"] = {**blob, "path": "t-demo/email/msg-7731/0"}
    assert draft(envelope).structured_data["attachments"][0]["blob"]["path"].endswith("/0")
    envelope["blob"]["contentType"] = "message/rfc822"  # the message itself, not its file
    assert "blob" not in draft(envelope).structured_data["attachments"][0]


# --- Gmail -------------------------------------------------------------------------------------


def test_gmail_reply_is_mapped_field_by_field() -> None:
    d = draft(gmail.reply())
    assert d.id == shard_id(gmail.TENANT, "gmail", "email", gmail.REPLY_ID)
    data = d.structured_data
    assert data["messageId"] == "<CAF7731xq9ZQm+Lp@mail.gmail.com>"
    assert data["providerThreadId"] == gmail.REPLY_THREAD
    assert data["threadId"] == f"int-gmail-dan:{gmail.REPLY_THREAD}"
    assert data["subject"] == "Re: Route Optimization Suite — revised pricing"
    assert data["normalizedSubject"] == "Route Optimization Suite — revised pricing"
    assert data["from"] == {"email": PRIYA, "name": "Priya Raman"}
    assert data["to"] == [{"email": DAN, "name": "Dan Ortiz"}]
    assert data["cc"] == [{"email": "marco.ruiz@fabrikam-logistics.com", "name": "Marco Ruiz"}]
    assert data["bcc"] == []
    assert addresses(data) == [PRIYA, DAN, "marco.ruiz@fabrikam-logistics.com"]
    assert data["sentAt"] == "2026-11-02T09:14:03Z"  # the Date header, +0100 made UTC
    assert data["receivedAt"] == "2026-11-02T09:14:05Z"  # internalDate
    assert data["direction"] == "inbound"
    assert data["inReplyTo"] == "<CAB5512.DanOrtiz@mail.northwind-sales.com>"
    assert data["references"] == [
        "<CAB5500.PriyaR@mail.gmail.com>",
        "<CAB5512.DanOrtiz@mail.northwind-sales.com>",
    ]
    assert data["labels"] == ["INBOX", "IMPORTANT", "CATEGORY_PERSONAL"]
    assert data["bodyTruncated"] is False
    assert data["attachments"] == [
        {
            "fileName": "Fabrikam-3yr-requirements.pdf",
            "contentType": "application/pdf",
            "size": 48213,
            "attachmentId": "ANGjdJ8rT3xKq0a9Zb7Wc5Vd1Ue3Tf5Sg7Rh9Qi1Pj3Ok5Nl7Mm9Ln1Ko3Jp5Iq7Hr9",
            "partId": "1",
            "blob": {
                "container": "integration-files",
                "path": f"{gmail.TENANT}/email/{gmail.REPLY_ID}/1/Fabrikam-3yr-requirements.pdf",
                "contentType": "application/pdf",
                "size": 48213,
            },
        }
    ]


def test_gmail_reply_text_quotes_and_signature_are_apart() -> None:
    unstructured = draft(gmail.reply()).unstructured_data
    assert unstructured["text"] == (
        "Hi Dan,\n\nThanks for the revised quote. Our finance team wants to see the three-year "
        "option\nbefore Friday, and I've attached our updated requirements."
    )
    assert unstructured["signature"] == (
        "Best regards,\nPriya Raman\nVP Operations | Fabrikam Logistics"
    )
    quoted = unstructured["quotedText"]
    assert quoted.startswith("On Fri, Oct 30, 2026 at 4:12 PM Dan Ortiz")
    assert "> Attached is the revised quote" in quoted


def test_gmail_attachment_event_is_keyed_by_the_stable_part_id() -> None:
    e = event(gmail.reply())
    d = normalise_email(e, NORTHWIND)
    (doc,) = attachment_events(e, d)
    assert doc.external_id == f"{gmail.REPLY_ID}/attachments/1"
    assert doc.provider == "gmail"
    assert doc.payload["parentEmailShardId"] == d.id
    assert doc.payload["fileName"] == "Fabrikam-3yr-requirements.pdf"
    # Gmail hands out a new attachmentId on each fetch; the event must not change with it.
    refetched = gmail.reply_message()
    refetched["payload"]["parts"][1]["body"]["attachmentId"] = "ANGjdJ9-another-fetch"
    e2 = event(gmail.envelope(refetched, external_id=gmail.REPLY_ID))
    (doc2,) = attachment_events(e2, normalise_email(e2, NORTHWIND))
    assert (doc2.event_id, doc2.external_id) == (doc.event_id, doc.external_id)


def test_gmail_html_alternative_is_used_when_there_is_no_plain_text() -> None:
    message = gmail.reply_message()
    alternative = message["payload"]["parts"][0]
    alternative["parts"] = [alternative["parts"][1]]
    unstructured = draft(gmail.envelope(message, external_id=gmail.REPLY_ID)).unstructured_data
    assert unstructured["text"].startswith("Hi Dan,")
    assert unstructured["signature"].startswith("Best regards,")
    assert unstructured["quotedText"].startswith("On Fri, Oct 30, 2026 at 4:12 PM")
    assert "<div" not in unstructured["quotedText"]


def test_gmail_marketing_html_in_latin_1_loses_scripts_styles_and_pixels() -> None:
    d = draft(gmail.marketing())
    data = d.structured_data
    assert data["subject"] == "[EXTERNAL] LogiTech Summit 2026: Café talks"
    assert data["normalizedSubject"] == "LogiTech Summit 2026: Café talks"
    assert data["from"] == {
        "email": "events@news.fabrikam-logistics.com",
        "name": "Fabrikam Logistics Events",
    }
    assert data["to"] == [{"email": DAN, "name": None}]
    assert data["sentAt"] == "2026-11-02T11:00:00Z"
    assert data["labels"] == ["UNREAD", "CATEGORY_PROMOTIONS", "INBOX"]
    assert data["attachments"] == []
    assert data["direction"] == "inbound"
    assert d.unstructured_data == {
        "text": (
            "LogiTech Summit 2026\n\nJoin our Café talks on route optimization, Chicago, "
            "3\u20134 December.\n\nSave your seat"
        )
    }


def test_gmail_without_a_date_header_uses_internal_date() -> None:
    message = gmail.marketing_message()
    message["payload"]["headers"] = [
        h for h in message["payload"]["headers"] if h["name"] != "Date"
    ] + [{"name": "Date", "value": "not a date"}]
    data = draft(gmail.envelope(message, external_id=gmail.MARKETING_ID)).structured_data
    assert data["sentAt"] == data["receivedAt"] == "2026-11-02T12:00:00Z"


def test_gmail_encoded_words_in_headers_are_decoded() -> None:
    message = gmail.marketing_message()
    message["payload"]["headers"].extend(
        [
            {"name": "Subject", "value": "=?UTF-8?Q?Re:_Caf=C3=A9_talks_=E2=80=94_agenda?="},
            {
                "name": "Cc",
                "value": "=?ISO-8859-1?Q?Ren=E9_M=FCller?= <rene@fabrikam.de>, "
                "=?UTF-8?Q?Weber=2C_Jonas?= <jonas.weber@fabrikam.de>",
            },
        ]
    )
    message["payload"]["headers"] = [
        h
        for h in message["payload"]["headers"]
        if h["value"] != "[EXTERNAL] LogiTech Summit 2026: Café talks"
    ]
    data = draft(gmail.envelope(message, external_id=gmail.MARKETING_ID)).structured_data
    assert data["subject"] == "Re: Café talks — agenda"
    assert data["normalizedSubject"] == "Café talks — agenda"
    assert data["cc"] == [  # a comma inside an encoded name does not split the address
        {"email": "rene@fabrikam.de", "name": "René Müller"},
        {"email": "jonas.weber@fabrikam.de", "name": "Weber, Jonas"},
    ]


def test_gmail_without_message_id_header_falls_back_to_the_gmail_id() -> None:
    message = gmail.marketing_message()
    message["payload"]["headers"] = [
        h for h in message["payload"]["headers"] if h["name"] != "Message-ID"
    ]
    data = draft(gmail.envelope(message, external_id=gmail.MARKETING_ID)).structured_data
    assert data["messageId"] == gmail.MARKETING_ID


def test_gmail_single_part_plain_text_without_padding() -> None:
    body = "Short note: ok\n"  # 15 bytes: base64 needs one '=' of padding, Gmail sends none
    part = gmail.text_part("", "text/plain", body)
    part["headers"] += gmail.marketing_message()["payload"]["headers"][:5]
    assert not part["body"]["data"].endswith("=")
    d = draft(gmail.with_payload(gmail.marketing(), part))
    assert d.unstructured_data == {"text": "Short note: ok"}


def test_gmail_standard_base64_alphabet_is_accepted_too() -> None:
    body = "Price: 1,000 ÷ 3 ≈ 333 >>> ok?"
    url_safe = gmail.b64url(body.encode())
    standard = url_safe.replace("-", "+").replace("_", "/")
    assert standard != url_safe
    raw, cut = decode_base64url(standard, where="x")
    assert (raw.decode(), cut) == (body, False)


def test_gmail_declared_utf8_with_bad_bytes_is_decoded_with_replacements() -> None:
    bad = gmail.b64url("Prix: 100 €, ".encode() + b"\xe9t\xe9 ok")
    part = gmail.text_part("", "text/plain", "", data=bad)
    d = draft(gmail.with_payload(gmail.marketing(), part))
    assert d.unstructured_data["text"] == "Prix: 100 €, \ufffdt\ufffd ok"


def test_gmail_text_body_fetched_apart_is_flagged_as_truncated() -> None:
    part = gmail.text_part("", "text/html", "")
    part["body"] = {"attachmentId": "ANGjdJ-big-body", "size": 12_000_000}
    d = draft(gmail.with_payload(gmail.marketing(), part))
    assert d.structured_data["bodyTruncated"] is True
    assert d.structured_data["attachments"] == []
    assert d.unstructured_data == {"text": ""}


def test_gmail_inline_images_are_listed_as_inline() -> None:
    message = gmail.reply_message()
    message["payload"]["parts"].append(
        {
            "partId": "2",
            "mimeType": "image/png",
            "filename": "logo.png",
            "headers": [
                {"name": "Content-Disposition", "value": 'inline; filename="logo.png"'},
                {"name": "Content-ID", "value": "<ii_logo>"},
            ],
            "body": {"attachmentId": "ANGjdJ-logo", "size": 2048},
        }
    )
    attachments = draft(gmail.envelope(message, external_id=gmail.REPLY_ID)).structured_data[
        "attachments"
    ]
    assert attachments[1] == {
        "fileName": "logo.png",
        "contentType": "image/png",
        "size": 2048,
        "attachmentId": "ANGjdJ-logo",
        "inline": True,
        "partId": "2",
    }


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("SGVsbG8gd29ybGQ!", "not valid base64url"),
        ("SGVsbG8gd29ybGQhI", "not valid base64url"),  # 17 characters: no byte boundary
        ("SGVs bG8=\n", None),  # whitespace and padding are tolerated
    ],
)
def test_gmail_bad_base64_is_refused(data: str, reason: str | None) -> None:
    envelope = gmail.with_payload(
        gmail.marketing(), gmail.text_part("", "text/plain", "", data=data)
    )
    if reason is None:
        assert draft(envelope).unstructured_data["text"] == "Hello"
    else:
        refused(envelope, reason)


def test_gmail_bad_base64_names_the_part() -> None:
    message = gmail.reply_message()
    message["payload"]["parts"][0]["parts"][0]["body"]["data"] = "%%%"
    refused(
        gmail.envelope(message, external_id=gmail.REPLY_ID),
        r"payload\.parts\[0\]\.parts\[0\]\.body\.data: body data is not valid base64url",
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "payload has no id"),
        ({"payload": None}, "gmail message has no payload"),
        ({"payload": "text"}, "gmail message has no payload"),
        ({"internalDate": "yesterday"}, "internalDate: not epoch milliseconds"),
        ({"threadId": ["t"]}, "threadId: expected an id"),
    ],
)
def test_malformed_gmail_messages_are_refused(change: dict[str, Any], reason: str) -> None:
    refused(gmail.reply(**change), reason)


def test_gmail_raw_format_is_refused_with_the_reason() -> None:
    message = {"id": gmail.REPLY_ID, "threadId": gmail.REPLY_THREAD, "raw": "RnJvbTogYQ"}
    refused(gmail.envelope(message, external_id=gmail.REPLY_ID), "format=raw")


def test_gmail_nesting_beyond_reason_is_refused() -> None:
    part: dict[str, Any] = gmail.text_part("x", "text/plain", "deep")
    for _ in range(40):
        part = {"partId": "x", "mimeType": "multipart/mixed", "parts": [part], "body": {}}
    refused(gmail.with_payload(gmail.marketing(), part), "nested deeper than")


def test_gmail_oversized_body_data_is_cut_not_refused() -> None:
    text = "a" * 9_000_000
    part = gmail.text_part("", "text/plain", text)
    d = draft(gmail.with_payload(gmail.marketing(), part))
    assert d.structured_data["bodyTruncated"] is True
    assert len(d.unstructured_data["text"]) == MAX_TEXT_CHARS


# --- Microsoft Graph ---------------------------------------------------------------------------


def test_graph_reply_is_mapped_field_by_field() -> None:
    d = draft(graph_mail.reply())
    assert d.id == shard_id(graph_mail.TENANT, "outlook", "email", graph_mail.MESSAGE_ID)
    data = d.structured_data
    assert data["messageId"] == (
        "<SA1PR12MB7199E2B1D0C3F4A5B6C7D8E9F0A1B2C3D4E5@SA1PR12MB7199.namprd12.prod.outlook.com>"
    )
    assert data["providerThreadId"] == graph_mail.CONVERSATION_ID
    assert data["threadId"] == f"int-outlook-dan:{graph_mail.CONVERSATION_ID}"
    assert data["subject"] == "RE: [EXTERNAL] Re: Route Optimization Suite — revised pricing"
    assert data["normalizedSubject"] == "Route Optimization Suite — revised pricing"
    assert data["from"] == {"email": DAN, "name": "Dan Ortiz"}
    assert "sender" not in data  # the same mailbox as `from`
    assert data["to"] == [{"email": PRIYA, "name": "Priya Raman"}]
    assert data["cc"] == [
        {"email": "marco.ruiz@fabrikam-logistics.com", "name": "Marco Ruiz"},
        {"email": JO, "name": "Jo Lee"},
    ]
    assert data["bcc"] == []
    assert addresses(data) == [DAN, PRIYA, "marco.ruiz@fabrikam-logistics.com", JO]
    assert data["sentAt"] == "2026-11-02T15:40:09Z"
    assert data["receivedAt"] == "2026-11-02T15:40:11Z"
    assert data["direction"] == "outbound"
    assert data["bodyTruncated"] is False
    assert "labels" not in data
    assert data["attachments"] == [
        {
            "fileName": "Northwind-Fabrikam-3yr-pricing.xlsx",
            "contentType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "size": 23817,
            "attachmentId": graph_mail.ATTACHMENT_ID,
            "blob": {
                "container": "integration-files",
                "path": f"{graph_mail.TENANT}/email/outlook/Northwind-Fabrikam-3yr-pricing.xlsx",
                "contentType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "size": 23817,
            },
        },
        {
            "fileName": "image001.png",
            "contentType": "image/png",
            "size": 4211,
            "attachmentId": graph_mail.INLINE_ID,
            "inline": True,
        },
    ]


def test_graph_html_reply_text_quotes_and_signature_are_apart() -> None:
    unstructured = draft(graph_mail.reply()).unstructured_data
    assert unstructured["text"] == (
        "Hi Priya,\n\nHere is the three-year option. Year one stays at $185,000;\n"
        "years two and three drop to $160,000 each."
    )
    assert unstructured["signature"].startswith("Kind regards,")
    assert unstructured["signature"].endswith("Dan Ortiz\nAccount Executive | Northwind Sales")
    quoted = unstructured["quotedText"]
    assert quoted.startswith("From: Priya Raman <priya.raman@fabrikam-logistics.com>")
    assert quoted.endswith("three-year option before Friday.")
    assert "<" not in unstructured["text"]


def test_graph_unique_body_gives_the_new_text() -> None:
    unique = graph_mail.UNIQUE_HTML.replace("Hi Priya,", "Hi Priya, (only in uniqueBody)")
    envelope = graph_mail.reply(uniqueBody={"contentType": "html", "content": unique})
    unstructured = draft(envelope).unstructured_data
    assert unstructured["text"] == (
        "Hi Priya, (only in uniqueBody)\n\nHere is the three-year option. Year one stays at "
        "$185,000;\nyears two and three drop to $160,000 each."
    )
    assert unstructured["signature"] == (
        "Kind regards,\n\nDan Ortiz\nAccount Executive | Northwind Sales"
    )
    assert unstructured["quotedText"].startswith("From: Priya Raman")  # from the whole body


def test_graph_text_body_and_delegate_sender() -> None:
    envelope = graph_mail.reply(
        body={"contentType": "text", "content": "Approved.\r\n\r\nSent from my iPhone"},
        sender=graph_mail.recipient("assistant@northwind-sales.com", "Sam Assistant"),
        internetMessageHeaders=[
            {"name": "In-Reply-To", "value": "<CAF7731@mail.fabrikam-logistics.com>"},
            {"name": "References", "value": "<CAF7731@mail.fabrikam-logistics.com>"},
        ],
    )
    d = draft(envelope)
    assert d.unstructured_data == {"text": "Approved.", "signature": "Sent from my iPhone"}
    assert d.structured_data["sender"] == {
        "email": "assistant@northwind-sales.com",
        "name": "Sam Assistant",
    }
    assert addresses(d.structured_data)[:2] == [DAN, "assistant@northwind-sales.com"]
    assert d.structured_data["inReplyTo"] == "<CAF7731@mail.fabrikam-logistics.com>"
    assert d.structured_data["references"] == ["<CAF7731@mail.fabrikam-logistics.com>"]


def test_graph_internal_mail_and_item_attachments() -> None:
    envelope = graph_mail.reply(
        toRecipients=[graph_mail.recipient(JO, "Jo Lee")],
        ccRecipients=[],
        attachments=[
            {
                "@odata.type": "#microsoft.graph.itemAttachment",
                "id": "AAMkItem=",
                "name": "Fwd: signed order form",
                "contentType": None,
                "size": 51200,
                "isInline": False,
            }
        ],
    )
    e = event(envelope)
    d = normalise_email(e, NORTHWIND)
    assert d.structured_data["direction"] == "internal"
    assert d.structured_data["attachments"] == [
        {
            "fileName": "Fwd: signed order form",
            "contentType": None,
            "size": 51200,
            "attachmentId": "AAMkItem=",
            "kind": "itemAttachment",
        }
    ]
    assert attachment_events(e, d) == []


def test_graph_attachment_event_is_keyed_by_the_attachment_id() -> None:
    e = event(graph_mail.reply())
    d = normalise_email(e, NORTHWIND)
    (doc,) = attachment_events(e, d)  # the inline logo has no blob: listed only
    assert doc.external_id == f"{graph_mail.MESSAGE_ID}/attachments/{graph_mail.ATTACHMENT_ID}"
    assert doc.provider == "outlook"
    assert doc.integration_id == "int-outlook-dan"
    assert doc.payload["owner"] == {"email": DAN}
    assert doc.payload["parentEmailShardId"] == d.id
    assert len(doc.event_id) < 80


def test_graph_exchange_x500_sender_keeps_its_name() -> None:
    envelope = graph_mail.reply(
        **{
            "from": {
                "emailAddress": {
                    "name": "Dan Ortiz",
                    "address": "/O=EXCHANGELABS/OU=EXCHANGE ADMINISTRATIVE GROUP/CN=DAN",
                }
            }
        }
    )
    data = draft(envelope).structured_data
    assert data["from"] == {"email": None, "name": "Dan Ortiz"}
    assert data["direction"] is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": ""}, "payload has no id"),
        ({"body": {"contentType": "rtf", "content": "x"}}, "body.contentType: expected html"),
        ({"body": "hello"}, "body: not an itemBody"),
        ({"toRecipients": {"emailAddress": {}}}, "toRecipients: not a list"),
        ({"toRecipients": [{"address": PRIYA}]}, r"toRecipients\[0\]: not a recipient"),
        ({"sentDateTime": "02/11/2026"}, "sentDateTime: not an ISO 8601"),
        ({"attachments": [{"name": "a.pdf", "size": "big"}]}, r"attachments\[0\]\.size"),
    ],
)
def test_malformed_graph_messages_are_refused(change: dict[str, Any], reason: str) -> None:
    refused(graph_mail.reply(**change), reason)


def test_normalising_does_not_change_the_event() -> None:
    envelope = graph_mail.reply()
    e = event(envelope)
    before = copy.deepcopy(e.payload)
    d = normalise_email(e, NORTHWIND)
    attachment_events(e, d)
    assert e.payload == before


_ODD_VALUES: list[Any] = [
    None,
    "",
    0,
    -1,
    1.5,
    True,
    [],
    {},
    "x",
    "a@b@c",
    "%%%",
    "=?utf-8?b?!!?=",
    "\x00",
    10**30,
    [None],
    [1],
    {"a": 1},
    [{"name": 3}],
    {"emailAddress": None},
    {"emailAddress": {"address": 5}},
    {"container": "c", "path": "p"},
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict | list):
        for key, child in value.items() if isinstance(value, dict) else enumerate(value):
            found.extend(_paths(child, (*prefix, key)))
    return found


@pytest.mark.parametrize(
    "fixture",
    [generic_email.sample, gmail.reply, gmail.marketing, graph_mail.reply],
    ids=["generic", "gmail-reply", "gmail-marketing", "graph-reply"],
)
def test_any_odd_field_gives_a_draft_or_a_mapping_error(fixture: Any) -> None:
    base = fixture()
    for path in _paths(base["payload"]):
        for value in _ODD_VALUES:
            envelope = copy.deepcopy(base)
            target = envelope["payload"]
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            e = event(envelope)
            with contextlib.suppress(MappingError):  # anything else fails the test
                attachment_events(e, normalise_email(e, NORTHWIND))


# --- the parts: reply splitting, subjects, charsets ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "text", "quoted", "signature"),
    [
        (
            "Sounds good.\n\nOn Fri, Oct 30, 2026 at 4:12 PM Dan Ortiz <\n"
            "dan.ortiz@northwind-sales.com> wrote:\n\n> Hi Priya,\n",
            "Sounds good.",
            "On Fri, Oct 30, 2026 at 4:12 PM Dan Ortiz <\ndan.ortiz@northwind-sales.com> wrote:"
            "\n\n> Hi Priya,",
            "",
        ),
        (
            "Confirmed.\n\n-----Original Message-----\nFrom: Dan\nSent: Monday\n\nTuesday?",
            "Confirmed.",
            "-----Original Message-----\nFrom: Dan\nSent: Monday\n\nTuesday?",
            "",
        ),
        (
            "Signed copy attached.\n\n________________________________\n"
            "From: Dan Ortiz <dan@x.com>\nSent: Thursday, October 29, 2026 5:02 PM\n"
            "To: Priya\nSubject: RE: Order form\n\nReady to sign.",
            "Signed copy attached.",
            "________________________________\nFrom: Dan Ortiz <dan@x.com>\n"
            "Sent: Thursday, October 29, 2026 5:02 PM\nTo: Priya\nSubject: RE: Order form\n\n"
            "Ready to sign.",
            "",
        ),
        (
            "Let's talk tomorrow.\n\n-- \nDan Ortiz | Account Executive\n+1 312 555 0100",
            "Let's talk tomorrow.",
            "",
            "-- \nDan Ortiz | Account Executive\n+1 312 555 0100",
        ),
        ("Agenda:\n- pricing\n- timeline\n-Dan", "Agenda:\n- pricing\n- timeline\n-Dan", "", ""),
        ("Yes, works.\n\nSent from my iPhone", "Yes, works.", "", "Sent from my iPhone"),
        (
            "Hi Dan,\nThanks, the pricing looks good.\nLet's proceed.",
            "Hi Dan,\nThanks, the pricing looks good.\nLet's proceed.",
            "",
            "",
        ),
        ("Can you send it?\n\nThanks, Dan", "Can you send it?", "", "Thanks, Dan"),
        (
            "On Monday we shipped it and the customer wrote:\nall good.",
            "On Monday we shipped it and the customer wrote:\nall good.",
            "",
            "",
        ),
        (
            "> Can you do Tuesday?\nYes, 10am.\n> And the pricing?\nAttached.\n\nCheers,\nPriya",
            "Yes, 10am.\nAttached.",
            "> Can you do Tuesday?\n> And the pricing?",
            "Cheers,\nPriya",
        ),
        (
            "Bitte prüfen.\n\nMit freundlichen Grüßen\nJonas\n\n"
            "Am 30.10.2026 um 16:12 schrieb Dan Ortiz <dan@x.com>:\n> Hallo",
            "Bitte prüfen.",
            "Am 30.10.2026 um 16:12 schrieb Dan Ortiz <dan@x.com>:\n> Hallo",
            "Mit freundlichen Grüßen\nJonas",
        ),
        ("Thanks!", "Thanks!", "", ""),
        ("", "", "", ""),
    ],
)
def test_reply_splitting(body: str, text: str, quoted: str, signature: str) -> None:
    reply = split_reply(body)
    assert (reply.text, reply.quoted, reply.signature) == (text, quoted, signature)


def test_reply_splitting_stays_linear_on_hostile_bodies() -> None:
    bodies = [
        ("On 1 2 3 4 5 6 7 8 9 wrote " * 14 + "\n") * 3000,
        "From: a\nFrom: b\n" * 40_000,
        "> q\n" * 200_000,
        "x" * MAX_TEXT_CHARS,
    ]
    for body in bodies:
        started = time.perf_counter()
        split_reply(body)
        assert time.perf_counter() - started < 5
    started = time.perf_counter()
    assert normalize_subject("Re: [EXTERNAL] " * 200_000 + "Pricing") == "Pricing"
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("subject", "normalized"),
    [
        ("Re: RE: Fwd: FW: AW: SV: Route pricing", "Route pricing"),
        ("RE: [EXTERNAL] Re:  Route   pricing ", "Route pricing"),
        ("[External] FW: Route pricing", "Route pricing"),
        ("Re[2]: Route pricing", "Route pricing"),
        ("WG: Re: Angebot", "Angebot"),
        ("Regarding: the renewal", "Regarding: the renewal"),
        ("Fwd:", ""),
        (None, None),
    ],
)
def test_subject_prefixes_and_tags_are_stripped(
    subject: str | None, normalized: str | None
) -> None:
    assert normalize_subject(subject) == normalized


@pytest.mark.parametrize(
    ("raw", "charset", "text"),
    [
        ("Café".encode(), "utf-8", "Café"),
        ("Café".encode("latin-1"), "ISO-8859-1", "Café"),
        (b"\x93quoted\x94", "iso-8859-1", "\u201cquoted\u201d"),  # windows-1252 in practice
        ("Café".encode(), "us-ascii", "Café"),  # 8-bit UTF-8 under an ASCII label
        ("Café".encode(), "x-unknown-charset", "Café"),
        ("Café".encode("cp1252"), None, "Café"),  # no label, not UTF-8: windows-1252
        ("日本語".encode("shift_jis"), "Shift_JIS", "日本語"),
        ("한국어".encode("euc-kr"), "ks_c_5601-1987", "한국어"),
    ],
)
def test_charset_decoding_policy(raw: bytes, charset: str | None, text: str) -> None:
    assert decode_text(raw, charset) == text
