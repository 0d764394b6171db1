"""parse_webhook against real Cloud API payloads (tests/fixtures/whatsapp, see its README)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wadesk.channels.base import InboundMessage, Media, StatusUpdate
from wadesk.channels.whatsapp.parse import ParseError, ParseResult, parse_webhook

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "whatsapp"
ALL_FIXTURES = sorted(path.stem for path in FIXTURES.glob("*.json"))

PHONE_ID = "106540352242922"
SHEENA = "16505551234"
LOOKASIDE_IMAGE_SHA = "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI="
BUTTON_MSG = "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
MSG_A = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
MSG_B = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="


def load(name: str) -> dict[str, Any]:
    body = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(body, dict)
    return body


def parsed(name: str) -> ParseResult:
    return parse_webhook(load(name))


def ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def assert_aware_utc(moment: datetime) -> None:
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)


def only_message(name: str) -> InboundMessage:
    result = parsed(name)
    assert result.problems == []
    assert result.delivery.statuses == []
    assert len(result.delivery.messages) == 1
    message = result.delivery.messages[0]
    assert_aware_utc(message.timestamp)
    return message


def only_status(name: str) -> StatusUpdate:
    result = parsed(name)
    assert result.problems == []
    assert result.delivery.messages == []
    assert len(result.delivery.statuses) == 1
    status = result.delivery.statuses[0]
    assert_aware_utc(status.timestamp)
    return status


def first_message(body: dict[str, Any]) -> dict[str, Any]:
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    assert isinstance(message, dict)
    return message


# -- every fixture ---------------------------------------------------------------------------


def test_fixtures_are_documented_in_the_readme() -> None:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    assert len(ALL_FIXTURES) >= 30
    for name in ALL_FIXTURES:
        assert f"`{name}.json`" in readme, name


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_parses_into_well_typed_objects(name: str) -> None:
    result = parsed(name)
    for message in result.delivery.messages:
        assert message.account_id in (PHONE_ID, "106540352242923")
        assert message.external_id.startswith("wamid.")
        assert message.sender.isdigit()
        assert_aware_utc(message.timestamp)
        json.dumps(message.content)
    for status in result.delivery.statuses:
        assert status.external_id.startswith("wamid.")
        assert_aware_utc(status.timestamp)
    expected_problems = 1 if name == "text_bsuid_only" else 0
    assert len(result.problems) == expected_problems, result.problems


# -- inbound message types -------------------------------------------------------------------


def test_text() -> None:
    assert only_message("text") == InboundMessage(
        account_id=PHONE_ID,
        external_id=MSG_A,
        sender=SHEENA,
        sender_name="Sheena Nelson",
        timestamp=ts(1749416383),
        type="text",
        text="Does it come in another color?",
        content={},
        media=None,
        reply_to_external_id=None,
        referral=None,
    )


def test_text_reply_carries_the_quoted_message_id() -> None:
    message = only_message("text_reply")
    assert message.type == "text"
    assert message.text == "Yes, Saturday at 10 works for me."
    assert (
        message.reply_to_external_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA"
    )
    assert message.content == {}
    assert message.timestamp == ts(1750264012)


def test_text_product_inquiry_keeps_the_referred_product() -> None:
    message = only_message("text_product_inquiry")
    assert message.text == "Is this still available?"
    assert message.reply_to_external_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA"
    assert message.content == {
        "referred_product": {"catalog_id": "194836987003835", "product_retailer_id": "di9ozbzfi4"}
    }
    assert message.sender_name == "Sheena Nelson"
    assert message.timestamp == ts(1750016800)


def test_forwarded_text_is_flagged_and_is_not_a_reply() -> None:
    message = only_message("text_forwarded")
    assert message.text == "Look at this offer my sister got"
    assert message.content == {"forwarded": True}
    assert message.reply_to_external_id is None

    body = load("text_forwarded")
    first_message(body)["context"] = {"frequently_forwarded": True}
    message = parse_webhook(body).delivery.messages[0]
    assert message.content == {"frequently_forwarded": True}


def test_text_from_a_click_to_whatsapp_ad_keeps_the_referral() -> None:
    message = only_message("text_ctwa_referral")
    assert message.text == "Can I get more info about this?"
    assert message.external_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUQ0N0VFMDA2MTQ0RkJFNkNDNAA="
    assert message.timestamp == ts(1750275992)
    assert message.referral is not None
    assert message.referral["source_type"] == "ad"
    assert message.referral["source_id"] == "120226305854810726"
    assert message.referral["source_url"] == "https://fb.me/3cr4Wqqkv"
    assert message.referral["headline"] == "Chat with us"
    assert message.referral["ctwa_clid"].startswith("Aff-n8ZTODiE79d22KtAwQKj9e")
    assert message.referral["welcome_message"] == {"text": "Hi there! Let us know how we can help!"}
    assert (
        message.referral
        == load("text_ctwa_referral")["entry"][0]["changes"][0]["value"]["messages"][0]["referral"]
    )


def test_image_with_caption() -> None:
    assert only_message("image") == InboundMessage(
        account_id=PHONE_ID,
        external_id=MSG_A,
        sender=SHEENA,
        sender_name="Sheena Nelson",
        timestamp=ts(1744344496),
        type="image",
        text="Taj Mahal",
        content={},
        media=Media(
            provider_id="1003383421387256",
            mime_type="image/jpeg",
            filename=None,
            sha256=LOOKASIDE_IMAGE_SHA,
            voice=False,
        ),
    )


def test_voice_note() -> None:
    message = only_message("audio_voice")
    assert message.type == "audio"
    assert message.text is None
    assert message.content == {"voice": True}
    assert message.media == Media(
        provider_id="1908647269898587",
        mime_type="audio/ogg; codecs=opus",
        sha256="wvqXMe6n7n1W0zphvLPoLj+s/NtKqmr3zZ7YzTP7xFI=",
        voice=True,
    )


def test_audio_file_is_not_a_voice_note() -> None:
    body = load("audio_voice")
    first_message(body)["audio"]["voice"] = False
    message = parse_webhook(body).delivery.messages[0]
    assert message.media is not None
    assert message.media.voice is False
    assert message.content == {}


def test_video() -> None:
    message = only_message("video")
    assert message.type == "video"
    assert message.text == "Timelapse of growth"
    assert message.media == Media(
        provider_id="731675419373506",
        mime_type="video/mp4",
        sha256="vdGU5X4caz12KwFgYwpljlUNqMt1YnkH+5GkPc3mMnc=",
    )


def test_document_keeps_its_filename() -> None:
    message = only_message("document")
    assert message.type == "document"
    assert message.text == "my receipt"
    assert message.media == Media(
        provider_id="622684793477189",
        mime_type="application/pdf",
        filename="receipt.pdf",
        sha256="V5OPpLD/gEG6Xjg0MbmQDLFgcKsL+j5LfY4ny/pZ4MY=",
    )


def test_animated_sticker() -> None:
    message = only_message("sticker")
    assert message.type == "sticker"
    assert message.text is None
    assert message.content == {"animated": True}
    assert message.media == Media(
        provider_id="1908647269898587",
        mime_type="image/webp",
        sha256="wvqXMe6n7n1W0zphvLPoLj+s/NtKqmr3zZ7YzTP7xFI=",
    )


def test_location() -> None:
    message = only_message("location")
    assert message.type == "location"
    assert message.external_id == MSG_B
    assert message.text == "Philz Coffee"
    assert message.content == {
        "latitude": 37.44221496582,
        "longitude": -122.16165924072,
        "name": "Philz Coffee",
        "address": "101 Forest Ave, Palo Alto, CA 94301",
        "url": "https://philzcoffee.com/",
    }
    assert message.media is None


def test_contacts() -> None:
    message = only_message("contacts")
    assert message.type == "contacts"
    assert message.text is None
    assert message.content == {
        "contacts": [
            {
                "name": {
                    "first_name": "Barbara",
                    "last_name": "Johnson",
                    "formatted_name": "Barbara J. Johnson",
                },
                "org": {"company": "Social Tsunami"},
                "phones": [
                    {"phone": "+1 (415) 555-0829", "wa_id": "14125550829", "type": "MOBILE"}
                ],
            }
        ]
    }


def test_interactive_button_reply() -> None:
    message = only_message("interactive_button_reply")
    assert message.type == "interactive"
    assert message.text == "Cancel"
    assert message.content == {
        "interactive_type": "button_reply",
        "id": "cancel-button",
        "title": "Cancel",
    }
    assert (
        message.reply_to_external_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MEM2RUJFNkI0RENGQTVDRjUA"
    )
    assert message.timestamp == ts(1750025136)


def test_interactive_list_reply() -> None:
    message = only_message("interactive_list_reply")
    assert message.text == "Priority Mail Express"
    assert message.content == {
        "interactive_type": "list_reply",
        "id": "priority_express",
        "title": "Priority Mail Express",
        "description": "Next Day to 2 Days",
    }
    assert message.reply_to_external_id == BUTTON_MSG
    assert message.external_id == MSG_B


def test_interactive_flow_reply_decodes_response_json() -> None:
    message = only_message("interactive_nfm_reply")
    assert message.type == "interactive"
    assert message.text == "Sent"
    assert message.content["interactive_type"] == "nfm_reply"
    assert message.content["name"] == "flow"
    assert isinstance(message.content["response_json"], str)
    assert message.content["response"] == {
        "flow_token": "AQAAAAACS5FpgQ_cAAAAAD0QI3s.",
        "optional_param1": "<value1>",
        "optional_param2": "<value2>",
    }
    assert message.reply_to_external_id == "gBGGEiRVVgBPAgm7FUgc73noXjo"
    assert message.timestamp == ts(1750270511)


def test_flow_reply_with_broken_response_json_keeps_the_raw_string() -> None:
    body = load("interactive_nfm_reply")
    first_message(body)["interactive"]["nfm_reply"]["response_json"] = '{"flow_token": '
    result = parse_webhook(body)
    assert result.problems == []
    content = result.delivery.messages[0].content
    assert content["response_json"] == '{"flow_token": '
    assert "response" not in content


def test_template_quick_reply_button() -> None:
    message = only_message("button")
    assert message.type == "button"
    assert message.text == "Unsubscribe"
    assert message.content == {"payload": "Unsubscribe"}
    assert message.reply_to_external_id == BUTTON_MSG
    assert message.timestamp == ts(1750091045)


def test_reaction() -> None:
    message = only_message("reaction")
    assert message.type == "reaction"
    assert message.text is None
    assert message.content == {"message_id": BUTTON_MSG, "emoji": "\N{THUMBS UP SIGN}"}
    assert message.timestamp == ts(1749419544)


def test_removed_reaction_has_an_empty_emoji() -> None:
    message = only_message("reaction_removed")
    assert message.content == {"message_id": BUTTON_MSG, "emoji": ""}
    body = load("reaction")
    first_message(body)["reaction"]["emoji"] = ""  # the older form of a removal
    assert parse_webhook(body).delivery.messages[0].content == {
        "message_id": BUTTON_MSG,
        "emoji": "",
    }


def test_order() -> None:
    message = only_message("order")
    assert message.type == "order"
    assert message.text == "Love these!"
    assert message.content == {
        "catalog_id": "194836987003835",
        "product_items": [
            {
                "product_retailer_id": "di9ozbzfi4",
                "quantity": 2,
                "item_price": 30,
                "currency": "USD",
            },
            {
                "product_retailer_id": "nqryix03ez",
                "quantity": 1,
                "item_price": 25,
                "currency": "USD",
            },
        ],
    }


@pytest.mark.parametrize(
    ("name", "kind", "new_id_key"),
    [
        ("system_user_changed_number", "user_changed_number", "wa_id"),
        ("system_customer_changed_number", "customer_changed_number", "new_wa_id"),
    ],
)
def test_system_number_change(name: str, kind: str, new_id_key: str) -> None:
    message = only_message(name)
    assert message.type == "system"
    assert message.sender == SHEENA
    assert message.sender_name is None  # system webhooks carry no contacts array
    assert message.content["type"] == kind
    assert message.content[new_id_key] == "12195555358"
    assert message.text == message.content["body"]
    assert message.timestamp == ts(1750269342)


def test_unsupported_keeps_meta_error_and_kind_without_a_problem() -> None:
    message = only_message("unsupported")
    assert message.type == "unsupported"
    assert message.text is None
    assert message.content == {
        "error_code": "131051",
        "error_title": "Message type unknown: Message type is currently not supported.",
        "unsupported_type": "edit",
    }


def test_legacy_unknown_type_is_unsupported() -> None:
    message = only_message("unknown_legacy")
    assert message.type == "unsupported"
    assert message.content == {
        "error_code": "131051",
        "error_title": "Unsupported message type: Message type is not currently supported",
    }


def test_request_welcome() -> None:
    message = only_message("request_welcome")
    assert message.type == "request_welcome"
    assert message.text is None
    assert message.content == {}
    assert message.sender_name == "Sheena Nelson"
    assert message.timestamp == ts(1750277103)


def test_sender_without_phone_number_is_a_problem_not_a_crash() -> None:
    result = parsed("text_bsuid_only")
    assert result.delivery.messages == []
    assert len(result.problems) == 1
    assert "business-scoped user id" in result.problems[0]
    assert "messages[0].from" in result.problems[0]


# -- statuses --------------------------------------------------------------------------------


def test_status_sent() -> None:
    assert only_status("status_sent") == StatusUpdate(
        account_id=PHONE_ID,
        external_id=MSG_B,
        status="sent",
        timestamp=ts(1750030073),
        recipient=SHEENA,
        error_code=None,
        error_title=None,
    )


def test_status_carries_the_callback_data_of_its_send() -> None:
    """``biz_opaque_callback_data`` set on a send comes back in its statuses; a value that
    is not a string is ignored, not a problem."""
    body = load("status_sent")
    status = body["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert only_status("status_sent").callback_data is None
    status["biz_opaque_callback_data"] = "wadesk:message:42"
    (parsed_status,) = parse_webhook(body).delivery.statuses
    assert parsed_status.callback_data == "wadesk:message:42"
    status["biz_opaque_callback_data"] = {"not": "a string"}
    result = parse_webhook(body)
    assert result.problems == [] and result.delivery.statuses[0].callback_data is None


def test_status_delivered() -> None:
    status = only_status("status_delivered")
    assert status.status == "delivered"
    assert status.external_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA"
    assert status.timestamp == ts(1750263773)
    assert status.recipient == SHEENA
    assert status.error_code is None


def test_status_read() -> None:
    status = only_status("status_read")
    assert (status.status, status.external_id, status.timestamp) == ("read", MSG_B, ts(1750030073))


def test_status_failed_carries_the_error() -> None:
    assert only_status("status_failed") == StatusUpdate(
        account_id=PHONE_ID,
        external_id="wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA",
        status="failed",
        timestamp=ts(1751142888),
        recipient=SHEENA,
        error_code="131049",
        error_title=(
            "This message was not delivered to maintain healthy ecosystem engagement: In order"
            " to maintain a healthy ecosystem engagement, the message failed to be delivered."
        ),
    )


def test_status_deleted() -> None:
    status = only_status("status_deleted")
    assert status.status == "deleted"
    assert status.external_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJBRkJENzExMTRFRjk2NTI1OTEA"


def test_status_played_counts_as_read() -> None:
    status = only_status("status_played")
    assert status.status == "read"
    assert status.timestamp == ts(1750031254)


def test_unknown_status_is_a_problem_and_the_others_are_kept() -> None:
    body = load("batch")
    body["entry"][0]["changes"][1]["value"]["statuses"][0]["status"] = "pending"
    result = parse_webhook(body)
    assert len(result.delivery.statuses) == 4
    assert len(result.delivery.messages) == 5
    assert result.problems == [
        "entry[0].changes[1].value.statuses[0].status: unknown status 'pending'"
    ]


# -- account level ---------------------------------------------------------------------------


def test_value_level_errors_become_notes() -> None:
    result = parsed("errors_value")
    assert result.delivery.messages == []
    assert result.delivery.statuses == []
    assert result.problems == []
    assert result.delivery.notes == [
        "entry[0].changes[0].value: account error 130429: Rate limit hit: Message failed to"
        " send because there were too many messages sent from this phone number in a short"
        " period of time"
    ]


def test_other_change_fields_are_noted_not_parsed() -> None:
    result = parsed("message_template_status_update")
    assert result.delivery.messages == []
    assert result.delivery.statuses == []
    assert result.problems == []
    assert result.delivery.notes == [
        "entry[0].changes[0]: field 'message_template_status_update' kept, not acted on"
    ]


# -- batches: everything, not only the first -------------------------------------------------


def test_batch_yields_every_message_and_status_of_every_entry_and_change() -> None:
    result = parsed("batch")
    assert result.problems == []
    messages = result.delivery.messages
    assert [(m.account_id, m.type, m.sender, m.sender_name) for m in messages] == [
        (PHONE_ID, "text", SHEENA, "Sheena Nelson"),
        (PHONE_ID, "image", "16505550199", "Pablo Morales"),
        (PHONE_ID, "reaction", SHEENA, "Sheena Nelson"),
        ("106540352242923", "location", "14125550829", "Barbara Johnson"),
        ("106540352242923", "interactive", "14125550829", "Barbara Johnson"),
    ]
    assert len({m.external_id for m in messages}) == 5
    assert [m.timestamp for m in messages] == [
        ts(1750300001),
        ts(1750300002),
        ts(1750300003),
        ts(1750300020),
        ts(1750300021),
    ]
    assert messages[2].content["emoji"] == "\u2764\ufe0f"
    assert messages[4].reply_to_external_id == (
        "wamid.HBgLMTQxMjU1NTA4MjkVAgARGBJCQVRDSDAwMDAwMDAwMDAwMwA="
    )
    statuses = result.delivery.statuses
    assert [(s.account_id, s.status, s.recipient) for s in statuses] == [
        (PHONE_ID, "sent", SHEENA),
        (PHONE_ID, "delivered", SHEENA),
        (PHONE_ID, "read", "16505550199"),
        ("106540352242923", "read", "14125550829"),
        ("106540352242923", "failed", "14125550829"),
    ]
    assert statuses[4].error_code == "131047"
    assert statuses[4].error_title is not None
    assert statuses[4].error_title.startswith("Re-engagement message: Message failed")
    assert result.delivery.notes == [
        "entry[1].changes[1]: field 'message_template_status_update' kept, not acted on"
    ]


# -- problems: one bad item never hides the others -------------------------------------------


def test_unknown_message_type_is_kept_as_unsupported_with_a_problem() -> None:
    body = load("batch")
    message = first_message(body)
    message["type"] = "poll_creation"
    message["poll_creation"] = {"question": "Blue or red?"}
    result = parse_webhook(body)
    assert len(result.delivery.messages) == 5
    assert len(result.delivery.statuses) == 5
    placeholder = result.delivery.messages[0]
    assert placeholder.type == "unsupported"
    assert placeholder.content == {"unknown_type": "poll_creation"}
    assert placeholder.text is None
    assert (
        placeholder.external_id == "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUJBVENIMDAwMDAwMDAwMDAxAA=="
    )
    assert placeholder.sender_name == "Sheena Nelson"
    assert result.problems == [
        "entry[0].changes[0].value.messages[0]: unknown message type 'poll_creation'"
        " (kept as unsupported; replay after an upgrade to read it)"
    ]


def test_known_type_in_an_unreadable_shape_is_kept_as_unsupported() -> None:
    body = load("batch")
    del body["entry"][0]["changes"][0]["value"]["messages"][1]["image"]["id"]
    result = parse_webhook(body)
    assert len(result.delivery.messages) == 5
    placeholder = result.delivery.messages[1]
    assert placeholder.type == "unsupported"
    assert placeholder.content == {"unreadable_type": "image"}
    assert placeholder.media is None
    assert len(result.problems) == 1
    assert result.problems[0].startswith("entry[0].changes[0].value.messages[1].image.id:")


@pytest.mark.parametrize("key", ["from", "id"])
def test_message_without_sender_or_id_is_a_problem(key: str) -> None:
    body = load("batch")
    del first_message(body)[key]
    result = parse_webhook(body)
    assert len(result.delivery.messages) == 4
    assert len(result.delivery.statuses) == 5
    assert len(result.problems) == 1
    assert result.problems[0].startswith(f"entry[0].changes[0].value.messages[0].{key}:")


@pytest.mark.parametrize("sender", ["", "Sheena", "user.93737", "1650-555-1234", True, None, []])
def test_sender_that_is_not_a_wa_id_is_a_problem(sender: Any) -> None:
    body = load("text")
    first_message(body)["from"] = sender
    result = parse_webhook(body)
    assert result.delivery.messages == []
    assert len(result.problems) == 1
    assert ".from:" in result.problems[0]


def test_sender_with_a_plus_is_normalised_and_named() -> None:
    body = load("text")
    first_message(body)["from"] = "+16505551234"
    message = parse_webhook(body).delivery.messages[0]
    assert message.sender == SHEENA
    assert message.sender_name == "Sheena Nelson"


@pytest.mark.parametrize(
    "timestamp",
    ["yesterday", "", "1750300001000", "-5", -5, "17503.5", 17503.5, True, None, {}, " 1750300001"],
)
def test_bad_timestamp_is_a_problem(timestamp: Any) -> None:
    body = load("batch")
    first_message(body)["timestamp"] = timestamp
    body["entry"][0]["changes"][1]["value"]["statuses"][0]["timestamp"] = timestamp
    result = parse_webhook(body)
    assert len(result.delivery.messages) == 4
    assert len(result.delivery.statuses) == 4
    assert len(result.problems) == 2
    assert all("timestamp" in problem for problem in result.problems)


def test_integer_timestamp_is_accepted() -> None:
    body = load("text")
    first_message(body)["timestamp"] = 1749416383
    message = parse_webhook(body).delivery.messages[0]
    assert message.timestamp == ts(1749416383)


@pytest.mark.parametrize("entry", [None, {}, "entry", 3])
def test_entry_that_is_not_a_list_is_a_problem_not_an_error(entry: Any) -> None:
    body = load("text")
    body["entry"] = entry
    result = parse_webhook(body)
    assert result.delivery.messages == []
    assert result.delivery.statuses == []
    assert len(result.problems) == 1
    assert result.problems[0].startswith("entry: expected a list")


def test_entry_item_or_changes_of_the_wrong_shape_do_not_hide_other_entries() -> None:
    body = load("batch")
    good = body["entry"][1]
    body["entry"] = ["not an entry", {"id": "1", "changes": {"not": "a list"}}, good]
    result = parse_webhook(body)
    assert [m.account_id for m in result.delivery.messages] == ["106540352242923"] * 2
    assert len(result.delivery.statuses) == 2
    assert result.problems == [
        "entry[0]: expected an object, got str",
        "entry[1].changes: expected a list, got dict",
    ]


@pytest.mark.parametrize("value", [None, [], "value", 7])
def test_value_that_is_not_an_object_does_not_hide_other_changes(value: Any) -> None:
    body = load("batch")
    body["entry"][0]["changes"][0]["value"] = value
    result = parse_webhook(body)
    assert len(result.delivery.messages) == 2  # the second entry
    assert len(result.delivery.statuses) == 5  # the first entry's second change, and the second
    assert len(result.problems) == 1
    assert result.problems[0].startswith("entry[0].changes[0].value: expected an object")


def test_messages_not_a_list_keep_the_statuses_of_the_same_value() -> None:
    body = load("batch")
    body["entry"][1]["changes"][0]["value"]["messages"] = {"0": "oops"}
    result = parse_webhook(body)
    assert len(result.delivery.messages) == 3
    assert len(result.delivery.statuses) == 5
    assert result.problems == ["entry[1].changes[0].value.messages: expected a list, got dict"]


def test_contacts_of_the_wrong_shape_leave_messages_unnamed() -> None:
    body = load("text")
    body["entry"][0]["changes"][0]["value"]["contacts"] = "Sheena"
    result = parse_webhook(body)
    assert result.delivery.messages[0].sender_name is None
    assert result.delivery.messages[0].text == "Does it come in another color?"
    assert result.problems == ["entry[0].changes[0].value.contacts: expected a list, got str"]


def test_missing_phone_number_id_is_a_problem_for_that_change_only() -> None:
    body = load("batch")
    del body["entry"][1]["changes"][0]["value"]["metadata"]["phone_number_id"]
    result = parse_webhook(body)
    assert len(result.delivery.messages) == 3
    assert len(result.delivery.statuses) == 3
    assert len(result.problems) == 1
    assert "metadata.phone_number_id" in result.problems[0]


def test_location_without_finite_coordinates_is_kept_as_unsupported() -> None:
    for bad in ("NaN", "Infinity", True, None, "north"):
        body = load("location")
        first_message(body)["location"]["latitude"] = bad
        result = parse_webhook(body)
        assert result.delivery.messages[0].type == "unsupported", bad
        assert result.delivery.messages[0].content == {"unreadable_type": "location"}
        assert len(result.problems) == 1


def test_text_is_cleaned_of_nul_and_lone_surrogates() -> None:
    body = load("text")
    lone = b"caf\xe9".decode("utf-8", "surrogateescape")
    first_message(body)["text"]["body"] = f"a\x00b {lone}"
    message = parse_webhook(body).delivery.messages[0]
    assert message.text == "ab caf\ufffd"
    assert message.text.encode("utf-8")


def test_too_deep_structures_are_cut_and_reported() -> None:
    body = load("text_ctwa_referral")
    deep: Any = "bottom"
    for _ in range(200):
        deep = {"d": deep}
    first_message(body)["referral"]["extra"] = deep
    result = parse_webhook(body)
    message = result.delivery.messages[0]
    assert message.referral is not None
    assert message.referral["source_id"] == "120226305854810726"
    json.dumps(message.referral)
    assert result.problems == [
        "entry[0].changes[0].value.messages[0]: values too deep or not storable were cut"
    ]


# -- not a WhatsApp webhook at all -----------------------------------------------------------


@pytest.mark.parametrize("body", [None, [], "text", 42, [load("text")]])
def test_body_that_is_not_an_object_raises(body: Any) -> None:
    with pytest.raises(ParseError, match="body: expected an object"):
        parse_webhook(body)


@pytest.mark.parametrize("obj", [None, "page", "instagram", "WHATSAPP_BUSINESS_ACCOUNT", 1])
def test_other_objects_raise(obj: Any) -> None:
    body = load("text")
    if obj is None:
        del body["object"]
    else:
        body["object"] = obj
    with pytest.raises(ParseError, match="not 'whatsapp_business_account'"):
        parse_webhook(body)


def test_parsing_does_not_modify_the_body() -> None:
    body = load("batch")
    before = copy.deepcopy(body)
    parse_webhook(body)
    assert body == before
