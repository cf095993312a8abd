"""Models and the converter, checked against every example in the seeds and the spec."""

from __future__ import annotations

import contextlib
import json
from datetime import date, datetime, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commbox_async import DecodeError
from commbox_async.models import (
    Activity,
    ActivityLogEntry,
    CustomIndicator,
    EmailAddress,
    Manager,
    Model,
    NewChild,
    NewObject,
    NewUser,
    ObjectActivityType,
    ObjectDetails,
    ObjectRecord,
    ObjectStatusType,
    ObjectType,
    RemarkEntry,
    StreamProviderType,
    Transcript,
    UserPermission,
    _converter,
    parse_date,
    parse_datetime,
    structure,
    unstructure,
)
from commbox_async.models import __all__ as model_names

from .seeds import data, request_examples, response_example

UTC = timezone.utc

# -- request examples: every one reproduced exactly -------------------------------------------

USER = NewUser(
    unique_id="01234567",
    last_name="Doe",
    first_name="John",
    phone1="972544444444",
    email="john.doe@gmail.com",
    remarks="some remark for user",
)


def _create_object_examples() -> list[Any]:
    return list(data("create_object_examples.json"))


def _exact(built: dict[str, Any], expected: dict[str, Any]) -> None:
    assert built == expected
    assert list(built) == list(expected), "key order differs from the docs' example"


def test_seed_email_without_attachments() -> None:
    expected = _create_object_examples()[0]
    built = NewObject.email(
        subject="mail subject",
        message="some message",
        to=["john.doe@gmail.com"],
        user_stream_provider_id="john.doe@gmail.com",
        stream_provider_id="b9910a75a46c492c9cf46a910cdba0012",
        manager_id=12345,
        user=NewUser(
            unique_id="01234567",
            last_name="Doe",
            first_name="John",
            phone1="05055555555",
            email="john.doe@gmail.com",
            remarks="some remark for user",
        ),
    )
    _exact({"data": built.to_wire()}, expected)


def test_seed_sms_to_one_number() -> None:
    expected = _create_object_examples()[1]
    user = attrs.evolve(USER, phone1="180095845823")
    built = NewObject.sms(
        user_stream_provider_id="972544444444", message="some message", manager_id=36197, user=user
    )
    _exact({"data": built.to_wire()}, expected)


def test_seed_sms_many() -> None:
    expected = _create_object_examples()[2]
    built = NewObject.sms_many(
        to=["972522222222"],
        message="some message",
        user_stream_provider_id="972544444444",
        manager_id=36197,
        user=USER,
    )
    _exact({"data": built.to_wire()}, expected)


def test_seed_whatsapp_template() -> None:
    expected = _create_object_examples()[3]
    built = NewObject.whatsapp_template(
        to=["972522222222"],
        whatsapp_hsm_name="test_template",
        whatsapp_localizable_params=["check_1"],
        whatsapp_language_code="en",
        message="some message",
        user_stream_provider_id="972544444444",
        manager_id=36197,
        user=USER,
    )
    _exact({"data": built.to_wire()}, expected)


def test_seed_chat() -> None:
    expected = _create_object_examples()[4]
    built = NewObject.chat(
        message="some message",
        user_stream_provider_id="972544444444",
        user_stream_provider_type=5,
        user_identity=100000000419660,
        manager_id=36197,
        user=attrs.evolve(USER, email="JohnDoe@gmail.com"),
    )
    _exact({"data": built.to_wire()}, expected)


def test_seed_multipart_data_fields() -> None:
    one, three = _create_object_examples()[5:7]
    built_one = NewObject.email(
        subject="Invoice for September 2024",
        message="Please find attached your invoice for September 2024.",
        to=[("customer@example.com", "John Doe")],
        user_stream_provider_id="sender@yourdomain.com",
        manager_id=28361974,
        status_id=ObjectStatusType.SENT,
        user=NewUser(
            unique_id="CUST-12345",
            last_name="Doe",
            first_name="John",
            phone1="1234567890",
            email="customer@example.com",
        ),
    )
    _exact(built_one.to_wire(), json.loads(one["data"]))
    built_three = NewObject.email(
        subject="Monthly Report and Analysis",
        message="Please review the attached monthly report and analysis.",
        to=[EmailAddress(address="manager@example.com", name="Jane Manager")],
        cc=[{"address": "team@example.com", "name": "Team Lead"}],
        user_stream_provider_id="sender@yourdomain.com",
        manager_id=28361974,
        status_id=13,
        user=NewUser(
            unique_id="MGR-001", last_name="Manager", first_name="Jane", email="manager@example.com"
        ),
    )
    _exact(built_three.to_wire(), json.loads(three["data"]))


def test_spec_create_child_examples() -> None:
    examples = request_examples("/streams/{STREAM_ID}/objects/{OBJECT_ID}/child", "post")
    email = NewChild.from_agent(
        user_identity=36574658,
        user_stream_provider_id="best.agent@commbox.com",
        user_stream_provider_type=4,
        message="A new message on behalf of the agent",
    )
    whatsapp = NewChild.from_agent(
        user_identity=36574658,
        user_stream_provider_id="972542660000",
        user_stream_provider_type=7,
        message="A new message on behalf of the agent",
    )
    customer = NewChild.from_customer(
        user_stream_provider_id="MrDoe@gmail.com",
        user_stream_provider_type=4,
        message="A message on behalf of Mr. John Doe",
    )
    _exact({"data": email.to_wire()}, examples["On behalf of Agent - Sending an email"])
    _exact(
        {"data": whatsapp.to_wire()}, examples["On behalf of Agent - Sending a WhatsApp message"]
    )
    _exact({"data": customer.to_wire()}, examples["On behalf of Customer"])


def test_spec_activity_log_remark_indicator_examples() -> None:
    log = request_examples("/objects/{OBJECT_ID}/activitylog", "post")["example"]
    _exact(
        {"data": ActivityLogEntry(text="test!", source="testing", manager_id=1111).to_wire()}, log
    )
    remark = request_examples("/objects/{OBJECT_ID}/remarks", "post")["example"]
    _exact({"data": RemarkEntry(text="test!", manager_id=1111).to_wire()}, remark)
    indicator = request_examples("/objects/{OBJECT_ID}/indicators", "post")["example"]
    built = CustomIndicator(
        indicator_id="home",
        title="Working from home",
        display_class="icon-home",
        link="www.commbox.io",
    )
    _exact({"data": built.to_wire()}, indicator)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda: NewObject.email(subject="s", message="m", to=[], user_stream_provider_id="a@b"),
            "recipient",
        ),
        (
            lambda: NewObject.email(
                subject="s", message="m", to=["nope"], user_stream_provider_id="a@b"
            ),
            "to\\[0\\]",
        ),
        (
            lambda: NewObject.sms(user_stream_provider_id="+97250", message=""),
            "message is required",
        ),
        (lambda: NewObject.sms(user_stream_provider_id="05x", message="m"), "phone number"),
        (
            lambda: NewChild.from_customer(
                user_stream_provider_id="a", user_stream_provider_type=4, message=" "
            ),
            "message",
        ),
        (lambda: CustomIndicator(indicator_id="x", title="t").validate(), "display_class or icon"),
    ],
)
def test_constructors_reject_bad_input_clearly(build: Any, match: str) -> None:
    from commbox_async import ConfigurationError

    with pytest.raises(ConfigurationError, match=match):
        build()


def test_escape_hatch_extra_fields_are_sent_as_given() -> None:
    built = NewObject.sms(
        user_stream_provider_id="972500000000", message="m", extra={"SubStreamId": 7, "Custom": 1}
    )
    wire = built.to_wire()
    assert wire["SubStreamId"] == 7 and wire["Custom"] == 1


# -- decoding responses ----------------------------------------------------------------------


def test_get_object_spec_example_decodes_with_values() -> None:
    body = response_example("/streams/{STREAM_ID}/objects/{OBJECT_ID}", "get")
    obj = structure(body["data"][0], ObjectDetails)
    assert obj.object_id == 293854
    assert obj.stream_id == 53211
    assert obj.sub_stream_id == 2432
    assert obj.stream_provider_type is StreamProviderType.TELEPHONE
    assert obj.user_identity == 528986
    assert obj.user_stream_provider_id == "972505555555_by"
    assert obj.created_time == datetime(2024, 8, 6, 7, 51, 52, 258194, tzinfo=UTC)
    assert obj.close_time is None  # "null"
    assert obj.status_id is ObjectStatusType.OPEN
    assert obj.type is ObjectType.CONVERSATION
    assert obj.is_manager is False
    assert isinstance(obj.content, str)  # the spec's example string is not valid JSON: kept as is
    assert obj.user is not None
    assert obj.user.id == 520760
    assert obj.user.phone1 == "972531234567"
    assert obj.user.num_identities == 3
    children = obj.messages
    assert [c.id for c in children] == [123456, 978944]
    assert children[1].user is not None and children[1].user.identity is not None
    assert children[1].user.identity.stream_provider_id == "michae12@gmail.com"
    assert children[1].user.manager_id == 520803


def test_activities_transcript_manager_spec_examples() -> None:
    acts = structure(
        response_example("/objects/{OBJECT_ID}/activities", "get")["data"], list[Activity]
    )
    assert acts[0].object_id == 383591
    assert acts[0].type is ObjectActivityType.REMARK
    assert acts[0].data == {"text": "Sent a link to video Chat - not responded"}
    assert acts[0].created_time == datetime(2024, 10, 30, 13, 23, 33, tzinfo=UTC)
    assert acts[0].user is not None and acts[0].user.first_name == "Sam"
    assert acts[0].user.identity is not None and acts[0].user.identity.id == 547219
    tr = structure(
        response_example("/streams/{STREAM_ID}/objects/{OBJECT_ID}/transcript", "get")["data"][0],
        Transcript,
    )
    assert tr.object_id == 378015 and tr.stream_id == 17558
    assert tr.transcript is not None and "Commbox Ticket Link" in tr.transcript
    assert tr.user is not None and tr.user.birthday == date(1980, 1, 1)
    mgr = structure(response_example("/managers/{MANAGER_ID}", "get")["data"], Manager)
    assert (
        mgr.id == 520760
        and mgr.identity_id == 2192427
        and mgr.permission_id is UserPermission.ADMIN
    )
    assert mgr.content == {
        "user_color": "",
        "_isEmailVerified": True,
        "_activationState": "Handled",
    }
    assert mgr.team_name == "VIP" and mgr.max_async_objects_assignments == 5


def test_webhook_json_object_payloads_decode() -> None:
    blocks = [b["payload"] for b in data("webhook_json_blocks.json")]
    on_new = structure(blocks[0], ObjectRecord)
    assert on_new.id == 3377699720568713  # beyond 2**53, exact
    assert on_new.stream_id == 24569
    assert on_new.type is ObjectType.CONVERSATION
    assert on_new.status_id is ObjectStatusType.OPEN
    assert on_new.created_time == datetime(2024, 6, 9, 7, 28, 47, tzinfo=UTC)  # day first
    assert on_new.stream_provider_type == "BumpYard"  # an unknown name is kept as given
    assert on_new.stream_provider_id == ""
    assert on_new.manager_id == 0
    assert (
        isinstance(on_new.content, dict)
        and on_new.content["languages"][0]["Item2"] == 3377699720698044
    )
    assert on_new.user is not None and on_new.user.identity is not None
    assert on_new.user.identity.id == 3377699720580841
    assert on_new.user.identity.stream_provider_type is StreamProviderType.ANONYMOUS
    on_child = structure(blocks[1], ObjectRecord)
    assert on_child.stream_provider_type is StreamProviderType.WHATSAPP
    assert on_child.user is not None and on_child.user.num_objects == 67
    # Every payload in the page decodes as an object record without error, keeping what it
    # does not name.
    for payload in blocks:
        structure(payload, ObjectRecord)


def test_error_body_example_decodes() -> None:
    error = _create_object_examples()[-1]
    assert error == {
        "status": 500,
        "description": "Operation failed",
        "response_time": "2025-04-15T07:24:52.956Z",
    }
    assert parse_datetime(error["response_time"]) == datetime(
        2025, 4, 15, 7, 24, 52, 956000, tzinfo=UTC
    )


# -- the converter's rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09-06-2024 07:28:47", datetime(2024, 6, 9, 7, 28, 47, tzinfo=UTC)),
        ("2024-09-23 12:39:11", datetime(2024, 9, 23, 12, 39, 11, tzinfo=UTC)),
        ("2024-06-02T15:47:50", datetime(2024, 6, 2, 15, 47, 50, tzinfo=UTC)),
        ("2025-04-15T07:24:52.956Z", datetime(2025, 4, 15, 7, 24, 52, 956000, tzinfo=UTC)),
        ("2024-08-06T07:51:52.2581942Z", datetime(2024, 8, 6, 7, 51, 52, 258194, tzinfo=UTC)),
        ("03/28/2017 05:30:00", datetime(2017, 3, 28, 5, 30, tzinfo=UTC)),
        ("06/09/2024 11:55:00", datetime(2024, 6, 9, 11, 55, tzinfo=UTC)),
        ("27-03-2017\n\n06:29:59", datetime(2017, 3, 27, 6, 29, 59, tzinfo=UTC)),
        ("2/29/2024 12:20:25 PM", datetime(2024, 2, 29, 12, 20, 25, tzinfo=UTC)),
        ("2024-01-01T02:00:00+02:00", datetime(2024, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_every_documented_date_format(text: str, expected: datetime) -> None:
    got = parse_datetime(text)
    assert got == expected
    assert got.tzinfo is UTC


def test_date_only_birthdays() -> None:
    assert parse_date("1951-10-10") == date(1951, 10, 10)
    assert parse_date("1951-10\n10") == date(1951, 10, 10)  # broken across lines by the doc tool
    assert parse_date("01/01/1980") == date(1980, 1, 1)


def test_keys_match_in_any_casing_and_unknown_fields_are_kept() -> None:
    for key in ("ObjectId", "objectId", "objectid", "object_id", "OBJECTID"):
        assert structure({key: "7"}, ObjectDetails).object_id == 7
    obj = structure({"objectId": 1, "newField": {"x": 1}, "StatusID": "2"}, ObjectDetails)
    assert obj.extra == {"newField": {"x": 1}}
    assert obj.status_id is ObjectStatusType.RESOLVED
    assert unstructure(obj) == {"objectId": 1, "StatusID": 2, "newField": {"x": 1}}


def test_empty_strings_single_objects_and_big_ints() -> None:
    obj = structure(
        {
            "Id": "3377699720568713",
            "StreamId": "",
            "CreateDate": "",
            "Children": {"Child": {"Id": "9007199254740993"}},
        },
        ObjectRecord,
    )
    assert obj.id == 3377699720568713
    assert obj.stream_id is None and obj.created_time is None
    assert [c.id for c in obj.children] == [9007199254740993]


def test_enum_text_with_two_signs_is_refused_as_not_a_number_or_name() -> None:
    from commbox_async.models._enums import coerce_enum

    assert coerce_enum(ObjectStatusType, " -5 ") == -5
    with pytest.raises(ValueError, match="is not a ObjectStatusType number or name"):
        coerce_enum(ObjectStatusType, "--5")


def test_unknown_enum_values_round_trip() -> None:
    obj = structure({"statusId": 99, "type": "42", "streamProviderType": 77}, ObjectDetails)
    assert obj.status_id == 99 and not obj.status_id.is_known  # type: ignore[union-attr]
    assert obj.type == 42
    assert obj.stream_provider_type == 77
    assert unstructure(obj) == {"statusId": 99, "type": 42, "streamProviderType": 77}
    assert ObjectActivityType.FORWARD_REPLY is ObjectActivityType.REPLY_TO_FORWARDED_OBJECT
    assert ObjectActivityType.NEW_MANAGER_ASSIGNMENT == 6
    assert StreamProviderType.from_name("WhatsApp") is StreamProviderType.WHATSAPP


@pytest.mark.parametrize(
    ("payload", "path", "value"),
    [
        ({"objectId": "abc"}, "objectId", "abc"),
        ({"user": {"childs": [{"id": 1}, {"id": "x"}]}}, "user.childs[1].id", "x"),
        ({"createdTime": "yesterday"}, "createdTime", "yesterday"),
        ({"isManager": "maybe"}, "isManager", "maybe"),
        # int() refuses both, though "²" passes str.isdigit and "--5" passes lstrip("-")
        ({"statusId": "\u00b2"}, "statusId", "\u00b2"),
        ({"statusId": "--5"}, "statusId", "--5"),
    ],
)
def test_decode_errors_name_model_path_and_value(
    payload: dict[str, Any], path: str, value: Any
) -> None:
    with pytest.raises(DecodeError) as info:
        structure(payload, ObjectDetails)
    assert info.value.path == path
    assert info.value.value == value
    assert info.value.model in str(info.value) and path in str(info.value)


def test_not_an_object_is_a_decode_error() -> None:
    for bad in (None, 5, [1], "not json"):
        with pytest.raises(DecodeError):
            structure(bad, ObjectDetails)


# -- property tests --------------------------------------------------------------------------

MODELS: list[type[Model]] = [
    getattr(__import__("commbox_async.models", fromlist=["x"]), name)
    for name in model_names
    if isinstance(getattr(__import__("commbox_async.models", fromlist=["x"]), name), type)
    and issubclass(getattr(__import__("commbox_async.models", fromlist=["x"]), name), Model)
    and name != "Model"
]

_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_json = st.recursive(
    st.none() | st.booleans() | _ints | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def strategy_for(tp: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    import types
    import typing

    from commbox_async.models import OpenIntEnum

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if set(args) - {type(None)} == {dict[str, Any], str}:
            return st.none() | st.dictionaries(st.text(max_size=5), _json, max_size=3)
        if StreamProviderType in args and str in args:
            names = st.text(alphabet="abcdefghXYZ", min_size=1, max_size=8).filter(
                lambda s: StreamProviderType.from_name(s) is None
            )
            return st.none() | st.sampled_from(list(StreamProviderType)) | names
        return st.one_of(*[strategy_for(a, depth) for a in args])
    if tp is type(None):
        return st.none()
    if origin in (tuple,):
        return st.lists(strategy_for(args[0], depth + 1), max_size=2 if depth < 2 else 0).map(tuple)
    if origin in (dict,):
        return st.dictionaries(st.text(max_size=5), _json, max_size=3)
    if tp is int:
        return _ints
    if tp is bool:
        return st.booleans()
    if tp is str:
        return st.text(max_size=12)
    if tp is datetime:
        return _datetimes
    if tp is date:
        return st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1))
    if isinstance(tp, type) and issubclass(tp, OpenIntEnum):
        return st.sampled_from(list(tp)) | st.integers(1000, 2000).map(tp)
    if isinstance(tp, type) and issubclass(tp, Model):
        if depth > 2:
            return st.none()
        return model_strategy(tp, depth + 1)
    raise AssertionError(f"no strategy for {tp!r}")


def model_strategy(cls: type[Model], depth: int = 0) -> st.SearchStrategy[Any]:
    import typing

    hints = typing.get_type_hints(cls)
    fields = {
        a.name: strategy_for(hints[a.name], depth)
        for a in attrs.fields(cls)
        if a.name not in ("extra", "wire_keys")
    }
    extra = st.dictionaries(
        st.text(min_size=1, max_size=6).map(lambda s: "x-extra-" + s), _json, max_size=2
    )
    return st.builds(cls, extra=extra, **fields)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_structure_unstructure_round_trip(cls: type[Model], data: st.DataObject) -> None:
    value = data.draw(model_strategy(cls))
    wire = unstructure(value)
    assert structure(json.loads(json.dumps(wire)), cls) == value


@pytest.mark.parametrize("cls", [ObjectDetails, ObjectRecord, Activity, Manager, NewObject])
@settings(max_examples=150, deadline=None)
@given(payload=_json)
def test_arbitrary_json_raises_only_decode_error(cls: type[Model], payload: Any) -> None:
    with contextlib.suppress(DecodeError):
        structure(payload, cls)


@settings(max_examples=150, deadline=None)
@given(
    payload=st.dictionaries(
        st.sampled_from(
            [
                "objectId",
                "user",
                "childs",
                "createdTime",
                "statusId",
                "content",
                "streamProviderType",
                "isManager",
            ]
        ),
        _json,
    )
)
def test_arbitrary_values_in_known_fields_raise_only_decode_error(payload: dict[str, Any]) -> None:
    with contextlib.suppress(DecodeError):
        structure(payload, ObjectDetails)


def test_converter_is_the_one_cattrs_converter() -> None:
    obj = _converter.converter.structure({"objectId": "5"}, ObjectDetails)
    assert obj.object_id == 5
    assert _converter.converter.unstructure(obj) == {"objectId": 5}


def test_decoded_objects_behave_like_constructed_ones() -> None:
    import pickle

    decoded = structure(
        {"Id": "7", "Message": "hi", "CreateDate": "09-06-2024 07:28:47"}, ObjectRecord
    )
    built = ObjectRecord(
        id=7, message="hi", created_time=datetime(2024, 6, 9, 7, 28, 47, tzinfo=UTC)
    )
    assert decoded == built
    assert decoded.user is None and decoded.children == () and decoded.extra == {}
    assert repr(decoded) == repr(built)
    assert attrs.evolve(decoded, message="bye").message == "bye"
    assert pickle.loads(pickle.dumps(decoded)) == decoded
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        decoded.message = "changed"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = decoded.nope  # type: ignore[attr-defined]


def test_second_spelling_of_a_field_is_kept_in_extra() -> None:
    obj = structure({"id": "1", "Id": "2", "ID": "3"}, ObjectRecord)
    assert obj.id == 1
    assert obj.extra == {"Id": "2", "ID": "3"}
    assert unstructure(obj) == {"id": 1, "Id": "2", "ID": "3"}


def test_unknown_enum_values_round_trip_without_being_kept() -> None:
    from commbox_async.models import ObjectActivityType as T

    known = len(T._value2member_map_)
    first = T(987_654)
    again = structure({"Type": "987654"}, Activity).type
    assert first == again == 987_654 and hash(first) == hash(987_654)
    assert first.name == "UNKNOWN_987654" and not first.is_known
    assert unstructure(structure({"Type": 987_654}, Activity)) == {"Type": 987_654}
    assert len(T._value2member_map_) == known  # nothing was added to the class
